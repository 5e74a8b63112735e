// How nestbed's cost grows with the size of the modeled system: the scale system of `nestbed
// generate` (system/generate/scale.h: N VMs x 2 passed-through devices behind vIOMMUs on two
// SMMUs with two-level stream tables) at N = 1, 4, 16 and 64, the OS-side components inline and
// then process-placed (the hardware inline in both). For each:
//   compose_ms_n<N>_<placement>        composing and starting the system (median of 3, wall)
//   compose_us_per_vm_n<N>_<placement> the same over N (linear growth keeps it flat)
//   rss_mib_n<N>_<placement>           resident memory the composed system adds: this process's
//                                      growth plus every nestbed-host child's resident set
//   attach_us_, map_dma_unmap_us_, guest_invalidation_us_n<N>_<placement>
//                                      per-operation wall time of the scenario's steps (the
//                                      runner's own per-step timing, which leaves out its
//                                      counter accounting), median over every device of every
//                                      run (at least 32 devices per figure): a guest's nested
//                                      attach (allocNested + Ownership.attach), a guest map of
//                                      two pages + a DMA write through both stages + the guest's
//                                      unmap with its invalidation, one guest invalidation batch
// and for every figure its growth from N to 4N in this run, `<figure>_growth_n<N>_to_n<4N>`
// (targets: per-operation ≤ 1.2, compose time and memory ≤ 4.8, i.e. linear).

#include "system/composer/composer.h"
#include "system/experiment/session.h"
#include "system/generate/scale.h"
#include "system/registry.h"
#include "system/script/scenario-file.h"

#include <kj/async-unix.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace nb::bench {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string runfile(const char* rel) {
  const char* dir = getenv("RUNFILES_DIR");
  return dir ? std::string(dir) + "/nestbed/" + rel : std::string(rel);
}

// Resident set of a process in KiB (VmRSS), 0 if it is gone.
double rssKib(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", int(pid));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return 0;
  char line[256];
  double kib = 0;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atof(line + 6);
  }
  fclose(f);
  return kib;
}

