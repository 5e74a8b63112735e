// tests/bench: nestbed's page-table engine against Linux 6.12's io-pgtable-arm on the same work,
// in one process, interleaved, in thread CPU time (and wall time as `_wall`).
//
// Owns: the workloads and the ratios. The Linux peer is a shared object built at benchmark time
// from Debian's linux-source-6.12 (io-pgtable-arm.c and io-pgtable.c, unmodified) behind
// nestbed's shim (tests/bench/linux-peer/), loaded with dlopen() from `--peer PATH`; run it as
// `bazel run -c opt //tests/bench:pt_vs_linux`, whose script builds the peer first.
//
// Both sides: stage 1, 4K granule, 48-bit IAS/OAS, prot READ|WRITE|CACHE, table memory
// pre-faulted (nestbed's memfd written once; the peer's page pool likewise). Per repetition each
// side runs once, the order alternating (the one-page workloads in slices, alternating slice by
// slice, so that both sides see the same load), and the ratio nestbed/Linux is taken per
// repetition; every figure is the median with its min-max (measure.h). Printed:
//   pt_map_4k_over_linux         one 4K page per call, 4096 distinct pages (map_pages pgcount 1)
//   pt_unmap_4k_over_linux       the same pages unmapped one per call: Linux unmap_pages with a
//                                fresh stack gather, nestbed unmap() into one reused UnmapResult
//   pt_iova_to_phys_over_linux   one random lookup per call inside a 1 GiB mapping of 4K pages
//   pt_bulk_map_over_linux       1 GiB of 4K pages (pa 4K-aligned only): nestbed one map() call,
//                                Linux __iommu_map's loop of map_pages (one per table)
// with each side's absolute figure (`nestbed_*`, `linux_*`). The two sides' lookups must sum to
// the same physical addresses, and the peer must raise no WARN_ON, or the run fails.

#include "components/page_table/arm_lpae/io-page-table.h"
#include "tests/bench/linux-peer/peer.h"
#include "tests/bench/measure.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <cstdio>
#include <cstring>
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
constexpr int LINUX_RW = 1 | 2 | 4;  // IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE
constexpr PhysAddr BASE = 0x4000'0000;
constexpr uint64_t TABLE_MEMORY = 64 * MiB;
constexpr int REPS = 15;

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "pt_vs_linux: %s\n", what);
  exit(1);
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

struct Peer {
  // The peer's entry points (peer.h), looked up by name.
  nb_linux_peer_create_fn* create;
  nb_linux_peer_destroy_fn* destroy;
  nb_linux_peer_map_fn* map;
  nb_linux_peer_map_each_fn* mapEach;
  nb_linux_peer_unmap_fn* unmap;
  nb_linux_peer_unmap_each_fn* unmapEach;
  nb_linux_peer_iova_to_phys_sum_fn* iovaToPhysSum;
  nb_linux_peer_iova_to_phys_fn* iovaToPhys;
  nb_linux_peer_table_pages_fn* tablePages;
  nb_linux_peer_warnings_fn* warnings;

  explicit Peer(const char* path) {
    void* so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (so == nullptr) {
      fprintf(stderr, "pt_vs_linux: cannot load the Linux peer %s: %s\n", path, dlerror());
      exit(2);
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(so, name);
      if (p == nullptr) {
        fprintf(stderr, "pt_vs_linux: %s lacks %s\n", path, name);
        exit(2);
      }
      return p;
    };
    create = reinterpret_cast<nb_linux_peer_create_fn*>(sym("nb_linux_peer_create"));
    destroy = reinterpret_cast<nb_linux_peer_destroy_fn*>(sym("nb_linux_peer_destroy"));
    map = reinterpret_cast<nb_linux_peer_map_fn*>(sym("nb_linux_peer_map"));
    mapEach = reinterpret_cast<nb_linux_peer_map_each_fn*>(sym("nb_linux_peer_map_each"));
    unmap = reinterpret_cast<nb_linux_peer_unmap_fn*>(sym("nb_linux_peer_unmap"));
    unmapEach = reinterpret_cast<nb_linux_peer_unmap_each_fn*>(sym("nb_linux_peer_unmap_each"));
    iovaToPhysSum = reinterpret_cast<nb_linux_peer_iova_to_phys_sum_fn*>(
        sym("nb_linux_peer_iova_to_phys_sum"));
    iovaToPhys =
        reinterpret_cast<nb_linux_peer_iova_to_phys_fn*>(sym("nb_linux_peer_iova_to_phys"));
    tablePages =
        reinterpret_cast<nb_linux_peer_table_pages_fn*>(sym("nb_linux_peer_table_pages"));
    warnings = reinterpret_cast<nb_linux_peer_warnings_fn*>(sym("nb_linux_peer_warnings"));
  }
};

// Runs a and b in the order the repetition says, returning their intervals as (a, b).
template <typename A, typename B>
std::pair<Interval, Interval> interleaved(int rep, A&& a, B&& b) {
  if (rep % 2 == 0) {
    Interval x = timed(a);
    return {x, timed(b)};
  }
  Interval y = timed(b);
  return {timed(a), y};
}

