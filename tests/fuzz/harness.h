// What the fuzz targets share: the shipped registry, the schemas and manifests found through the
// runfiles tree, scenario text loaded as a file, and one `nestbed run` of a scenario on a
// shipped manifest (everything inline, memory anonymous) with a fresh event loop per input, so
// an input's outcome never depends on the inputs before it.
//
// A target fails (libFuzzer reports a crash) only on what must never happen: a sanitizer
// report, an abort, an uncaught exception. A scenario step that fails, or an input that does not
// parse, is an ordinary outcome.

#pragma once

#include "system/composer/composer.h"
#include "system/composer/manifest.h"
#include "system/script/runner.h"
#include "system/script/scenario-file.h"

#include <kj/async-io.h>
#include <kj/one-of.h>
#include <kj/string.h>

#include <cstddef>
#include <cstdint>

namespace nb::fuzz {

// Call from LLVMFuzzerInitialize: where the runfiles are, children captured.
void init(int* argc, char*** argv);

// Every component and hardware model nestbed ships.
const Registry& registry();

// The directory holding interfaces/ and system/ (the runfiles tree).
kj::StringPtr root();

// A shipped file (`system/manifests/default.toml`) as text.
kj::String readShipped(kj::StringPtr relative);

// `text` as a scenario file (written to this process's scratch file and loaded from there).
kj::OneOf<LoadedScenario, kj::Array<ScenarioError>> loadScenario(kj::ArrayPtr<const char> text);

// `nestbed run MANIFEST SCENARIO` in this process: the shipped manifest (every instance inline,
// memory anonymous), the scenario checked and, when it checks, run; then shut down. Returns
// whether it ran (false: it did not load, check or start).
bool runScenario(kj::StringPtr manifest, kj::StringPtr scenarioText);

// A shipped manifest's plan (system/manifests/<manifest>), every instance inline and memory
// anonymous.
Plan inlinePlan(kj::StringPtr manifest);

// A system composed once from a shipped manifest (inline) for the process's lifetime, for
// targets that only check against it and never change it.
class CheckSystem {
public:
  explicit CheckSystem(kj::StringPtr manifest);
  kj::Own<ScenarioRunner> runner();   // a fresh runner: nothing carried over between inputs

private:
  kj::AsyncIoContext io_;
  kj::Own<Composer> composer_;
};
CheckSystem& checkSystem(kj::StringPtr manifest);

// Reads the input as little-endian words: `next()` is 0 once the bytes are used up.
class Words {
public:
  Words(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t u64() { return take(8); }
  uint32_t u32() { return uint32_t(take(4)); }
  uint8_t u8() { return uint8_t(take(1)); }
  size_t left() const { return size_ - at_; }

private:
  uint64_t take(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && at_ < size_; i++) v |= uint64_t(data_[at_++]) << (8 * i);
    return v;
  }
  const uint8_t* data_;
  size_t size_, at_ = 0;
};

// A scenario file's text: the header and the steps given (each a Cap'n Proto step literal).
kj::String scenarioText(kj::ArrayPtr<const kj::String> steps);

}  // namespace nb::fuzz
