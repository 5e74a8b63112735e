// tests/bench: SMMU structures for the benchmarks — STEs, CDs and 4K four-level tables written
// into physical memory with the production field tables (correctness is the tests' job; this
// only has to be fast to set up and right enough to translate).
//
// Owns: a bump allocator over a range of physical memory, a minimal 4K table writer (not the
// page-table engine) and the STE/CD builders the benchmarks need. Does not own the SMMU: the
// core benchmark programs a model directly, the DMA benchmark through MMIO over RPC.

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/context-descriptor.h"
#include "hw/smmuv3/stream-table.h"
#include "hw/smmuv3/walk.h"

#include <kj/debug.h>

namespace nb::smmu::bench {

constexpr uint64_t IPA_DELTA = 0x40'0000'0000;  // nested S1 tables live at PA + IPA_DELTA
constexpr uint64_t VA_BASE = 0x0000'1234'5600'0000;

class Structures {
public:
  // Allocates from [base, base + size) of `mem`; the range must be zeroed.
  Structures(PhysMem& mem, uint64_t base, uint64_t size) : mem(mem), next(base), end(base + size) {}

  PhysMem& mem;

  uint64_t alloc(uint64_t bytes, uint64_t align = 4096) {
    next = alignUp(next, align);
    uint64_t a = next;
    next += bytes;
    KJ_REQUIRE(next <= end && mem.contains(a, bytes), "benchmark memory exhausted");
    return a;
  }

  // A 4K, 48-bit, 4-level table tree; with `s2`, its tables sit at IPAs (PA + delta), each
  // table page mapped by `s2` so a nested walk reads them through stage 2.
  struct Tables {
    Structures& s;
    uint64_t delta;
    Tables* s2;
    uint64_t rootPa;

    explicit Tables(Structures& s, uint64_t delta = 0, Tables* s2 = nullptr)
        : s(s), delta(delta), s2(s2), rootPa(s.alloc(4096)) {
      expose(rootPa);
    }
    uint64_t root() const { return rootPa + delta; }
    void expose(uint64_t pa) {
      if (s2 != nullptr) s2->map(pa + delta, pa, S2_LEAF);
    }
    void map(uint64_t ia, uint64_t oa, uint64_t leafAttrs) {
      uint64_t table = rootPa;
      for (unsigned level = 0;; level++) {
        uint64_t slot = table + ((ia >> levelShift(Granule::G4K, level)) & 511) * 8;
        if (level == 3) {
          s.mem.store64(slot, (oa & genmask(47, 12)) | leafAttrs | pte::TYPE_PAGE);
          return;
        }
        uint64_t desc = s.mem.load64(slot);
        if ((desc & 3) != 3) {
          uint64_t t = s.alloc(4096);
          expose(t);
          desc = (t + delta) | pte::TYPE_TABLE;
          s.mem.store64(slot, desc);
        }
        table = (desc & genmask(47, 12)) - delta;
      }
    }
  };

  static constexpr uint64_t S1_LEAF = pte::AF.mask() | pte::NG.mask() | pte::AP1_UNPRIV.mask() |
                                      pte::SH.with(0, 3) | pte::ATTRINDX.with(0, 1);
  static constexpr uint64_t S2_LEAF = pte::AF.mask() | pte::S2AP_READ.mask() |
                                      pte::S2AP_WRITE.mask() | pte::SH.with(0, 3) |
                                      pte::S2_MEMATTR.with(0, 0xf);

  // A stage-1 CD: 48-bit VA through TTB0, recorded faults.
  uint64_t makeCd(uint64_t ttb0, uint16_t asid) {
    uint64_t dw0 = 0;
    dw0 = cd::CD_0_T0SZ.set(dw0, 16);
    dw0 = cd::CD_0_EPD1.set(dw0, 1);
    dw0 = cd::CD_0_V.set(dw0, 1);
    dw0 = cd::CD_0_IPS.set(dw0, 5);
    dw0 = cd::CD_0_AA64.set(dw0, 1);
    dw0 = cd::CD_0_R.set(dw0, 1);
    dw0 = cd::CD_0_ASID.set(dw0, asid);
    uint64_t addr = alloc(64, 64);
    mem.store64(addr, dw0);
    mem.store64(addr + 8, ttb0);
    return addr;
  }

  // An STE at `strtab` (a linear table) for `sid`: S1_TRANS or NESTED (4-level 4K stage 2).
  void writeSte(uint64_t strtab, uint32_t sid, uint64_t config, uint64_t cdPtr, uint64_t s2ttb,
                uint16_t vmid) {
    uint64_t dw0 = 0, dw2 = 0;
    dw0 = ste::STE_0_V.set(dw0, 1);
    dw0 = ste::STE_0_CONFIG.set(dw0, config);
    dw0 = ste::STE_0_S1CTXPTR.set(dw0, cdPtr >> 6);
    if (config == ste::CONFIG_NESTED) {
      dw2 = ste::STE_2_S2VMID.set(dw2, vmid);
      dw2 = ste::STE_2_S2T0SZ.set(dw2, 16);
      dw2 = ste::STE_2_S2SL0.set(dw2, 2);  // 4K: start at level 0 -> a 4-level S2 walk
      dw2 = ste::STE_2_S2PS.set(dw2, 5);
      dw2 = ste::STE_2_S2AA64.set(dw2, 1);
      dw2 = ste::STE_2_S2R.set(dw2, 1);
    }
    uint64_t base = strtab + uint64_t(sid) * 64;
    mem.store64(base, dw0);
    mem.store64(base + 16, dw2);
    mem.store64(base + 24, s2ttb);
  }

private:
  uint64_t next;
  uint64_t end;
};

}  // namespace nb::smmu::bench
