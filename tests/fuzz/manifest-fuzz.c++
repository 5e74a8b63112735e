// Fuzz target: a manifest's text through the composer's validation, without starting anything
// (parseManifest: TOML, then every key, setting, role and wire against the shipped registry),
// and the plan it makes printed as `check` and `graph` print it.

#include "system/composer/manifest.h"
#include "tests/fuzz/harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = kj::heapString(reinterpret_cast<const char*>(data), size);
  auto result = nb::parseManifest(text, "fuzz.toml", nb::fuzz::registry());
  if (result.is<nb::Plan>()) {
    auto& plan = result.get<nb::Plan>();
    (void)nb::formatPlan(plan);
    (void)nb::planToDot(plan);
  } else {
    for (auto& e : result.get<kj::Array<nb::ManifestError>>()) (void)kj::str(e);
  }
  return 0;
}
