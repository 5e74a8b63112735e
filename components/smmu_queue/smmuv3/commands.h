// components/smmu_queue/smmuv3: building the commands the host driver issues.
//
// Owns: one builder per command Linux's arm-smmu-v3 builds (facts 1.3, arm_smmu_cmdq_build_cmd)
// and the range-invalidation encoding (facts 1.4: TG/SCALE/NUM/TTL with IDR3.RIL, one command
// per granule without it), the ATC_INV span encoding. Field positions come from
// util/smmuv3 (the architected layouts the model decodes with).
// Does not own: queueing (host-queue.h), guest command conversion (guest-commands.h).

#pragma once

#include <kj/string.h>
#include <kj/vector.h>
#include <cstdint>

namespace nb::smmuq {

struct Command {
  uint64_t dw0 = 0;
  uint64_t dw1 = 0;
  bool operator==(const Command&) const = default;
};

uint8_t opcodeOf(const Command& c);
// CMD_0_OP: the opcode byte (util/smmuv3/commands.h Opcode).

namespace build {
Command cfgiSte(uint32_t sid, bool leaf = true);
Command cfgiCd(uint32_t sid, uint32_t ssid, bool leaf = true);
Command cfgiCdAll(uint32_t sid);
Command cfgiSteRange(uint32_t sid, uint8_t range);     // 2^(range+1) SIDs aligned at sid
Command cfgiAll();                                     // CFGI_STE_RANGE, RANGE = 31
Command tlbiNhAll(uint16_t vmid);
Command tlbiNhAsid(uint16_t asid, uint16_t vmid);
Command tlbiS12Vmall(uint16_t vmid);
Command tlbiNsnhAll();
Command tlbiEl2All();
Command atcInv(uint32_t sid, bool ssv, uint32_t ssid, uint64_t iova, uint64_t size);
// size 0: the whole ATC (SIZE = 52); otherwise the smallest naturally aligned power-of-two
// span of 4 KiB pages covering [iova, iova + size) (facts 1.4, arm_smmu_atc_inv_to_cmd).
Command sync();                                        // CS = SEV (no MSI)
}  // namespace build

struct TlbiRange {
  // A TLB invalidation over [addr, addr + size) (facts 1.4, arm_smmu_tlb_inv_range_cmd).
  enum class Stage { NH_VA, S2_IPA } stage = Stage::NH_VA;
  uint16_t asid = 0;        // NH_VA
  uint16_t vmid = 0;
  uint64_t addr = 0;
  uint64_t size = 0;
  uint64_t granule = 0;     // leaf size of the entries: the TTL hint with RIL and the step
                            // without; 0 = unknown: no TTL hint, step by pageSize
  uint64_t pageSize = 4096; // the domain's translation granule (range TG)
  bool leaf = true;
};

kj::Maybe<kj::String> checkTlbiRange(const TlbiRange& range);
// Why `range` cannot be encoded, or null: pageSize must be 4K, 16K or 64K; granule 0 or a
// power of two >= pageSize; addr and size multiples of pageSize; the range must not wrap, and
// an S2_IPA address must fit IPA[51:12]. buildTlbiRange requires a range that passes.

void buildTlbiRange(const TlbiRange& range, bool ril, kj::Vector<Command>& out);
// With RIL: range commands (TG, SCALE, NUM, TTL when leaf; a non-leaf range whose page count
// is 1 modulo 32 grows by a page so that SCALE and NUM are never both 0). Without: one command
// per `granule` step (TG/TTL/NUM/SCALE zero). Nothing for size 0.

}  // namespace nb::smmuq
