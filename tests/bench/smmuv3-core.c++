// SMMUv3 model benchmark: IOTLB-hit translation throughput, stage-1 and nested walk latency on
// IOTLB misses, and CMDQ consumption rate.
// Prints one `name: value unit` line per figure. Targets: translate_iotlb_hit_per_s >= 30M/s,
// translate_nested_4k_miss_ns <= 400 ns, cmdq_commands_per_s >= 20M/s.
//
// Structures come from smmuv3-structures.h. runCoreBench() is called by smmuv3.c++'s main,
// before the figures through the composed system.

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/smmuv3.h"
#include "tests/bench/smmuv3-structures.h"

#include <kj/debug.h>
#include <chrono>
#include <stdio.h>

namespace nb::smmu {
namespace {

using Clock = std::chrono::steady_clock;
using bench::IPA_DELTA;
using bench::Structures;
using bench::VA_BASE;

constexpr uint64_t MEM_BASE = 0x80000000;
constexpr uint64_t MEM_SIZE = 256ull << 20;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One model over its own memory, brought up with a linear stream table and both queues.
class Rig {
public:
  explicit Rig(Features f)
      : mem(PhysMem::createAnonymous(MEM_BASE, MEM_SIZE)),
        s(*mem, MEM_BASE, MEM_SIZE),
        smmu(kj::heap<Smmuv3>(*mem, f, [](Irq) {})) {
    strtab = s.alloc(64 * 256, 64 * 256);
    smmu->mmioWrite(STRTAB_BASE::OFFSET, strtab, 8);
    smmu->mmioWrite(STRTAB_BASE_CFG::OFFSET, 8, 4);
    cmdq = s.alloc(16 << CMDQ_LOG2, 16 << CMDQ_LOG2);
    smmu->mmioWrite(CMDQ_BASE::OFFSET, cmdq | CMDQ_LOG2, 8);
    evtq = s.alloc(32 << 8, 32 << 8);
    smmu->mmioWrite(EVTQ_BASE::OFFSET, evtq | 8, 8);
    smmu->mmioWrite(CR0::OFFSET, CR0::SMMUEN.mask() | CR0::CMDQEN.mask() | CR0::EVTQEN.mask(), 4);
  }

  static constexpr unsigned CMDQ_LOG2 = 12;

  kj::Own<PhysMem> mem;
  Structures s;
  kj::Own<Smmuv3> smmu;
  uint64_t strtab = 0, cmdq = 0, evtq = 0;
};

// SID 1: stage 1 only, 4 levels, `pages` 4K pages from VA_BASE.
void setUpS1(Rig& rig, unsigned pages) {
  Structures::Tables t(rig.s);
  uint64_t data = rig.s.alloc(uint64_t(pages) * 4096);
  for (unsigned i = 0; i < pages; i++) {
    t.map(VA_BASE + i * 4096ull, data + i * 4096ull, Structures::S1_LEAF);
  }
  rig.s.writeSte(rig.strtab, 1, ste::CONFIG_S1_TRANS, rig.s.makeCd(t.root(), 1), 0, 0);
}

// SID 2: nested, 4-level S1 over a 4-level S2.
void setUpNested(Rig& rig, unsigned pages) {
  Structures::Tables s2(rig.s);
  Structures::Tables s1(rig.s, IPA_DELTA, &s2);
  uint64_t data = rig.s.alloc(uint64_t(pages) * 4096);
  for (unsigned i = 0; i < pages; i++) {
    s1.map(VA_BASE + i * 4096ull, data + i * 4096ull + IPA_DELTA, Structures::S1_LEAF);
    s2.map(data + i * 4096ull + IPA_DELTA, data + i * 4096ull, Structures::S2_LEAF);
  }
  uint64_t cd = rig.s.makeCd(s1.root(), 1);
  s2.map(cd + IPA_DELTA, cd, Structures::S2_LEAF);
  rig.s.writeSte(rig.strtab, 2, ste::CONFIG_NESTED, cd + IPA_DELTA, s2.root(), 6);
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
  KJ_IF_MAYBE (ok, r.tryGet<TranslateOk>()) {
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

void runCoreBench() {
  benchHits();
  benchMisses();
  benchCmdq();
  KJ_ASSERT(sink != 42);  // keeps the translations observable
}

}  // namespace nb::smmu
