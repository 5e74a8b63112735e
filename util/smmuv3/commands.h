// util/smmuv3: the CMDQ entry layout — opcodes, per-command field positions, encodings.
//
// Owns: the 16-byte command layout (facts 1.1-1.3), opcodes (facts 1.2, CFGI_ALL per
// discrepancy D2), the CMDQ_CONS.ERR codes (facts 1.6), and the constants of Linux's range and
// ATC encodings (facts 1.4). Field names follow Linux: CMDQ_<cmd>_<qword>_<field>, minus the
// CMDQ_ prefix.
// Does not own: decoding (hw/smmuv3/commands.h), building (components/smmu_queue), queueing.

#pragma once

#include "util/bits.h"
#include <cstdint>

namespace nb::smmuv3 {

enum class Opcode : uint8_t {
  // Facts 1.2.
  PREFETCH_CONFIG = 0x01,
  PREFETCH_ADDR = 0x02,
  CFGI_STE = 0x03,
  CFGI_STE_RANGE = 0x04,   // Linux's CFGI_ALL is this with RANGE = 31 (discrepancy D2)
  CFGI_CD = 0x05,
  CFGI_CD_ALL = 0x06,
  CFGI_VMS_PIDM = 0x07,
  TLBI_NH_ALL = 0x10,
  TLBI_NH_ASID = 0x11,
  TLBI_NH_VA = 0x12,
  TLBI_NH_VAA = 0x13,
  TLBI_EL3_ALL = 0x18,
  TLBI_EL3_VA = 0x1a,
  TLBI_EL2_ALL = 0x20,
  TLBI_EL2_ASID = 0x21,
  TLBI_EL2_VA = 0x22,
  TLBI_EL2_VAA = 0x23,
  TLBI_S12_VMALL = 0x28,
  TLBI_S2_IPA = 0x2a,
  TLBI_NSNH_ALL = 0x30,
  ATC_INV = 0x40,
  PRI_RESP = 0x41,
  RESUME = 0x44,
  STALL_TERM = 0x45,
  SYNC = 0x46,
};

enum class CommandError : uint8_t {
  // CMDQ_CONS.ERR values (facts 1.6).
  NONE = 0,
  ILL = 1,            // illegal or unsupported command: Linux replaces it with a CMD_SYNC
  ABT = 2,            // abort on command fetch: acknowledge and retry
  ATC_INV_SYNC = 3,   // ATC invalidation completion timeout; CONS points at the CMD_SYNC
};

namespace cmd {
// Facts 1.1 and 1.3: field positions.
constexpr Field CMD_0_OP = bits(7, 0);
constexpr Field CMD_0_SSEC = bit(10);      // the kernel never sets it
constexpr Field CMD_0_SSV = bit(11);

constexpr Field PREFETCH_0_SSID = bits(31, 12);
constexpr Field PREFETCH_0_SID = bits(63, 32);
constexpr Field PREFETCH_1_SIZE = bits(4, 0);
constexpr Field PREFETCH_1_ADDR = bits(63, 12);

constexpr Field CFGI_0_SSID = bits(31, 12);
constexpr Field CFGI_0_SID = bits(63, 32);
constexpr Field CFGI_1_LEAF = bit(0);
constexpr Field CFGI_1_RANGE = bits(4, 0);  // 2^(RANGE+1) SIDs aligned at SID
constexpr uint64_t CFGI_RANGE_ALL = 31;     // every SID: Linux's CFGI_ALL

constexpr Field TLBI_0_NUM = bits(16, 12);  // range count minus 1
constexpr Field TLBI_0_SCALE = bits(24, 20);
constexpr Field TLBI_0_VMID = bits(47, 32);
constexpr Field TLBI_0_ASID = bits(63, 48);
constexpr Field TLBI_1_LEAF = bit(0);
constexpr Field TLBI_1_TTL = bits(9, 8);    // leaf level hint, 0 = unknown
constexpr Field TLBI_1_TG = bits(11, 10);   // 0 = not a range op
constexpr uint64_t TLBI_TG_4K = 1;
constexpr uint64_t TLBI_TG_16K = 2;
constexpr uint64_t TLBI_TG_64K = 3;
constexpr Field TLBI_1_VA = bits(63, 12);
constexpr Field TLBI_1_IPA = bits(51, 12);
constexpr uint64_t TLBI_RANGE_NUM_MAX = 31;  // CMDQ_TLBI_RANGE_NUM_MAX (facts 1.3)

constexpr Field ATC_0_GLOBAL = bit(9);
constexpr Field ATC_0_SSID = bits(31, 12);
constexpr Field ATC_0_SID = bits(63, 32);
constexpr Field ATC_1_SIZE = bits(5, 0);    // log2 of the span in 4 KB pages
constexpr Field ATC_1_ADDR = bits(63, 12);  // always in 4 KB units
constexpr uint64_t ATC_INV_SIZE_ALL = 52;

constexpr Field PRI_0_SSID = bits(31, 12);
constexpr Field PRI_0_SID = bits(63, 32);
constexpr Field PRI_1_GRPID = bits(8, 0);
constexpr Field PRI_1_RESP = bits(13, 12);  // Linux position (discrepancy D3)
constexpr uint64_t PRI_RESP_DENY = 0;
constexpr uint64_t PRI_RESP_FAIL = 1;
constexpr uint64_t PRI_RESP_SUCC = 2;

constexpr Field RESUME_0_RESP = bits(13, 12);
constexpr uint64_t RESUME_RESP_TERM = 0;
constexpr uint64_t RESUME_RESP_RETRY = 1;
constexpr uint64_t RESUME_RESP_ABORT = 2;
constexpr Field RESUME_0_SID = bits(63, 32);
constexpr Field RESUME_1_STAG = bits(15, 0);

constexpr Field SYNC_0_CS = bits(13, 12);
constexpr uint64_t SYNC_CS_NONE = 0;
constexpr uint64_t SYNC_CS_IRQ = 1;
constexpr uint64_t SYNC_CS_SEV = 2;
constexpr Field SYNC_0_MSH = bits(23, 22);
constexpr uint64_t SYNC_MSH_ISH = 3;
constexpr Field SYNC_0_MSIATTR = bits(27, 24);
constexpr uint64_t SYNC_MSIATTR_OIWB = 0xf;
constexpr Field SYNC_0_MSIDATA = bits(63, 32);
constexpr Field SYNC_1_MSIADDR = bits(51, 2);
}  // namespace cmd

constexpr unsigned CMDQ_BATCH_ENTRIES = 64;
// Linux's batch size (BITS_PER_LONG), and its minimum queue: it refuses a CMDQ of <= 64 entries
// (facts 1.1).

}  // namespace nb::smmuv3