// The same in `chunks` slices, alternating sides slice by slice (the first side alternating
// too), each side's intervals summed: both sides see the same load, on a machine where other
// processes' cache and scheduling noise moves a whole pass by 2x. a(k) and b(k) run slice k.
template <typename A, typename B>
std::pair<Interval, Interval> interleavedSlices(int rep, unsigned chunks, A&& a, B&& b) {
  Interval x, y;
  for (unsigned k = 0; k < chunks; k++) {
    auto [i, j] = interleaved(rep + int(k), [&]() { a(k); }, [&]() { b(k); });
    x.cpu += i.cpu;
    x.wall += i.wall;
    y.cpu += j.cpu;
    y.wall += j.wall;
  }
  return {x, y};
}

void printRatio(const char* name, const Samples& s) { nb::bench::print(name, "ratio", s, 3); }

int run(const char* peerPath) {
  Peer peer(peerPath);
  nb_linux_peer* lnx = peer.create(48, 48, TABLE_MEMORY);
  check(lnx != nullptr, "the peer's alloc_io_pgtable_ops(ARM_64_LPAE_S1) failed");

  auto mem = PhysMem::createAnonymous(BASE, TABLE_MEMORY);
  for (uint64_t pa = BASE; pa < BASE + TABLE_MEMORY; pa += PAGE) mem->store64(pa, 0);
  FrameAllocator frames(BASE, TABLE_MEMORY);
  IoPageTable table(*mem, frames, TableConfig{});

  // 1 GiB at iova 4G; pa 4K-aligned only, so every leaf is a page.
  const uint64_t iova = 4 * GiB, bigPa = 0x1'0000'1000;
  const MapRun bigRun{iova, bigPa, GiB, RW};
  const UnmapRange bigRange{iova, GiB};
  const double ptes = double(GiB / PAGE);
  auto nestbedBigMap = [&]() {
    check(table.map(kj::arrayPtr(&bigRun, 1)).bytesMapped == GiB, "nestbed bulk map");
  };
  auto linuxBigMap = [&]() {
    check(peer.map(lnx, iova, bigPa, PAGE, GiB / PAGE, LINUX_RW) == 0, "Linux bulk map");
  };
  auto unmapBoth = [&]() {
    check(table.unmap(kj::arrayPtr(&bigRange, 1)).bytesUnmapped == GiB, "nestbed bulk unmap");
    check(peer.unmap(lnx, iova, GiB, 1) == GiB, "Linux bulk unmap");
  };

  // ---- bulk map, 1 GiB of 4K pages
  {
    Samples nestbedNs, linuxNs, ratio;
    for (int rep = 0; rep < REPS; rep++) {
      auto [n, l] = interleaved(rep, nestbedBigMap, linuxBigMap);
      check(table.iovaToPhys(iova + GiB - 8) == bigPa + GiB - 8 &&
                peer.iovaToPhys(lnx, iova + GiB - 8) == bigPa + GiB - 8,
            "bulk map translations");
      unmapBoth();
      nestbedNs.add(n.cpu * 1e9 / ptes, n.wall * 1e9 / ptes);
      linuxNs.add(l.cpu * 1e9 / ptes, l.wall * 1e9 / ptes);
      ratio.add(n.cpu / l.cpu, n.wall / l.wall);
    }
    nb::bench::print("nestbed_bulk_map_ns_per_pte", "ns", nestbedNs, 3);
    nb::bench::print("linux_bulk_map_ns_per_pte", "ns", linuxNs, 3);
    printRatio("pt_bulk_map_over_linux", ratio);
  }

  // ---- one page per call: 4096 distinct pages of a 16 MiB window, mapped then unmapped
  {
    constexpr unsigned N = 4096;
    std::vector<MapRun> maps;
    std::vector<UnmapRange> unmaps;
    std::vector<uint64_t> iovas, pas;
    std::mt19937_64 rng(7);
    std::vector<uint64_t> order(N);
    for (unsigned i = 0; i < N; i++) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (unsigned i = 0; i < N; i++) {
      const uint64_t v = iova + order[i] * PAGE, pa = 0x8000'0000 + order[i] * PAGE;
      maps.push_back(MapRun{v, pa, PAGE, RW});
      unmaps.push_back(UnmapRange{v, PAGE});
      iovas.push_back(v);
      pas.push_back(pa);
    }
    constexpr unsigned SLICES = 4, SLICE = N / SLICES;
    auto nestbedMap = [&](unsigned k) {
      for (unsigned i = k * SLICE; i < (k + 1) * SLICE; i++) {
        if (table.map(kj::arrayPtr(&maps[i], 1)).error != Errno::OK) fail("nestbed page map");
      }
    };
    UnmapResult unmapped;  // one result reused: the caller-held gather of a Linux caller
    auto nestbedUnmap = [&](unsigned k) {
      for (unsigned i = k * SLICE; i < (k + 1) * SLICE; i++) {
        table.unmap(kj::arrayPtr(&unmaps[i], 1), unmapped);
        if (unmapped.bytesUnmapped != PAGE) fail("nestbed page unmap");
      }
    };
    auto linuxMap = [&](unsigned k) {
      if (peer.mapEach(lnx, &iovas[k * SLICE], &pas[k * SLICE], SLICE, LINUX_RW) != 0) {
        fail("Linux page map");
      }
    };
    auto linuxUnmap = [&](unsigned k) {
      if (peer.unmapEach(lnx, &iovas[k * SLICE], SLICE) != 0) fail("Linux page unmap");
    };
    // Warm: the window's tables exist from here on on both sides (a 4K unmap frees none).
    for (unsigned k = 0; k < SLICES; k++) nestbedMap(k), linuxMap(k);
    for (unsigned k = 0; k < SLICES; k++) nestbedUnmap(k), linuxUnmap(k);
    Samples nMap, lMap, nUnmap, lUnmap, mapRatio, unmapRatio;
    for (int rep = 0; rep < REPS; rep++) {
      auto [nm, lm] = interleavedSlices(rep, SLICES, nestbedMap, linuxMap);
      auto [nu, lu] = interleavedSlices(rep, SLICES, nestbedUnmap, linuxUnmap);
      nMap.add(nm.cpu * 1e9 / N, nm.wall * 1e9 / N);
      lMap.add(lm.cpu * 1e9 / N, lm.wall * 1e9 / N);
      nUnmap.add(nu.cpu * 1e9 / N, nu.wall * 1e9 / N);
      lUnmap.add(lu.cpu * 1e9 / N, lu.wall * 1e9 / N);
      mapRatio.add(nm.cpu / lm.cpu, nm.wall / lm.wall);
      unmapRatio.add(nu.cpu / lu.cpu, nu.wall / lu.wall);
    }
    nb::bench::print("nestbed_map_4k_ns", "ns", nMap);
    nb::bench::print("linux_map_4k_ns", "ns", lMap);
    printRatio("pt_map_4k_over_linux", mapRatio);
    nb::bench::print("nestbed_unmap_4k_ns", "ns", nUnmap);
    nb::bench::print("linux_unmap_4k_ns", "ns", lUnmap);
    printRatio("pt_unmap_4k_over_linux", unmapRatio);
  }

  // ---- random lookups in a 1 GiB mapping of pages, one per call
  {
    nestbedBigMap();
    linuxBigMap();
    std::mt19937_64 rng(42);
    std::vector<uint64_t> iovas(1 << 18);
    for (auto& v : iovas) v = iova + rng() % GiB;
    constexpr unsigned SLICES = 16;
    const size_t slice = iovas.size() / SLICES;
    uint64_t nestbedSum = 0, linuxSum = 0;
    auto nestbedLookups = [&](unsigned k) {
      uint64_t sum = 0;
      for (size_t i = k * slice; i < (k + 1) * slice; i++) {
        KJ_IF_MAYBE(pa, table.iovaToPhys(iovas[i])) sum += *pa;
      }
      nestbedSum += sum;
    };
    auto linuxLookups = [&](unsigned k) {
      linuxSum += peer.iovaToPhysSum(lnx, &iovas[k * slice], slice);
    };
    Samples nNs, lNs, ratio;
    for (int rep = 0; rep < REPS; rep++) {
      nestbedSum = linuxSum = 0;
      auto [n, l] = interleavedSlices(rep, SLICES, nestbedLookups, linuxLookups);
      check(nestbedSum == linuxSum && nestbedSum != 0, "the two sides' lookups differ");
      nNs.add(n.cpu * 1e9 / iovas.size(), n.wall * 1e9 / iovas.size());
      lNs.add(l.cpu * 1e9 / iovas.size(), l.wall * 1e9 / iovas.size());
      ratio.add(n.cpu / l.cpu, n.wall / l.wall);
    }
    nb::bench::print("nestbed_iova_to_phys_ns", "ns", nNs);
    nb::bench::print("linux_iova_to_phys_ns", "ns", lNs);
    printRatio("pt_iova_to_phys_over_linux", ratio);
    unmapBoth();
  }

  check(peer.warnings() == 0, "the Linux peer raised WARN_ON");
  peer.destroy(lnx);
  return 0;
}

}  // namespace
}  // namespace nb::pt

int main(int argc, char** argv) {
  const char* peer = getenv("NB_LINUX_PEER");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc) {
      peer = argv[++i];
    } else {
      fprintf(stderr, "usage: pt_vs_linux_bench --peer PATH (the peer's shared object)\n");
      return 2;
    }
  }
  if (peer == nullptr) {
    fprintf(stderr, "pt_vs_linux_bench: no peer (--peer PATH or NB_LINUX_PEER); run it through "
                    "`bazel run -c opt //tests/bench:pt_vs_linux`, which builds one\n");
    return 2;
  }
  return nb::pt::run(peer);
}
