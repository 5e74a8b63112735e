// tests/bench: figures for the page-table engine core (no RPC), 4K granule, stage 1, 48-bit.
//
// Owns: the measurement loops. Prints one `name: value unit (spread)` line per figure, in
// thread CPU time and (`_wall`) wall time, medians of repetitions with their min-max
// (tests/bench/measure.h), each figure once per table lifetime (suffix _linux, the default, and
// _eager). The engine's memory is pre-faulted (every page of the memfd written before the first
// map) except where a name says first_touch:
//   map_4k_ptes_per_s              1 GiB mapped as 4K pages in one map() call (tables too)
//   map_4k_ptes_per_s_first_touch  the same on fresh memory: each table page's first-touch
//                                  fault is in the figure (a new PhysMem per repetition)
//   unmap_4k_ptes_per_s            that 1 GiB unmapped in one unmap() call (tables freed too)
//   map_1g_of_4k_us, unmap_1g_of_4k_us  the same map and unmap in microseconds
//   unmap_over_map_1g              their ratio, per repetition (target <= 0.05 under linux)
//   map_4k_one_page_ns             one 4K page per map() call, 4096 distinct pages
//   unmap_4k_one_page_ns           one 4K page per unmap() call, the same pages, into one reused
//                                  UnmapResult (what a caller unmapping page by page keeps)
//   iova_to_phys_ns                one random lookup inside a 1 GiB mapping of 4K pages
//   map_unmap_4k_pair_ns           one 4K map + unmap, tables kept alive by a resident neighbour
//   map_unmap_4k_pair_cold_ns      the same with no neighbour (eager: three tables allocated and
//                                  freed per pair; linux: none, the tables stay)
//   cold_over_warm_pair            the ratio of the two, per repetition (target <= 2 linux)
//   map_1g_in_2m_blocks_us         1 GiB mapped as 512 2M blocks in one call

#include "components/page_table/arm_lpae/io-page-table.h"
#include "tests/bench/measure.h"

#include <cstdio>
#include <random>
#include <vector>

namespace nb::pt {
namespace {

using nb::bench::Interval;
using nb::bench::Samples;
using nb::bench::timed;

constexpr uint64_t GiB = uint64_t(1) << 30;
constexpr uint64_t MiB = uint64_t(1) << 20;
constexpr uint64_t PAGE = 4096;
constexpr Prot RW = Prot::READ | Prot::WRITE | Prot::CACHE;
constexpr PhysAddr BASE = 0x4000'0000;
constexpr uint64_t SIZE = 64 * MiB;
constexpr int REPS = 7;

void check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "page_table_core: %s failed\n", what);
    exit(1);
  }
}

void print(const char* name, const char* sfx, const char* unit, const Samples& s,
           int precision = 1) {
  nb::bench::print(kj::str(name, "_", sfx).cStr(), unit, s, precision);
}

// A table over its own memory; `prefault` writes every page of the memory first.
struct Rig {
  Rig(TableLifetime lifetime, bool prefault)
      : mem(PhysMem::createAnonymous(BASE, SIZE)), frames(BASE, SIZE) {
    if (prefault) {
      for (uint64_t pa = BASE; pa < BASE + SIZE; pa += PAGE) mem->store64(pa, 0);
    }
    TableConfig config;
    config.lifetime = lifetime;
    table = kj::heap<IoPageTable>(*mem, frames, config);
  }
  kj::Own<PhysMem> mem;
  FrameAllocator frames;
  kj::Own<IoPageTable> table;
};

