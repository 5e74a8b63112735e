// Runtime benchmark: composing the default manifest inline and with every instance in its own
// process, and one RPC round trip to an inline vs a process-placed component.
// Prints one `name: value unit` line per figure; compare ratios, not absolute times.

#include "system/composer/composer.h"
#include "system/registry.h"
#include "tests/fixtures/fixture.capnp.h"
#include "tests/fixtures/fixtures.h"

#include <kj/async-unix.h>
#include <kj/debug.h>
#include <algorithm>
#include <chrono>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

namespace nb {
namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

kj::String runfile(kj::StringPtr path) {
  const char* dir = getenv("RUNFILES_DIR");
  if (dir == nullptr) dir = getenv("TEST_SRCDIR");
  if (dir != nullptr) return kj::str(dir, "/nestbed/", path);
  return kj::heapString(path);  // bazel run: the working directory is the runfiles tree
}

Plan loadDefault(const Registry& registry, kj::StringPtr placement) {
  auto path = runfile("system/manifests/default.toml");
  auto first = loadManifest(path, registry);
  KJ_REQUIRE(first.is<Plan>(), "default manifest does not validate");
  // Re-plan with every instance's placement overridden.
  kj::Vector<Override> overrides;
  for (auto& inst : first.get<Plan>().instances) {
    auto prefix = inst.type->isHardware ? "hw." : "components.";
    overrides.add(Override{kj::str(prefix, inst.name, ".placement"), kj::str('"', placement, '"')});
  }
  auto result = loadManifest(path, registry, overrides);
  KJ_REQUIRE(result.is<Plan>());
  return kj::mv(result.get<Plan>());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double composeMs(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr placement, kj::StringPtr host) {
  std::vector<double> runs;
  for (int i = 0; i < 7; i++) {
    auto t = Clock::now();
    Composer composer(io, registry, loadDefault(registry, placement),
                      ComposerOptions{kj::heapString(host), [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }});
    composer.start().wait(io.waitScope);
    runs.push_back(msSince(t));
    composer.shutdown().wait(io.waitScope);
  }
  return median(runs);
}

double roundTripUs(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr placement, kj::StringPtr host) {
  auto text = kj::str("[memory]\nbase = 0x40000000\nsize = \"1MiB\"\n[components.c]\nimpl = \"fixture/counter\"\n"
                      "placement = \"", placement, "\"\n");
  auto plan = parseManifest(text, "bench.toml", registry);
  Composer composer(io, registry, kj::mv(plan.get<Plan>()), ComposerOptions{kj::heapString(host), [](kj::StringPtr) {}});
  composer.start().wait(io.waitScope);
  auto req = composer.root().getRequest();
  req.setName("c");
  auto counter = req.send().getMain().castAs<fixture::Counter>();
  for (int i = 0; i < 200; i++) counter.getRequest().send().wait(io.waitScope);  // warm up
  std::vector<double> runs;
  for (int r = 0; r < 5; r++) {
    constexpr int N = 2000;
    auto t = Clock::now();
    for (int i = 0; i < N; i++) counter.getRequest(capnp::MessageSize{4, 0}).send().wait(io.waitScope);
    runs.push_back(msSince(t) * 1000.0 / N);
  }
  composer.shutdown().wait(io.waitScope);
  return median(runs);
}

}  // namespace
}  // namespace nb

int main() {
  using namespace nb;
  Registry registry;
  addBuiltinTypes(registry);
  fixture::addFixtureTypes(registry);
  auto host = runfile("tests/fixtures/fixture-host");
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  double inlineMs = composeMs(io, registry, "inline", host);
  double processMs = composeMs(io, registry, "process", host);
  double rttInline = roundTripUs(io, registry, "inline", host);
  double rttProcess = roundTripUs(io, registry, "process", host);
  printf("compose_inline_ms: %.3f ms\n", inlineMs);
  printf("compose_process_ms: %.3f ms\n", processMs);
  printf("rpc_roundtrip_inline_us: %.2f us\n", rttInline);
  printf("rpc_roundtrip_process_us: %.2f us\n", rttProcess);
  printf("rpc_roundtrip_process_over_inline: %.1f ratio\n", rttProcess / rttInline);
  return 0;
}
