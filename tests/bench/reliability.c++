// Reliability figures: kill trials. Every process-placed component of the default and nested
// systems is killed mid-scenario (the `kill` step of tests/system/scenarios/kill-*.capnp), with
// `restart = "on-failure"` where its implementation recovers, each trial run by the real `nestbed`
// under a time limit. A trial is
//   detected by name  if every step after the kill either did its work or the first that failed
//                     named the dead component (later failures follow from it);
//   a hang            if the run did not end within the limit;
//   silent state loss if a step after the kill failed without naming it first: something before
//                     it returned ok on state its server no longer had, or a device reached memory
//                     it should not have.
// Prints one `name: value` line per figure (fuzzing figures: tools/fuzz.sh).
//
//   bazel run -c opt //tests/bench:reliability [-- --repeat N]

#include "interfaces/report.capnp.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/string.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <string>
#include <vector>

namespace {

std::string runfile(const std::string& rel) {
  const char* dir = getenv("RUNFILES_DIR");
  return dir ? std::string(dir) + "/nestbed/" + rel : rel;
}

struct Trial {
  const char* manifest;
  const char* scenario;
  const char* victim;
  const char* extra;   // placement and restart settings
};

constexpr int LIMIT_S = 120;

enum class Verdict { DETECTED, HANG, SILENT };

Verdict judge(const Trial& t, std::string& why) {
  std::string cmd = "timeout " + std::to_string(LIMIT_S) + " " + runfile("system/nestbed") +
                    " run --json " + runfile(t.manifest) + " " + runfile(t.scenario) + " " +
                    t.extra + " --define victim=" + t.victim + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p != nullptr && (n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = p ? pclose(p) : -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 124) {
    why = "no end within the limit";
    return Verdict::HANG;
  }
  auto brace = out.find('{');
  if (brace == std::string::npos) {
    why = "no report";
    return Verdict::SILENT;
  }
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<nb::rpc::RunReport>();
  capnp::JsonCodec codec;
  codec.decode(kj::StringPtr(out.c_str() + brace), report);
  const std::string named = std::string("component '") + t.victim + "'";
  bool afterKill = false;
  for (auto step : report.getScenarios()[0].getSteps()) {
    if (!afterKill) {
      afterKill = std::string(step.getLabel().cStr()) == "kill";
      continue;
    }
    if (step.getOk()) continue;
    std::string failures;
    for (auto f : step.getFailures()) failures += f.getActual().cStr();
    if (failures.find(named) != std::string::npos) return Verdict::DETECTED;
    why = std::string("step '") + step.getLabel().cStr() + "': " + failures.substr(0, 200);
    return Verdict::SILENT;
  }
  if (!afterKill) {
    why = "the kill step did not run";
    return Verdict::SILENT;
  }
  return Verdict::DETECTED;   // every step did its work: the component recovered
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
  }
  const char* processAll =
      "--set components.page_table.placement=process "
      "--set components.smmu_queue.placement=process "
      "--set components.domains.placement=process --set components.groups.placement=process";
  std::string nested = std::string(processAll) + " --set components.shadow.placement=process";
  std::string restarting = std::string(processAll) +
                           " --set components.page_table.restart=on-failure"
                           " --set components.smmu_queue.restart=on-failure";
  std::string nestedRestarting = nested +
                                 " --set components.page_table.restart=on-failure"
                                 " --set components.smmu_queue.restart=on-failure";
  // The hardware models too, in their own processes (a model has no restart: its registers and
  // caches are its state).
  std::string hwDefault = std::string(processAll) +
                          " --set hw.smmu0.placement=process --set hw.pci0.placement=process"
                          " --set hw.ep0.placement=process";
  std::string hwNested = nested +
                         " --set hw.smmu0.placement=process --set hw.pci0.placement=process"
                         " --set hw.ep0.placement=process --set hw.vm0.placement=process";
  const char* dma[] = {"system/manifests/default.toml", "tests/system/scenarios/kill-mid-dma.capnp"};
  const char* nest[] = {"system/manifests/nested.toml", "tests/system/scenarios/kill-nested.capnp"};
  std::vector<Trial> trials;
  for (const char* v : {"page_table", "smmu_queue", "domains", "groups"}) {
    trials.push_back({dma[0], dma[1], v, processAll});
    trials.push_back({dma[0], dma[1], v, restarting.c_str()});
  }
  for (const char* v : {"page_table", "smmu_queue", "domains", "groups", "shadow"}) {
    trials.push_back({nest[0], nest[1], v, nested.c_str()});
    trials.push_back({nest[0], nest[1], v, nestedRestarting.c_str()});
  }
  for (const char* v : {"smmu0", "pci0", "ep0"}) trials.push_back({dma[0], dma[1], v, hwDefault.c_str()});
  for (const char* v : {"smmu0", "vm0", "ep0"}) trials.push_back({nest[0], nest[1], v, hwNested.c_str()});
  int total = 0, detected = 0, hangs = 0, silent = 0;
  const int all = int(trials.size()) * repeat;
  for (int r = 0; r < repeat; r++) {
    for (auto& t : trials) {
      std::string why;
      auto verdict = judge(t, why);
      total++;
      detected += verdict == Verdict::DETECTED;
      hangs += verdict == Verdict::HANG;
      silent += verdict == Verdict::SILENT;
      fprintf(stderr, "trial %d/%d: kill %s (%s)%s%s\n", total, all, t.victim, t.scenario,
              verdict == Verdict::DETECTED ? "" : ": ", why.c_str());
    }
  }
  printf("kill_trials: %d\n", total);
  printf("kill_detected_by_name: %d\n", detected);
  printf("kill_hangs: %d\n", hangs);
  printf("restart_silent_state_loss: %d\n", silent);
  return detected == total ? 0 : 1;
}
