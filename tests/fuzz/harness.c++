// See harness.h.

#include "tests/fuzz/harness.h"

#include "system/experiment/session.h"
#include "system/registry.h"

#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/debug.h>

#include <fcntl.h>
#include <unistd.h>

namespace nb::fuzz {

namespace {
kj::String rootDir;
kj::String scratchPath;
}  // namespace

void init(int* argc, char*** argv) {
  if (argc != nullptr && *argc > 0) ScenarioLoader::setProgramPath((*argv)[0]);
  rootDir = ScenarioLoader::defaultRoot();
  const char* tmp = getenv("TEST_TMPDIR");
  scratchPath = kj::str(tmp != nullptr ? tmp : "/tmp", "/nestbed-fuzz-", getpid(), ".capnp");
  atexit([]() { unlink(scratchPath.cStr()); });
  kj::UnixEventPort::captureChildExit();
}

const Registry& registry() {
  static const Registry* r = []() {
    auto* r = new Registry;
    addBuiltinTypes(*r);
    return r;
  }();
  return *r;
}

kj::StringPtr root() { return rootDir; }

kj::String readShipped(kj::StringPtr relative) {
  auto path = kj::str(rootDir, "/", relative);
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  KJ_REQUIRE(fd >= 0, "cannot open a shipped file", path);
  kj::Vector<char> text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.addAll(kj::ArrayPtr<char>(buf, size_t(n)));
  close(fd);
  text.add('\0');
  return kj::String(text.releaseAsArray());
}

kj::OneOf<LoadedScenario, kj::Array<ScenarioError>> loadScenario(kj::ArrayPtr<const char> text) {
  int fd = open(scratchPath.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  KJ_REQUIRE(fd >= 0, "cannot write the scratch scenario", scratchPath);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.begin() + done, text.size() - done);
    KJ_REQUIRE(n > 0, "cannot write the scratch scenario", scratchPath);
    done += size_t(n);
  }
  close(fd);
  ScenarioLoader loader(rootDir);
  return loader.load(scratchPath);
}

Plan inlinePlan(kj::StringPtr manifest) {
  auto text = readShipped(kj::str("system/manifests/", manifest));
  auto parsed = parseManifest(text, manifest, registry());
  KJ_REQUIRE(parsed.is<Plan>(), "a shipped manifest did not validate", manifest);
  auto plan = kj::mv(parsed.get<Plan>());
  plan.memory.file = nullptr;
  for (auto& inst : plan.instances) inst.placement = Placement::INLINE;
  return plan;
}

CheckSystem::CheckSystem(kj::StringPtr manifest) : io_(kj::setupAsyncIo()) {
  composer_ = kj::heap<Composer>(io_, registry(), inlinePlan(manifest),
                                 ComposerOptions{kj::str("(inline only)"), [](kj::StringPtr) {}});
  composer_->start().wait(io_.waitScope);
}

kj::Own<ScenarioRunner> CheckSystem::runner() {
  return kj::heap<ScenarioRunner>(io_.waitScope, composer_->root(), registry());
}

CheckSystem& checkSystem(kj::StringPtr manifest) {
  // Composed on first use and kept: these targets never change it.
  static CheckSystem* system = new CheckSystem(manifest);
  return *system;
}

bool runScenario(kj::StringPtr manifest, kj::StringPtr scenarioText) {
  auto loaded = loadScenario(scenarioText.asArray());
  if (!loaded.is<LoadedScenario>()) {
    if (getenv("NESTBED_FUZZ_VERBOSE") != nullptr) {
      for (auto& e : loaded.get<kj::Array<ScenarioError>>()) {
        fprintf(stderr, "%s\n", kj::str(e).cStr());
      }
    }
    return false;
  }
  auto plan = inlinePlan(manifest);

  auto io = kj::setupAsyncIo();
  experiment::RunOptions options{registry(), "(inline only)", [](kj::StringPtr) {}};
  auto scenarios = kj::heapArrayBuilder<LoadedScenario>(1);
  scenarios.add(kj::mv(loaded.get<LoadedScenario>()));
  auto all = scenarios.finish();
  auto result = experiment::runOnce(io, kj::mv(plan), all, options);
  if (getenv("NESTBED_FUZZ_VERBOSE") != nullptr) {   // what an input did, when looking at one
    switch (result.outcome) {
      case experiment::RunResult::Outcome::RAN:
        for (auto s : result.report.asReader().getScenarios()) {
          fputs(formatScenarioReport(s).cStr(), stderr);
        }
        break;
      case experiment::RunResult::Outcome::START_FAILED:
        fprintf(stderr, "did not start: %s\n", result.error.cStr());
        break;
      case experiment::RunResult::Outcome::CHECK_FAILED:
        for (auto& e : result.checkErrors) fprintf(stderr, "%s\n", kj::str(e).cStr());
        break;
    }
  }
  return result.outcome == experiment::RunResult::Outcome::RAN;
}

kj::String scenarioText(kj::ArrayPtr<const kj::String> steps) {
  return kj::str("@0xd0a1c2b3e4f50617;\n",
                 "using import \"/interfaces/scenario.capnp\".Scenario;\n",
                 "const scenario :Scenario = (\n  steps = [\n    ",
                 kj::strArray(steps, ",\n    "), "\n  ],\n);\n");
}

}  // namespace nb::fuzz
