// Page-table benchmark: the engine's C++ core (page-table-core.c++), then the component
// through its capability — what batching buys and what isolation costs: the same 1 GiB of 4K
// pages mapped as one batched call with the component inline and in its own process, and one
// page mapped and unmapped per call (what a naive caller pays).

#include "interfaces/page-table.capnp.h"
#include "system/composer/composer.h"
#include "system/registry.h"

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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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
// block fits anywhere and every leaf is a page.
double map1gIn4kUs(System& sys) {
  std::vector<double> runs;
  for (int r = 0; r < 5; r++) {
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
    runs.push_back(usSince(t));
    KJ_ASSERT(response.getErrno() == rpc::Errno::OK);
    table.destroyRequest().send().wait(sys.io.waitScope);
  }
  return median(runs);
}

double mapUnmapPairUs(System& sys) {
  auto table = sys.create();
  std::vector<double> runs;
  for (int r = 0; r < 5; r++) {
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
    runs.push_back(usSince(t) / N);
  }
  return median(runs);
}

}  // namespace

void runRpcBench(const Registry& registry, kj::StringPtr host) {
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  double mapInline, mapProcess, pairInline, pairProcess;
  {
    System sys(io, registry, "inline", host);
    mapInline = map1gIn4kUs(sys);
    pairInline = mapUnmapPairUs(sys);
  }
  {
    System sys(io, registry, "process", host);
    mapProcess = map1gIn4kUs(sys);
    pairProcess = mapUnmapPairUs(sys);
  }
  double ptes = double(MAP_BYTES) / 4096;
  printf("map_4k_rpc_inline_ptes_per_s: %.0f ptes/s\n", ptes / (mapInline / 1e6));
  printf("map_4k_rpc_process_ptes_per_s: %.0f ptes/s\n", ptes / (mapProcess / 1e6));
  printf("map_4k_process_over_inline: %.3f ratio\n", mapProcess / mapInline);
  printf("map_unmap_4k_pair_rpc_inline_us: %.2f us\n", pairInline);
  printf("map_unmap_4k_pair_rpc_process_us: %.2f us\n", pairProcess);
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