// This process's resident set plus its children's (the process-placed instances).
double treeRssKib() {
  double total = rssKib(getpid());
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return total;
  while (dirent* e = readdir(proc)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", int(pid));
    FILE* f = fopen(path, "r");
    if (f == nullptr) continue;
    char buf[512];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    // "pid (comm) state ppid ...": the comm may hold spaces, the last ')' ends it.
    const char* close = strrchr(buf, ')');
    int ppid = 0;
    char state;
    if (close != nullptr && sscanf(close + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid()) {
      total += rssKib(pid);
    }
  }
  closedir(proc);
  return total;
}

struct Figures {
  double composeMs = 0, rssMib = 0;
  std::map<std::string, double> perOpUs;   // "attach", "map_dma_unmap", "guest_invalidation"
};

Plan planOf(const Registry& registry, const generate::ScaleParams& params) {
  auto result = parseManifest(generate::scaleManifest(params),
                              kj::str("scale-n", params.vms, "-", params.placement, ".toml"), registry);
  KJ_SWITCH_ONEOF(result) {
    KJ_CASE_ONEOF(plan, Plan) { return kj::mv(plan); }
    KJ_CASE_ONEOF(errors, kj::Array<ManifestError>) {
      for (auto& e : errors) fprintf(stderr, "%s\n", kj::str(e).cStr());
      KJ_FAIL_REQUIRE("the generated manifest does not validate");
    }
  }
  KJ_UNREACHABLE;
}

// One composition: start (timed) and the resident memory it added, then shutdown.
void compose(kj::AsyncIoContext& io, const Registry& registry, const generate::ScaleParams& params,
             kj::StringPtr host, std::vector<double>& ms, std::vector<double>& rssMib) {
  double before = treeRssKib();
  Composer composer(io, registry, planOf(registry, params),
                    ComposerOptions{kj::heapString(host), [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }});
  auto t = Clock::now();
  composer.start().wait(io.waitScope);
  ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  rssMib.push_back((treeRssKib() - before) / 1024);
  composer.shutdown().wait(io.waitScope);
}

LoadedScenario scenarioOf(const generate::ScaleParams& params, kj::StringPtr scratch) {
  auto path = kj::str(scratch, "/scale-n", params.vms, "-", getpid(), ".capnp");
  FILE* f = fopen(path.cStr(), "w");
  KJ_REQUIRE(f != nullptr, "cannot write the scenario", path);
  auto text = generate::scaleScenario(params);
  fwrite(text.begin(), 1, text.size(), f);
  fclose(f);
  ScenarioLoader loader(ScenarioLoader::defaultRoot());
  auto loaded = loader.load(path);
  unlink(path.cStr());
  KJ_REQUIRE(loaded.is<LoadedScenario>(), "the generated scenario does not load");
  return kj::mv(loaded.get<LoadedScenario>());
}

// One run of the scenario: each device's operations, by what they are, added to `samples`. The
// runner's per-step counter accounting is off: it reads every instance's counters between steps
// (O(instances) per step), which would leave each step to start with caches the accounting
// evicted — a cost of the instrument, not of the operation.
void operate(kj::AsyncIoContext& io, const Registry& registry, const generate::ScaleParams& params,
             kj::StringPtr host, kj::ArrayPtr<const LoadedScenario> scenarios,
             std::map<std::string, std::vector<double>>& samples) {
  experiment::RunOptions options{registry, host, [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }};
  options.stepCounters = false;
  auto result = experiment::runOnce(io, planOf(registry, params), scenarios, options);
  KJ_REQUIRE(result.ok(), "the scale scenario failed", params.vms, params.placement, result.error);
  // Per device: its steps by what they do ("vm3.1: attach").
  std::map<std::string, std::map<std::string, double>> byDevice;
  for (auto scenario : result.report.asReader().getScenarios()) {
    for (auto step : scenario.getSteps()) {
      kj::StringPtr label = step.getLabel();
      KJ_IF_MAYBE(colon, label.findFirst(':')) {
        std::string who(label.begin(), *colon), what(label.begin() + *colon + 2);
        byDevice[who][what] += step.getMicros();
      }
    }
  }
  for (auto& [who, ops] : byDevice) {
    if (who.find('.') == std::string::npos) continue;   // a VM's own steps
    samples["attach"].push_back(ops["attach"]);
    samples["map_dma_unmap"].push_back(ops["map"] + ops["DMA"] + ops["unmap"]);
    samples["guest_invalidation"].push_back(ops["invalidate"]);
  }
}

int main() {
  Registry registry;
  addBuiltinTypes(registry);
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  auto host = kj::str(runfile("system/nestbed-host").c_str());
  const char* tmp = getenv("TEST_TMPDIR");
  if (tmp == nullptr) tmp = getenv("TMPDIR");
  kj::String scratch = kj::str(tmp != nullptr ? tmp : "/tmp");
  const uint32_t sizes[] = {1, 4, 16, 64};
  constexpr int REPS = 3;
  for (kj::StringPtr placement : {"inline"_kj, "process"_kj}) {
    struct PerSize {
      generate::ScaleParams params;
      kj::Array<LoadedScenario> scenarios;
      std::vector<double> composeMs, rssMib;
      std::map<std::string, std::vector<double>> samples;
    };
    std::map<uint32_t, PerSize> per;
    for (uint32_t n : sizes) {
      auto& p = per[n];
      p.params.vms = n;
      p.params.devices = 2;
      p.params.smmus = 2;
      p.params.placement = placement;
      p.scenarios = kj::heapArray<LoadedScenario>(1);
      p.scenarios[0] = scenarioOf(p.params, scratch);
    }
    // The sizes interleaved, repetition by repetition, so the machine's load falls on all alike;
    // small systems run several times, so every figure has at least 16 devices per repetition.
    for (int rep = 0; rep < REPS; rep++) {
      for (uint32_t n : sizes) {
        auto& p = per[n];
        compose(io, registry, p.params, host, p.composeMs, p.rssMib);
        for (uint32_t run = 0; run * n * p.params.devices < 16; run++) {
          operate(io, registry, p.params, host, p.scenarios, p.samples);
        }
      }
    }
    std::map<uint32_t, Figures> figures;
    for (uint32_t n : sizes) {
      auto& p = per[n];
      Figures f;
      f.composeMs = median(p.composeMs);
      f.rssMib = median(p.rssMib);
      for (auto& [op, v] : p.samples) f.perOpUs[op] = median(v);
      auto name = [&](const char* what) { return kj::str(what, "_n", n, "_", placement); };
      printf("%s: %.1f ms\n", name("compose_ms").cStr(), f.composeMs);
      printf("%s: %.1f us\n", name("compose_us_per_vm").cStr(), f.composeMs * 1000 / n);
      printf("%s: %.1f MiB\n", name("rss_mib").cStr(), f.rssMib);
      for (auto& [op, us] : f.perOpUs) printf("%s: %.1f us\n", name((op + "_us").c_str()).cStr(), us);
      figures[n] = kj::mv(f);
    }
    for (size_t i = 0; i + 1 < sizeof(sizes) / sizeof(sizes[0]); i++) {
      uint32_t a = sizes[i], b = sizes[i + 1];
      auto growth = [&](const char* what, double x, double y) {
        printf("%s_growth_n%u_to_n%u_%s: %.2f x\n", what, a, b, placement.cStr(), x > 0 ? y / x : 0);
      };
      growth("compose_ms", figures[a].composeMs, figures[b].composeMs);
      growth("rss_mib", figures[a].rssMib, figures[b].rssMib);
      for (auto& [op, us] : figures[a].perOpUs) {
        growth((op + "_us").c_str(), us, figures[b].perOpUs[op]);
      }
    }
    fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace nb::bench

int main() { return nb::bench::main(); }
