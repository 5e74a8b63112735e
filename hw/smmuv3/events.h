// hw/smmuv3: event records — the IDs, the 32-byte record layout, and its builder/decoder.
//
// Owns: event IDs (facts 3.1), the field positions of the EVTQ record (facts 3.2), the decoded
// `Event` value every fault path fills, and which fields each event type carries.
// Does not own: when an event is recorded (smmuv3.c++) or how it reaches memory (evtq.h).
//
// Faults are data: every stage of translation returns an `Event` instead of throwing, and the
// SMMU turns it into an `EventRecord` for the EVTQ and for translate()'s caller.

#pragma once

#include <kj/string.h>
#include "util/bits.h"
#include <cstdint>

namespace nb::smmu {

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

kj::StringPtr eventName(EventId id);
// The spec mnemonic, e.g. "F_TRANSLATION"; "UNKNOWN" for other values.

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

struct EventRecord {
  // One EVTQ entry: 4 little-endian qwords (facts 1.1).
  uint64_t dw[4] = {0, 0, 0, 0};

  bool operator==(const EventRecord& other) const {
    return dw[0] == other.dw[0] && dw[1] == other.dw[1] && dw[2] == other.dw[2] &&
           dw[3] == other.dw[3];
  }
  bool operator!=(const EventRecord& other) const { return !(*this == other); }
  EventId id() const { return EventId(evt::EVT_0_ID.get(dw[0])); }
};

struct Event {
  // An event decoded: the union of every type's fields. Fault paths fill what they know
  // (id, s2, cls, ipa, fetchAddr, ttRnW); the SMMU adds the transaction's fields.
  EventId id = EventId::F_TRANSLATION;
  uint32_t sid = 0;
  bool ssv = false;
  uint32_t ssid = 0;      // 20 bits
  uint16_t stag = 0;
  bool stall = false;
  bool pnu = false;       // 1 = privileged
  bool ind = false;       // 1 = instruction
  bool rnw = false;       // 1 = read
  bool s2 = false;        // the fault came from stage 2
  FaultClass cls = FaultClass::IN;
  bool ttRnW = false;     // the table access was a read (F_PERMISSION during HTTU: 0 = write)
  uint64_t inputAddr = 0;
  uint64_t ipa = 0;       // S2 faults: the IPA being translated
  uint64_t fetchAddr = 0; // fetch faults: the physical address whose read aborted
};

EventRecord makeEventRecord(const Event& event);
// Packs exactly the fields `event.id` carries (facts 3.2 "Fields each event carries"); the
// rest of the record is zero. The IPA and fetch-address fields hold address bits [51:12] and
// [51:3] by definition, so higher address bits are not recorded.

Event decodeEventRecord(const EventRecord& record);
// Unpacks the fields the record's ID carries; the others stay at their defaults.

kj::String formatEvent(const Event& event);
// One line for logs and test failure messages.

}  // namespace nb::smmu
