// Fuzz target: a scenario file's text through the loader (parameters, bounds, Cap'n Proto's
// parser, step lines) and, when it loads, the runner's checks against the default manifest's
// system (every instance, method, argument text and saved name) — what `nestbed run` does
// before the first step runs. The steps themselves do not run (a scenario may loop for long).

#include "tests/fuzz/harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& system = nb::fuzz::checkSystem("default.toml");
  auto loaded = nb::fuzz::loadScenario(
      kj::ArrayPtr<const char>(reinterpret_cast<const char*>(data), size));
  if (loaded.is<nb::LoadedScenario>()) {
    auto runner = system.runner();
    for (auto& e : runner->check(loaded.get<nb::LoadedScenario>())) (void)kj::str(e);
  }
  return 0;
}
