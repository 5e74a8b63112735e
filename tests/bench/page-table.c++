// Page-table benchmark: the engine's C++ core (page-table-core.c++), then the component
// through its capability — what batching buys and what isolation costs: the same 1 GiB of 4K
// pages mapped as one batched call with the component inline and in its own process, and one
// page mapped and unmapped per call (what a naive caller pays).

#include "interfaces/page-table.capnp.h"
#include "system/composer/composer.h"
#include "system/registry.h"
#include "tests/bench/measure.h"

#include <kj/async-unix.h>
#include <stdlib.h>
#include <algorithm>
#include <chrono>
#include <stdio.h>
#include <vector>

namespace nb::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t MAP_BYTES = (1ull << 30) - 0x3000;

double usSince(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

Plan benchPlan(const Registry& registry, kj::StringPtr placement) {
  auto result = parseManifest(kj::str("[memory]\nbase = 0x40000000\nsize = \"1GiB\"\n"
                                      "[components.page_table]\nimpl = \"page_table/arm_lpae\"\n"
                                      "placement = \"", placement, "\"\n"),
                              "bench.toml", registry);
  return kj::mv(result.get<Plan>());
}

struct System {
  System(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr placement, kj::StringPtr host)
      : io(io),
        composer(io, registry, benchPlan(registry, placement),
                 ComposerOptions{kj::heapString(host), [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }}) {
    composer.start().wait(io.waitScope);
    auto req = composer.root().getRequest();
    req.setName("page_table");
    engine = req.send().getMain().castAs<rpc::PageTableEngine>();
  }
  ~System() noexcept(false) { composer.shutdown().wait(io.waitScope); }

  rpc::PageTable::Client create() {
    auto req = engine.createRequest();
    req.initConfig().setFormat(rpc::Format::STAGE1);
    return req.send().wait(io.waitScope).getTable();
  }

  kj::AsyncIoContext& io;
  Composer composer;
  rpc::PageTableEngine::Client engine = nullptr;
};

// ~1 GiB of 4K pages in one call, fresh table: IOVA and PA are congruent modulo 4K only, so no
// block fits anywhere and every leaf is a page. One repetition, in microseconds (wall time:
// the work spans two processes when the component is process-placed).
double map1gIn4kUs(System& sys) {
  auto table = sys.create();
  auto req = table.mapRequest();
  auto run = req.initRuns(1)[0];
  run.setIova(0x1000);
  run.setPa(0x40002000);
  run.setSize(MAP_BYTES);
  run.initProt().setRead(true);
  run.getProt().setWrite(true);
  auto t = Clock::now();
  auto response = req.send().wait(sys.io.waitScope);
  double us = usSince(t);
  KJ_ASSERT(response.getErrno() == rpc::Errno::OK);
  table.destroyRequest().send().wait(sys.io.waitScope);
  return us;
}

// One repetition of 500 one-page map + unmap pairs, microseconds per pair.
double mapUnmapPairUs(System& sys, rpc::PageTable::Client& table) {
  constexpr int N = 500;
  auto t = Clock::now();
  for (int i = 0; i < N; i++) {
    auto m = table.mapRequest();
    auto run = m.initRuns(1)[0];
    run.setIova(0x100000);
    run.setPa(0x40000000);
    run.setSize(4096);
    run.initProt().setRead(true);
    m.send().wait(sys.io.waitScope);
    auto u = table.unmapRequest();
    auto range = u.initRanges(1)[0];
    range.setIova(0x100000);
    range.setSize(4096);
    u.send().wait(sys.io.waitScope);
  }
  return usSince(t) / N;
}

void print(const char* name, const char* unit, const std::vector<double>& v, int precision) {
  Spread s = spreadOf(v);
  printf("%s: %.*f %s (min-max %.*f-%.*f, median of %zu, wall)\n", name, precision, s.median,
         unit, precision, s.min, precision, s.max, v.size());
}

}  // namespace

void runRpcBench(const Registry& registry, kj::StringPtr host) {
  // Both systems up at once and measured alternately, so each process/inline ratio pairs two
  // measurements taken moments apart (a loaded machine moves them together).
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  System inlineSys(io, registry, "inline", host);
  System processSys(io, registry, "process", host);
  auto inlineTable = inlineSys.create();
  auto processTable = processSys.create();
  mapUnmapPairUs(inlineSys, inlineTable);   // warm: connections, tables
  mapUnmapPairUs(processSys, processTable);
  constexpr int REPS = 7;
  const double ptes = double(MAP_BYTES) / 4096;
  std::vector<double> mapInline, mapProcess, mapRatio, pairInline, pairProcess;
  for (int r = 0; r < REPS; r++) {
    double mi = map1gIn4kUs(inlineSys), mp = map1gIn4kUs(processSys);
    mapInline.push_back(ptes / (mi / 1e6));
    mapProcess.push_back(ptes / (mp / 1e6));
    mapRatio.push_back(mp / mi);
    pairInline.push_back(mapUnmapPairUs(inlineSys, inlineTable));
    pairProcess.push_back(mapUnmapPairUs(processSys, processTable));
  }
  print("map_4k_rpc_inline_ptes_per_s", "ptes/s", mapInline, 0);
  print("map_4k_rpc_process_ptes_per_s", "ptes/s", mapProcess, 0);
  print("map_4k_process_over_inline", "ratio", mapRatio, 3);
  print("map_unmap_4k_pair_rpc_inline_us", "us", pairInline, 2);
  print("map_unmap_4k_pair_rpc_process_us", "us", pairProcess, 2);
}

}  // namespace nb::bench

namespace nb::pt {
int runCoreBench();
}

int main() {
  int status = nb::pt::runCoreBench();
  if (status != 0) return status;
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  const char* dir = getenv("RUNFILES_DIR");
  auto host = dir != nullptr ? kj::str(dir, "/nestbed/system/nestbed-host") : kj::str("system/nestbed-host");
  nb::bench::runRpcBench(registry, host);
  return 0;
}
