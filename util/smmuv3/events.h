// util/smmuv3: the EVTQ record layout — event IDs and field positions.
//
// Owns: event IDs (facts 3.1), the 32-byte record's field positions (facts 3.2, Linux EVTQ_<qword>_
// <field> naming) and the CLASS encoding.
// Does not own: which fields each event carries or building/decoding records
// (hw/smmuv3/events.h), routing them (components/smmu_queue).

#pragma once

#include "util/bits.h"
#include <cstdint>

namespace nb::smmuv3 {

enum class EventId : uint8_t {
  // Facts 3.1.
  F_UUT = 0x01,
  C_BAD_STREAMID = 0x02,
  F_STE_FETCH = 0x03,
  C_BAD_STE = 0x04,
  F_BAD_ATS_TREQ = 0x05,
  F_STREAM_DISABLED = 0x06,
  F_TRANSL_FORBIDDEN = 0x07,
  C_BAD_SUBSTREAMID = 0x08,
  F_CD_FETCH = 0x09,
  C_BAD_CD = 0x0a,
  F_WALK_EABT = 0x0b,
  F_TRANSLATION = 0x10,
  F_ADDR_SIZE = 0x11,
  F_ACCESS = 0x12,
  F_PERMISSION = 0x13,
  F_TLB_CONFLICT = 0x20,
  F_CFG_CONFLICT = 0x21,
  E_PAGE_REQUEST = 0x24,
  F_VMS_FETCH = 0x25,
};

enum class FaultClass : uint8_t {
  // Event CLASS (facts 3.2): which access the faulting walk was for.
  CD = 0,   // fetching a CD (nested: the S2 walk of the CD's IPA)
  TT = 1,   // fetching a stage-1 translation table (nested: the S2 walk of a descriptor's IPA)
  IN = 2,   // translating the transaction's input address
};

namespace evt {
// Facts 3.2: record field positions.
constexpr Field EVT_0_ID = bits(7, 0);
constexpr Field EVT_0_SSV = bit(11);
constexpr Field EVT_0_SSID = bits(31, 12);
constexpr Field EVT_0_SID = bits(63, 32);
constexpr Field EVT_1_STAG = bits(15, 0);
constexpr Field EVT_1_STALL = bit(31);
constexpr Field EVT_1_PNU = bit(33);
constexpr Field EVT_1_IND = bit(34);
constexpr Field EVT_1_RNW = bit(35);
constexpr Field EVT_1_S2 = bit(39);
constexpr Field EVT_1_CLASS = bits(41, 40);
constexpr Field EVT_1_TTRNW = bit(44);
constexpr Field EVT_2_ADDR = bits(63, 0);
constexpr Field EVT_3_IPA = bits(51, 12);
constexpr Field EVT_3_FETCH_ADDR = bits(51, 3);
}  // namespace evt

}  // namespace nb::smmuv3
