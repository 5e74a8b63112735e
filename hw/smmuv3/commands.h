// hw/smmuv3: command queue entries — which fields each opcode defines, and the decoder.
//
// Owns: which fields each opcode defines (the layout itself is util/smmuv3/commands.h), which
// features an opcode needs, and decoding an entry into a typed `Command` or CERROR_ILL.
// Does not own: consuming the queue or executing commands (cmdq.h).

#pragma once

#include "hw/smmuv3/features.h"
#include <kj/one-of.h>
#include <kj/string.h>
#include "util/bits.h"
#include "util/smmuv3/commands.h"
#include <cstdint>

namespace nb::smmu {

// Opcodes, field positions and CMDQ_CONS.ERR codes: util/smmuv3/commands.h (facts 1.1-1.3, 1.6).
using namespace nb::smmuv3;

kj::StringPtr opcodeName(uint8_t opcode);
// The spec mnemonic without "CMD_" (e.g. "TLBI_NH_VA"), or "UNKNOWN".

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
// CERROR_ILL (IHI 0070 §4.1.3) for: an unknown opcode; SSec = 1 (no secure state is
// modelled); any bit set outside the opcode's fields; SSV/SSID (and ATC_INV's Global) without
// substreams (IDR1.SSIDSIZE = 0); ASID/VMID bits [15:8] without IDR0.ASID16/VMID16; range
// fields (NUM/SCALE/TTL/TG) without IDR3.RIL; with RIL, the reserved range encodings (§4.4.1:
// NUM/SCALE/TTL nonzero with TG = 0, NUM = SCALE = TTL = 0 with TG != 0, TTL = 1 with the 16K
// granule without IDR5.DS); ATC_INV SIZE > 52; SYNC CS = 3; an opcode whose feature is
// absent, one rule per feature: CFGI_CD*/TLBI_NH_* without stage 1, TLBI_S12_VMALL/TLBI_S2_IPA
// without stage 2, TLBI_EL2_* without HYP, ATC_INV without ATS, PRI_RESP without PRI,
// RESUME/STALL_TERM with IDR0.STALL_MODEL = 0b01 (this model never stalls), TLBI_EL3_* (no
// EL3), and CFGI_VMS_PIDM (no VMS).

}  // namespace nb::smmu