int run(TableLifetime lifetime, const char* sfx) {
  // 1 GiB at iova 4G; pa 4K-aligned only, so every leaf is a page.
  const uint64_t iova = 4 * GiB;
  const MapRun bigRun{iova, 0x1'0000'1000, GiB, RW};
  const UnmapRange bigRange{iova, GiB};
  const double ptes = double(GiB / PAGE);

  Rig rig(lifetime, true);
  IoPageTable& table = *rig.table;

  // ---- bulk map and unmap, pre-faulted; first-touch on fresh memory, alternating
  {
    Samples mapRate, unmapRate, mapUs, unmapUs, ratio, firstTouchRate;
    for (int rep = 0; rep < REPS; rep++) {
      Interval m = timed([&]() { check(table.map(kj::arrayPtr(&bigRun, 1)).bytesMapped == GiB,
                                       "bulk map"); });
      Interval u = timed([&]() {
        check(table.unmap(kj::arrayPtr(&bigRange, 1)).bytesUnmapped == GiB, "bulk unmap");
      });
      mapRate.add(ptes / m.cpu, ptes / m.wall);
      unmapRate.add(ptes / u.cpu, ptes / u.wall);
      mapUs.add(m.cpu * 1e6, m.wall * 1e6);
      unmapUs.add(u.cpu * 1e6, u.wall * 1e6);
      ratio.add(u.cpu / m.cpu, u.wall / m.wall);
      Rig fresh(lifetime, false);
      Interval f = timed([&]() {
        check(fresh.table->map(kj::arrayPtr(&bigRun, 1)).bytesMapped == GiB, "fresh map");
      });
      firstTouchRate.add(ptes / f.cpu, ptes / f.wall);
    }
    print("map_4k_ptes_per_s", sfx, "ptes/s", mapRate, 0);
    print("map_4k_ptes_per_s_first_touch", sfx, "ptes/s", firstTouchRate, 0);
    print("unmap_4k_ptes_per_s", sfx, "ptes/s", unmapRate, 0);
    print("map_1g_of_4k_us", sfx, "us", mapUs);
    print("unmap_1g_of_4k_us", sfx, "us", unmapUs);
    print("unmap_over_map_1g", sfx, "ratio", ratio, 4);
  }

  // ---- one page per call: 4096 distinct pages of a 16 MiB window, mapped then unmapped
  {
    constexpr unsigned N = 4096;
    std::vector<MapRun> maps;
    std::vector<UnmapRange> unmaps;
    std::mt19937_64 rng(7);
    std::vector<uint64_t> order(N);
    for (unsigned i = 0; i < N; i++) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (unsigned i = 0; i < N; i++) {
      maps.push_back(MapRun{iova + order[i] * PAGE, 0x8000'0000 + order[i] * PAGE, PAGE, RW});
      unmaps.push_back(UnmapRange{iova + order[i] * PAGE, PAGE});
    }
    // Warm: the window's tables exist from here on under linux (a 4K unmap frees none).
    for (auto& m : maps) check(table.map(kj::arrayPtr(&m, 1)).error == Errno::OK, "warm map");
    for (auto& u : unmaps) check(table.unmap(kj::arrayPtr(&u, 1)).bytesUnmapped == PAGE, "warm");
    Samples mapNs, unmapNs;
    for (int rep = 0; rep < REPS; rep++) {
      Interval m = timed([&]() {
        for (auto& r : maps) {
          if (table.map(kj::arrayPtr(&r, 1)).error != Errno::OK) check(false, "page map");
        }
      });
      UnmapResult unmapped;
      Interval u = timed([&]() {
        for (auto& r : unmaps) {
          table.unmap(kj::arrayPtr(&r, 1), unmapped);
          if (unmapped.bytesUnmapped != PAGE) check(false, "unmap");
        }
      });
      mapNs.add(m.cpu * 1e9 / N, m.wall * 1e9 / N);
      unmapNs.add(u.cpu * 1e9 / N, u.wall * 1e9 / N);
    }
    print("map_4k_one_page_ns", sfx, "ns", mapNs);
    print("unmap_4k_one_page_ns", sfx, "ns", unmapNs);
  }

  // ---- random lookups in a 1 GiB mapping of pages
  {
    check(table.map(kj::arrayPtr(&bigRun, 1)).bytesMapped == GiB, "lookup map");
    std::mt19937_64 rng(42);
    std::vector<uint64_t> iovas(1 << 18);
    for (auto& v : iovas) v = iova + rng() % GiB;
    uint64_t sum = 0;
    Samples ns, rate;
    for (int rep = 0; rep < REPS; rep++) {
      Interval t = timed([&]() {
        for (uint64_t v : iovas) {
          KJ_IF_MAYBE(pa, table.iovaToPhys(v)) sum += *pa;
        }
      });
      ns.add(t.cpu * 1e9 / iovas.size(), t.wall * 1e9 / iovas.size());
      rate.add(iovas.size() / t.cpu, iovas.size() / t.wall);
    }
    check(sum != 0, "lookups");
    print("iova_to_phys_ns", sfx, "ns", ns);
    print("iova_to_phys_per_s", sfx, "lookups/s", rate, 0);
    check(table.unmap(kj::arrayPtr(&bigRange, 1)).bytesUnmapped == GiB, "lookup unmap");
  }

  // ---- one 4K map + unmap pair: a resident page keeps the tables (warm), or none (cold);
  // the two interleaved per repetition.
  {
    const uint64_t at = iova + 17 * PAGE;
    const MapRun pairRun{at, 0x8000'0000, PAGE, RW};
    const UnmapRange pairRange{at, PAGE};
    const MapRun resident{iova, 0x9000'0000, PAGE, RW};
    const UnmapRange residentRange{iova, PAGE};
    constexpr int N = 50000;
    auto pairs = [&]() {
      return timed([&]() {
        for (int i = 0; i < N; i++) {
          auto r = table.map(kj::arrayPtr(&pairRun, 1));
          auto u = table.unmap(kj::arrayPtr(&pairRange, 1));
          if (r.error != Errno::OK || u.bytesUnmapped != PAGE) check(false, "pair");
        }
      });
    };
    Samples warm, cold, ratio;
    for (int rep = 0; rep < REPS; rep++) {
      check(table.map(kj::arrayPtr(&resident, 1)).error == Errno::OK, "resident map");
      Interval w = pairs();
      check(table.unmap(kj::arrayPtr(&residentRange, 1)).bytesUnmapped == PAGE, "resident");
      if (lifetime == TableLifetime::EAGER) check(table.tablePagesInUse() == 1, "tables freed");
      Interval c = pairs();
      warm.add(w.cpu * 1e9 / N, w.wall * 1e9 / N);
      cold.add(c.cpu * 1e9 / N, c.wall * 1e9 / N);
      ratio.add(c.cpu / w.cpu, c.wall / w.wall);
    }
    print("map_unmap_4k_pair_ns", sfx, "ns", warm);
    print("map_unmap_4k_pair_cold_ns", sfx, "ns", cold);
    print("cold_over_warm_pair", sfx, "ratio", ratio, 2);
  }

  // ---- 1 GiB as 2M blocks: pa 2M-aligned but not 1G-aligned.
  {
    const MapRun run{iova, 0x1'0020'0000, GiB, RW};
    Samples us;
    for (int rep = 0; rep < REPS; rep++) {
      Interval t = timed([&]() {
        check(table.map(kj::arrayPtr(&run, 1)).bytesMapped == GiB, "2M map");
      });
      us.add(t.cpu * 1e6, t.wall * 1e6);
      check(table.unmap(kj::arrayPtr(&bigRange, 1)).bytesUnmapped == GiB, "2M unmap");
    }
    print("map_1g_in_2m_blocks_us", sfx, "us", us, 2);
  }
  return 0;
}

}  // namespace

int runCoreBench() {
  int status = run(TableLifetime::LINUX, "linux");
  return status != 0 ? status : run(TableLifetime::EAGER, "eager");
}

}  // namespace nb::pt
