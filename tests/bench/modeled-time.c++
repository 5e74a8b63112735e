// Modeled time's cost to nestbed: the same scenario steps — a bulk map of 4 KiB pages in one call
// and a loop of DMAs hitting the IOTLB, through the composed default stack, every component
// inline — with the clock on (the default profile) and off (`--set timing.profile=off`),
// interleaved on/off, repetition by repetition. Prints each step's median wall time with its
// min-max, the whole run's process CPU time (steadier on a loaded machine), and on/off ratios.
// With timing on, every call between components also crosses the membranes that charge
// crossings (the --trace machinery): that, not the charges themselves, is most of the cost.

#include "system/experiment/session.h"
#include "system/registry.h"
#include "system/script/scenario-file.h"

#include <kj/async-unix.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <algorithm>
#include <string>
#include <vector>

namespace nb::bench {
namespace {

struct Spread {
  double median, min, max;
};

Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// `bazel run` starts it in its runfiles tree; RUNFILES_DIR names the tree otherwise.
double cpuUs() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

std::string runfile(const char* rel) {
  const char* dir = getenv("RUNFILES_DIR");
  return dir ? std::string(dir) + "/nestbed/" + rel : std::string(rel);
}

}  // namespace

int main() {
  Registry registry;
  addBuiltinTypes(registry);
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  ScenarioLoader loader(ScenarioLoader::defaultRoot());
  auto loaded = loader.load(runfile("tests/bench/scenarios/timing-overhead.capnp").c_str());
  KJ_SWITCH_ONEOF(loaded) {
    KJ_CASE_ONEOF(errors, kj::Array<ScenarioError>) {
      for (auto& e : errors) fprintf(stderr, "%s\n", kj::str(e).cStr());
      return 2;
    }
    KJ_CASE_ONEOF(scenario, LoadedScenario) {
      auto scenarios = kj::heapArray<LoadedScenario>(1);
      scenarios[0] = kj::mv(scenario);
      const char* labels[] = {"bulk map: 128 MiB of 4 KiB pages in one call",
                              "IOTLB-hit loop: 2000 DMAs of 4 bytes"};
      const char* names[] = {"pt_bulk_map_4k", "iotlb_hit_dma"};
      std::vector<double> us[2][2];   // [step][on = 0, off = 1]
      std::vector<double> cpu[2];      // the whole run's CPU time (everything is inline)
      constexpr int REPS = 7;
      auto host = runfile("system/nestbed-host");
      for (int rep = 0; rep < REPS; rep++) {
        for (int off = 0; off < 2; off++) {
          Override o{kj::str("timing.profile"), kj::str(off ? "off" : "neoverse-smmuv3")};
          auto plan = loadManifest(runfile("system/manifests/default.toml").c_str(), registry,
                                   kj::arrayPtr(&o, 1));
          experiment::RunOptions options{registry, host.c_str(), [](kj::StringPtr) {}};
          double before = cpuUs();
          auto result = experiment::runOnce(io, kj::mv(plan.get<Plan>()), scenarios, options);
          cpu[off].push_back(cpuUs() - before);
          if (!result.ok()) {
            fprintf(stderr, "the scenario failed (timing %s)\n", off ? "off" : "on");
            return 1;
          }
          for (auto s : result.report.asReader().getScenarios()[0].getSteps()) {
            for (int k = 0; k < 2; k++) {
              if (s.getLabel() == labels[k]) us[k][off].push_back(s.getMicros());
            }
          }
        }
      }
      for (int k = 0; k < 2; k++) {
        auto on = spread(us[k][0]), off = spread(us[k][1]);
        printf("%s_timing_on_us: %.1f us (min %.1f, max %.1f, %d runs)\n", names[k], on.median,
               on.min, on.max, REPS);
        printf("%s_timing_off_us: %.1f us (min %.1f, max %.1f, %d runs)\n", names[k], off.median,
               off.min, off.max, REPS);
        printf("%s_timing_on_over_off: %.3f ratio\n", names[k], on.median / off.median);
      }
      auto on = spread(cpu[0]), off = spread(cpu[1]);
      printf("run_cpu_timing_on_us: %.0f us (min %.0f, max %.0f)\n", on.median, on.min, on.max);
      printf("run_cpu_timing_off_us: %.0f us (min %.0f, max %.0f)\n", off.median, off.min, off.max);
      printf("run_cpu_timing_on_over_off: %.3f ratio\n", on.median / off.median);
      return 0;
    }
  }
  return 1;
}

}  // namespace nb::bench

int main() { return nb::bench::main(); }
