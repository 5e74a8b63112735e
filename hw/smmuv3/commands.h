// hw/smmuv3: command queue entries — opcodes, the per-command field layout and its decoder.
//
// Owns: the 16-byte command layout (facts 1.1-1.3), which fields each opcode defines, which
// features an opcode needs, and decoding an entry into a typed `Command` or CERROR_ILL.
// Does not own: consuming the queue or executing commands (cmdq.h).

#pragma once

#include "hw/smmuv3/features.h"
#include <kj/one-of.h>
#include <kj/string.h>
#include "util/bits.h"
#include <cstdint>

namespace nb::smmu {

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

kj::StringPtr opcodeName(uint8_t opcode);
// The spec mnemonic without "CMD_" (e.g. "TLBI_NH_VA"), or "UNKNOWN".

namespace cmd {
// Facts 1.1 and 1.3: field positions (Linux CMDQ_<cmd>_<qword>_<field> naming).
constexpr Field CMD_0_OP = bits(7, 0);
constexpr Field CMD_0_SSEC = bit(10);
constexpr Field CMD_0_SSV = bit(11);

constexpr Field PREFETCH_0_SSID = bits(31, 12);
constexpr Field PREFETCH_0_SID = bits(63, 32);
constexpr Field PREFETCH_1_SIZE = bits(4, 0);
constexpr Field PREFETCH_1_ADDR = bits(63, 12);

constexpr Field CFGI_0_SSID = bits(31, 12);
constexpr Field CFGI_0_SID = bits(63, 32);
constexpr Field CFGI_1_LEAF = bit(0);
constexpr Field CFGI_1_RANGE = bits(4, 0);

constexpr Field TLBI_0_NUM = bits(16, 12);
constexpr Field TLBI_0_SCALE = bits(24, 20);
constexpr Field TLBI_0_VMID = bits(47, 32);
constexpr Field TLBI_0_ASID = bits(63, 48);
constexpr Field TLBI_1_LEAF = bit(0);
constexpr Field TLBI_1_TTL = bits(9, 8);
constexpr Field TLBI_1_TG = bits(11, 10);
constexpr Field TLBI_1_VA = bits(63, 12);
constexpr Field TLBI_1_IPA = bits(51, 12);

constexpr Field ATC_0_GLOBAL = bit(9);
constexpr Field ATC_0_SSID = bits(31, 12);
constexpr Field ATC_0_SID = bits(63, 32);
constexpr Field ATC_1_SIZE = bits(5, 0);
constexpr Field ATC_1_ADDR = bits(63, 12);

constexpr Field PRI_0_SSID = bits(31, 12);
constexpr Field PRI_0_SID = bits(63, 32);
constexpr Field PRI_1_GRPID = bits(8, 0);
constexpr Field PRI_1_RESP = bits(13, 12);

constexpr Field RESUME_0_RESP = bits(13, 12);
constexpr Field RESUME_0_SID = bits(63, 32);
constexpr Field RESUME_1_STAG = bits(15, 0);

constexpr Field SYNC_0_CS = bits(13, 12);
constexpr uint64_t SYNC_CS_NONE = 0;
constexpr uint64_t SYNC_CS_IRQ = 1;
constexpr uint64_t SYNC_CS_SEV = 2;
constexpr Field SYNC_0_MSH = bits(23, 22);
constexpr Field SYNC_0_MSIATTR = bits(27, 24);
constexpr Field SYNC_0_MSIDATA = bits(63, 32);
constexpr Field SYNC_1_MSIADDR = bits(51, 2);
}  // namespace cmd

enum class CommandError : uint8_t {
  // CMDQ_CONS.ERR values (facts 1.6).
  NONE = 0,
  ILL = 1,
  ABT = 2,
  ATC_INV_SYNC = 3,
};

struct Command {
  // One command decoded; fields an opcode does not define are zero.
  Opcode op = Opcode::SYNC;
  uint32_t sid = 0;
  bool ssv = false;
  uint32_t ssid = 0;
  bool leaf = false;
  uint8_t range = 0;      // CFGI_STE_RANGE
  uint16_t vmid = 0;      // masked to the implemented VMID width
  uint16_t asid = 0;      // masked to the implemented ASID width
  uint8_t num = 0;        // range invalidation (facts 1.4)
  uint8_t scale = 0;
  uint8_t ttl = 0;
  uint8_t tg = 0;
  uint64_t addr = 0;      // VA / IPA / prefetch / ATC address (bits [11:0] zero)
  uint8_t size = 0;       // PREFETCH_ADDR / ATC_INV SIZE
  uint8_t cs = 0;         // SYNC completion signal
  uint32_t msiData = 0;
  uint64_t msiAddr = 0;   // bits [1:0] zero

  uint64_t rangeLength() const;
  // TLBI: bytes covered, (NUM+1) x 2^SCALE x granule (facts 1.4 step 6), or 0 for TG = 0 (a
  // single address).
};

kj::OneOf<Command, CommandError> decodeCommand(uint64_t dw0, uint64_t dw1,
                                               const Features& features);
// CERROR_ILL for: an unknown opcode; SSec = 1 (no secure state is modelled); any bit set outside
// the opcode's fields; range fields (NUM/SCALE/TTL/TG) without IDR3.RIL; SYNC CS = 3; an opcode
// whose feature is absent: TLBI_NH_* without stage 1, TLBI_S2_IPA without stage 2, TLBI_EL2_*
// without HYP, ATC_INV without ATS, PRI_RESP (no PRI queue), TLBI_EL3_* (no EL3), and
// CFGI_VMS_PIDM (no VMS).

}  // namespace nb::smmu
