// Fuzz target: `nestbed call` on the default manifest's system. The first line is
// "<instance> <method>", the rest the argument text; checkCall parses it as the method's
// parameters (Cap'n Proto text, bounded first) as `call` does before it calls.

#include "tests/fuzz/harness.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& system = nb::fuzz::checkSystem("default.toml");
  auto text = kj::heapString(reinterpret_cast<const char*>(data), size);
  size_t newline = 0;
  while (newline < text.size() && text[newline] != '\n') newline++;
  kj::StringPtr head(text.begin(), newline);
  size_t space = 0;
  while (space < head.size() && head[space] != ' ') space++;
  auto instance = kj::heapString(head.begin(), space);
  auto method = kj::heapString(space < head.size() ? head.slice(space + 1) : kj::StringPtr(""));
  auto args = kj::heapString(newline < text.size() ? text.slice(newline + 1) : kj::StringPtr(""));
  auto runner = system.runner();
  (void)runner->checkCall(instance, method, args);
  return 0;
}
