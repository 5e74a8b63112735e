// tests/bench: figures for the page-table engine core (no RPC), 4K granule, stage 1, 48-bit.
//
// Owns: the measurement loops. Prints one `name: value unit` line per figure, each figure once
// per table lifetime (suffix _linux, the default, and _eager):
//   map_4k_ptes_per_s        1 GiB mapped as 4K pages in one map() call (tables allocated too)
//   unmap_4k_ptes_per_s      that 1 GiB unmapped in one unmap() call (tables freed too)
//   map_1g_of_4k_us          the same map, in microseconds (1 GiB-aligned iova)
//   unmap_1g_of_4k_us        the same unmap (linux: one L1 entry cleared, its subtree freed)
//   unmap_over_map_1g        the ratio of the two (target <= 0.05 under linux)
//   iova_to_phys_per_s       random lookups inside a 1 GiB mapping of 4K pages
//   map_unmap_4k_pair_ns     one 4K map + unmap, tables kept alive by a resident neighbour
//   map_unmap_4k_pair_cold_ns  the same with no neighbour (eager: three tables allocated and
//                            freed per pair; linux: none, the tables stay)
//   cold_over_warm_pair      the ratio of the two (target <= 2 under linux)
//   map_1g_in_2m_blocks_us   1 GiB mapped as 512 2M blocks in one call
// Each figure is the best of several repetitions (least disturbed by the host).

#include "components/page_table/arm_lpae/io-page-table.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

namespace nb::pt {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr uint64_t GiB = uint64_t(1) << 30;
constexpr uint64_t MiB = uint64_t(1) << 20;
constexpr uint64_t PAGE = 4096;
constexpr Prot RW = Prot::READ | Prot::WRITE | Prot::CACHE;

void check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "page_table_core: %s failed\n", what);
    exit(1);
  }
}

int run(TableLifetime lifetime, const char* sfx) {
  constexpr PhysAddr BASE = 0x4000'0000;
  constexpr uint64_t SIZE = 64 * MiB;
  auto mem = PhysMem::createAnonymous(BASE, SIZE);
  FrameAllocator frames(BASE, SIZE);
  TableConfig config;
  config.lifetime = lifetime;
  IoPageTable table(*mem, frames, config);

  // 1 GiB at iova 4G; pa 4K-aligned only, so every leaf is a page.
  const uint64_t iova = 4 * GiB;
  const MapRun bigRun{iova, 0x1'0000'1000, GiB, RW};
  const UnmapRange bigRange{iova, GiB};
  const uint64_t ptes = GiB / PAGE;

  double bestMap = 1e9, bestUnmap = 1e9;
  for (int rep = 0; rep < 7; rep++) {
    auto start = Clock::now();
    auto r = table.map(kj::arrayPtr(&bigRun, 1));
    double t = secondsSince(start);
    check(r.bytesMapped == GiB, "bulk map");
    bestMap = kj::min(bestMap, t);
    start = Clock::now();
    auto u = table.unmap(kj::arrayPtr(&bigRange, 1));
    t = secondsSince(start);
    check(u.bytesUnmapped == GiB, "bulk unmap");
    bestUnmap = kj::min(bestUnmap, t);
  }
  printf("map_4k_ptes_per_s_%s: %.0f ptes/s\n", sfx, double(ptes) / bestMap);
  printf("unmap_4k_ptes_per_s_%s: %.0f ptes/s\n", sfx, double(ptes) / bestUnmap);
  printf("map_1g_of_4k_us_%s: %.1f us\n", sfx, bestMap * 1e6);
  printf("unmap_1g_of_4k_us_%s: %.1f us\n", sfx, bestUnmap * 1e6);
  printf("unmap_over_map_1g_%s: %.4f ratio\n", sfx, bestUnmap / bestMap);

  // Random lookups in a 1 GiB mapping of pages.
  {
    check(table.map(kj::arrayPtr(&bigRun, 1)).bytesMapped == GiB, "lookup map");
    std::mt19937_64 rng(42);
    std::vector<uint64_t> iovas(1 << 20);
    for (auto& v : iovas) v = iova + rng() % GiB;
    double best = 1e9;
    uint64_t sum = 0;
    for (int rep = 0; rep < 5; rep++) {
      auto start = Clock::now();
      for (uint64_t v : iovas) {
        KJ_IF_MAYBE(pa, table.iovaToPhys(v)) sum += *pa;
      }
      best = kj::min(best, secondsSince(start));
    }
    check(sum != 0, "lookups");
    printf("iova_to_phys_per_s_%s: %.0f lookups/s\n", sfx, double(iovas.size()) / best);
    check(table.unmap(kj::arrayPtr(&bigRange, 1)).bytesUnmapped == GiB, "lookup unmap");
  }

  // One 4K map + unmap pair, steady state: a resident page keeps the tables.
  auto pairNs = [&](uint64_t at) {
    const MapRun run{at, 0x8000'0000, PAGE, RW};
    const UnmapRange range{at, PAGE};
    constexpr int N = 200000;
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
      auto start = Clock::now();
      for (int i = 0; i < N; i++) {
        auto r = table.map(kj::arrayPtr(&run, 1));
        auto u = table.unmap(kj::arrayPtr(&range, 1));
        if (r.error != Errno::OK || u.bytesUnmapped != PAGE) check(false, "pair");
      }
      best = kj::min(best, secondsSince(start) / N);
    }
    return best * 1e9;
  };
  {
    const MapRun resident{iova, 0x9000'0000, PAGE, RW};
    check(table.map(kj::arrayPtr(&resident, 1)).error == Errno::OK, "resident map");
    const double warm = pairNs(iova + 17 * PAGE);
    printf("map_unmap_4k_pair_ns_%s: %.1f ns\n", sfx, warm);
    const UnmapRange residentRange{iova, PAGE};
    check(table.unmap(kj::arrayPtr(&residentRange, 1)).bytesUnmapped == PAGE, "resident unmap");
    if (lifetime == TableLifetime::EAGER) check(table.tablePagesInUse() == 1, "tables freed");
    const double cold = pairNs(iova + 17 * PAGE);
    printf("map_unmap_4k_pair_cold_ns_%s: %.1f ns\n", sfx, cold);
    printf("cold_over_warm_pair_%s: %.2f ratio\n", sfx, cold / warm);
  }

  // 1 GiB as 2M blocks: pa 2M-aligned but not 1G-aligned.
  {
    const MapRun run{iova, 0x1'0020'0000, GiB, RW};
    double best = 1e9;
    for (int rep = 0; rep < 20; rep++) {
      auto start = Clock::now();
      auto r = table.map(kj::arrayPtr(&run, 1));
      double t = secondsSince(start);
      check(r.bytesMapped == GiB, "2M map");
      best = kj::min(best, t);
      check(table.unmap(kj::arrayPtr(&bigRange, 1)).bytesUnmapped == GiB, "2M unmap");
    }
    printf("map_1g_in_2m_blocks_us_%s: %.2f us\n", sfx, best * 1e6);
  }
  return 0;
}

}  // namespace

int runCoreBench() {
  int status = run(TableLifetime::LINUX, "linux");
  return status != 0 ? status : run(TableLifetime::EAGER, "eager");
}

}  // namespace nb::pt
