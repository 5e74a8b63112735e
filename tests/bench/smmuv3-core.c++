// SMMUv3 model benchmark: IOTLB-hit translation throughput, stage-1 and nested walk latency on
// IOTLB misses, and CMDQ consumption rate.
// Prints one `name: value unit` line per figure. Targets: translate_iotlb_hit_per_s >= 30M/s,
// translate_nested_4k_miss_ns <= 400 ns, cmdq_commands_per_s >= 20M/s.
//
// Structures are written with the production field tables (correctness is the tests' job);
// the page-table writer here is a minimal 4K one, not the page-table engine.

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/smmuv3.h"

#include <kj/debug.h>
#include <chrono>
#include <stdio.h>

namespace nb::smmu {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t MEM_BASE = 0x80000000;
constexpr uint64_t MEM_SIZE = 256ull << 20;
constexpr uint64_t IPA_DELTA = 0x40'0000'0000;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class Rig {
public:
  explicit Rig(Features f)
      : mem(PhysMem::createAnonymous(MEM_BASE, MEM_SIZE)), next(MEM_BASE),
        smmu(kj::heap<Smmuv3>(*mem, f, [](Irq) {})) {
    strtab = alloc(64 * 256, 64 * 256);
    smmu->mmioWrite(STRTAB_BASE::OFFSET, strtab, 8);
    smmu->mmioWrite(STRTAB_BASE_CFG::OFFSET, 8, 4);
    cmdq = alloc(16 << CMDQ_LOG2, 16 << CMDQ_LOG2);
    smmu->mmioWrite(CMDQ_BASE::OFFSET, cmdq | CMDQ_LOG2, 8);
    evtq = alloc(32 << 8, 32 << 8);
    smmu->mmioWrite(EVTQ_BASE::OFFSET, evtq | 8, 8);
    smmu->mmioWrite(CR0::OFFSET, CR0::SMMUEN.mask() | CR0::CMDQEN.mask() | CR0::EVTQEN.mask(),
                    4);
  }

  static constexpr unsigned CMDQ_LOG2 = 12;

  uint64_t alloc(uint64_t bytes, uint64_t align = 4096) {
    next = alignUp(next, align);
    uint64_t a = next;
    next += bytes;
    KJ_REQUIRE(mem->contains(a, bytes));
    return a;
  }

  // A 4K, 48-bit, 4-level table tree; `toPa` maps a table's visible address to its PA.
  struct Tables {
    Rig& rig;
    uint64_t delta;  // visible address = PA + delta (nested S1 tables live at IPAs)
    Tables* s2;      // maps each new table page when nested
    uint64_t rootPa;

    Tables(Rig& rig, uint64_t delta = 0, Tables* s2 = nullptr)
        : rig(rig), delta(delta), s2(s2), rootPa(rig.alloc(4096)) {
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
          rig.mem->store64(slot, (oa & genmask(47, 12)) | leafAttrs | pte::TYPE_PAGE);
          return;
        }
        uint64_t desc = rig.mem->load64(slot);
        if ((desc & 3) != 3) {
          uint64_t t = rig.alloc(4096);
          expose(t);
          desc = (t + delta) | pte::TYPE_TABLE;
          rig.mem->store64(slot, desc);
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
    mem->store64(addr, dw0);
    mem->store64(addr + 8, ttb0);
    return addr;
  }

  void writeSte(uint32_t sid, uint64_t config, uint64_t cdPtr, uint64_t s2ttb, uint16_t vmid) {
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
    mem->store64(base, dw0);
    mem->store64(base + 16, dw2);
    mem->store64(base + 24, s2ttb);
  }

  kj::Own<PhysMem> mem;
  uint64_t next;
  kj::Own<Smmuv3> smmu;
  uint64_t strtab = 0, cmdq = 0, evtq = 0;
};

constexpr uint64_t VA_BASE = 0x0000'1234'5600'0000;

// SID 1: stage 1 only, 4 levels, `pages` 4K pages from VA_BASE.
void setUpS1(Rig& rig, unsigned pages) {
  Rig::Tables t(rig);
  uint64_t data = rig.alloc(uint64_t(pages) * 4096);
  for (unsigned i = 0; i < pages; i++) t.map(VA_BASE + i * 4096ull, data + i * 4096ull,
                                             Rig::S1_LEAF);
  rig.writeSte(1, ste::CONFIG_S1_TRANS, rig.makeCd(t.root(), 1), 0, 0);
}

// SID 2: nested, 4-level S1 over a 4-level S2.
void setUpNested(Rig& rig, unsigned pages) {
  Rig::Tables s2(rig);
  Rig::Tables s1(rig, IPA_DELTA, &s2);
  uint64_t data = rig.alloc(uint64_t(pages) * 4096);
  for (unsigned i = 0; i < pages; i++) {
    s1.map(VA_BASE + i * 4096ull, data + i * 4096ull + IPA_DELTA, Rig::S1_LEAF);
    s2.map(data + i * 4096ull + IPA_DELTA, data + i * 4096ull, Rig::S2_LEAF);
  }
  uint64_t cd = rig.makeCd(s1.root(), 1);
  s2.map(cd + IPA_DELTA, cd, Rig::S2_LEAF);
  rig.writeSte(2, ste::CONFIG_NESTED, cd + IPA_DELTA, s2.root(), 6);
}

template <typename F>
double timeLoop(uint64_t iterations, F&& body) {
  auto start = Clock::now();
  for (uint64_t i = 0; i < iterations; i++) body(i);
  return secondsSince(start);
}

uint64_t sink = 0;

void translateOrDie(Smmuv3& smmu, const Transaction& t) {
  auto r = smmu.translate(t);
  KJ_IF_MAYBE(ok, r.tryGet<TranslateOk>()) {
    sink += ok->pa;
  } else {
    KJ_FAIL_ASSERT("benchmark translation failed", t.sid, t.iova);
  }
}

void benchHits() {
  Rig rig{Features()};
  constexpr unsigned PAGES = 1024;
  setUpS1(rig, PAGES);
  Transaction t;
  t.sid = 1;
  for (unsigned i = 0; i < PAGES; i++) {
    t.iova = VA_BASE + i * 4096ull;
    translateOrDie(*rig.smmu, t);
  }
  constexpr uint64_t N = 30'000'000;
  double s = timeLoop(N, [&](uint64_t i) {
    t.iova = VA_BASE + (i & (PAGES - 1)) * 4096 + (i & 0xff8);
    translateOrDie(*rig.smmu, t);
  });
  printf("translate_iotlb_hit_per_s: %.0f translations/s\n", N / s);
}

void benchMisses() {
  Features f;
  f.iotlbEntries = 0;  // every translation walks; STEs and CDs stay cached
  Rig rig{f};
  constexpr unsigned PAGES = 512;
  setUpS1(rig, PAGES);
  setUpNested(rig, PAGES);
  for (uint32_t sid : {1u, 2u}) {
    Transaction t;
    t.sid = sid;
    constexpr uint64_t N = 3'000'000;
    t.iova = VA_BASE;
    translateOrDie(*rig.smmu, t);
    double s = timeLoop(N, [&](uint64_t i) {
      t.iova = VA_BASE + (i & (PAGES - 1)) * 4096;
      translateOrDie(*rig.smmu, t);
    });
    printf("%s: %.1f ns\n",
           sid == 1 ? "translate_s1_4level_miss_ns" : "translate_nested_4k_miss_ns", s * 1e9 / N);
  }
}

void benchCmdq() {
  Rig rig{Features()};
  constexpr unsigned PAGES = 1024;
  setUpS1(rig, PAGES);
  // Fill the whole ring once with batches of 63 TLBI_NH_VA and a CMD_SYNC; the benchmark then
  // only moves PROD, so the figure is the SMMU's consumption rate.
  constexpr uint32_t ENTRIES = 1u << Rig::CMDQ_LOG2;
  for (uint32_t i = 0; i < ENTRIES; i++) {
    uint64_t dw0, dw1;
    if (i % 64 == 63) {
      dw0 = cmd::CMD_0_OP.set(0, uint8_t(Opcode::SYNC));
      dw0 = cmd::SYNC_0_CS.set(dw0, cmd::SYNC_CS_SEV);
      dw1 = 0;
    } else {
      dw0 = cmd::CMD_0_OP.set(0, uint8_t(Opcode::TLBI_NH_VA));
      dw0 = cmd::TLBI_0_ASID.set(dw0, 1);
      dw1 = cmd::TLBI_1_LEAF.set(0, 1);
      dw1 = cmd::TLBI_1_VA.set(dw1, (VA_BASE + (i % PAGES) * 4096ull) >> 12);
    }
    rig.mem->store64(rig.cmdq + i * 16ull, dw0);
    rig.mem->store64(rig.cmdq + i * 16ull + 8, dw1);
  }
  // Warm the IOTLB so the first invalidations find entries.
  Transaction t;
  t.sid = 1;
  for (unsigned i = 0; i < PAGES; i++) {
    t.iova = VA_BASE + i * 4096ull;
    translateOrDie(*rig.smmu, t);
  }
  constexpr uint64_t BATCHES = 200'000;
  uint32_t prod = 0;
  double s = timeLoop(BATCHES, [&](uint64_t) {
    prod = (prod + 64) & (2 * ENTRIES - 1);
    rig.smmu->mmioWrite(CMDQ_PROD::OFFSET, prod, 4);
  });
  KJ_ASSERT(rig.smmu->mmioRead(CMDQ_CONS::OFFSET, 4) == prod, "the queue stopped");
  printf("cmdq_commands_per_s: %.0f commands/s\n", BATCHES * 64 / s);
}

}  // namespace
}  // namespace nb::smmu

int main() {
  nb::smmu::benchHits();
  nb::smmu::benchMisses();
  nb::smmu::benchCmdq();
  return nb::smmu::sink == 42 ? 1 : 0;
}
