// smmu_queue benchmark: host command throughput through the component's capability, with the
// component inline and in its own process side by side (the SMMU model inline in both). Each
// submission is one 64-command batch (TLBI_NH_VA, one 4K page each) completed by its CMD_SYNC;
// LANES submissions are kept in flight, so the queue gathers several per doorbell (a 4096-entry
// ring holds all of them: cmdq_log2size = 12). Prints one
// `name: value unit` line per figure:
//   host_commands_per_s_inline        commands/s, smmu_queue inline (median of 5 runs)
//   host_commands_per_s_process       the same with smmu_queue process-placed
//   host_commands_per_s_process_over_inline
//   host_doorbells_per_batch_{inline,process}   CMDQ_PROD writes per submitted batch
// Targets (issue 6): >= 10 M commands/s inline, >= 2 M commands/s process-placed.
// Then the guest paths' figures (smmu-queue-guest.c++).

#include "tests/bench/smmu-queue-bench.h"

#include "components/smmu_queue/smmuv3/commands.h"
#include "interfaces/smmu-queue.capnp.h"
#include "system/composer/composer.h"
#include "system/registry.h"

#include <kj/async-unix.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <chrono>
#include <stdio.h>
#include <vector>

namespace nb::smmuq::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned BATCH = 64;    // commands per submission (Linux's CMDQ_BATCH_ENTRIES)
constexpr unsigned LANES = 16;    // submissions in flight

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Plan benchPlan(const Registry& registry, kj::StringPtr placement) {
  auto result = parseManifest(
      kj::str("[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n"
              "[[hw.smmuv3]]\nname = \"smmu0\"\nplacement = \"inline\"\nsid_bits = 8\n"
              "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\nplacement = \"",
              placement,
              "\"\nuses = { smmu = \"smmu0\" }\ncmdq_log2size = 12\n"),
      "bench.toml", registry);
  KJ_REQUIRE(result.is<Plan>(), "benchmark manifest does not validate");
  return kj::mv(result.get<Plan>());
}

struct System {
  System(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr placement,
         kj::StringPtr host)
      : io(io),
        composer(io, registry, benchPlan(registry, placement),
                 ComposerOptions{kj::heapString(host),
                                 [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }}) {
    composer.start().wait(io.waitScope);
    auto req = composer.root().getRequest();
    req.setName("queue");
    queue = req.send().getMain().castAs<rpc::SmmuQueue>();

    // One batch: TLBI_NH_VA of 64 consecutive 4K pages of ASID 1 (what an unmap produces
    // without range invalidation), as raw little-endian commands.
    kj::Vector<Command> cmds;
    for (unsigned i = 0; i < BATCH; i++) {
      TlbiRange r;
      r.asid = 1;
      r.addr = 0x10000000 + i * 4096ull;
      r.size = 4096;
      r.pageSize = 4096;
      buildTlbiRange(r, false, cmds);
    }
    blob = kj::heapArray<kj::byte>(BATCH * 16);
    memcpy(blob.begin(), cmds.begin(), blob.size());
  }
  ~System() noexcept(false) { composer.shutdown().wait(io.waitScope); }

  kj::Promise<void> lane(unsigned remaining) {
    if (remaining == 0) return kj::READY_NOW;
    auto req = queue.submitRequest(capnp::MessageSize{8 + BATCH * 2, 0});
    req.setCommands(blob);
    return req.send().then([this, remaining](auto&& response) {
      auto r = response.getResult();
      KJ_REQUIRE(r.getErrno() == rpc::Errno::OK && r.getExecuted() == BATCH,
                 "benchmark submission failed", r.getMessage());
      return lane(remaining - 1);
    });
  }

  // Seconds to submit `batches` batches through LANES lanes.
  double run(unsigned batches) {
    auto t = Clock::now();
    auto lanes = kj::heapArrayBuilder<kj::Promise<void>>(LANES);
    for (unsigned l = 0; l < LANES; l++) lanes.add(lane(batches / LANES));
    kj::joinPromises(lanes.finish()).wait(io.waitScope);
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  uint64_t counter(kj::StringPtr name) {
    for (auto& s : composer.stats().wait(io.waitScope)) {
      if (s.name != "queue") continue;
      for (auto& c : s.counters) {
        if (c.name == name) return c.value;
      }
    }
    KJ_FAIL_REQUIRE("no such counter", name);
  }

  struct Figures {
    double commandsPerS;
    double doorbellsPerBatch;
  };

  Figures measure(unsigned batches) {
    run(batches / 4);  // warm: connections, allocator, caches
    const uint64_t doorbells = counter("doorbells");
    std::vector<double> rates;
    for (int r = 0; r < 5; r++) rates.push_back(double(batches) * BATCH / run(batches));
    const double perBatch = double(counter("doorbells") - doorbells) / (5.0 * batches);
    return Figures{median(rates), perBatch};
  }

  kj::AsyncIoContext& io;
  Composer composer;
  rpc::SmmuQueue::Client queue = nullptr;
  kj::Array<kj::byte> blob;
};

}  // namespace

void runHostBench(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr host,
                  kj::StringPtr only) {
  System::Figures inlineFigures{0, 0}, processFigures{0, 0};
  if (only != "process") {
    System sys(io, registry, "inline", host);
    inlineFigures = sys.measure(16000);
    printf("host_commands_per_s_inline: %.0f commands/s\n", inlineFigures.commandsPerS);
  }
  if (only != "inline") {
    System sys(io, registry, "process", host);
    processFigures = sys.measure(4000);
    printf("host_commands_per_s_process: %.0f commands/s\n", processFigures.commandsPerS);
  }
  if (only == "") {
    printf("host_commands_per_s_process_over_inline: %.2f ratio\n",
           processFigures.commandsPerS / inlineFigures.commandsPerS);
    printf("host_doorbells_per_batch_inline: %.3f doorbells\n", inlineFigures.doorbellsPerBatch);
    printf("host_doorbells_per_batch_process: %.3f doorbells\n",
           processFigures.doorbellsPerBatch);
  }
}

}  // namespace nb::smmuq::bench

int main(int argc, char* argv[]) {
  // An optional argument, "inline" or "process", measures one placement only (for profiling).
  kj::StringPtr only = argc > 1 ? kj::StringPtr(argv[1]) : kj::StringPtr("");
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  const char* dir = getenv("RUNFILES_DIR");
  // `bazel run` starts in the runfiles tree; a direct run finds it through RUNFILES_DIR.
  auto host = dir != nullptr ? kj::str(dir, "/nestbed/system/nestbed-host")
                             : kj::str("system/nestbed-host");
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  nb::smmuq::bench::runHostBench(io, registry, host, only);
  if (only == "") nb::smmuq::bench::runGuestBench(io, registry, host);
  return 0;
}
