// Fuzz target: guest command batches on one guest path (NB_GUEST_PATH: 0 native, 1 generic,
// 2 sw_vcmdq; one binary each). A vIOMMU over a nest-parent stage 2 with a vDEVICE, as
// system/scenarios/guest-batches.capnp sets it up on the shipped guest manifest, then the input
// as 16-byte commands (dw0, dw1 little-endian), in batches of up to 32, issued as the guest
// issues them on that path (Viommu.invalidate, or the VCMDQ ring in guest memory).

#include "tests/fuzz/harness.h"

#ifndef NB_GUEST_PATH
#error "NB_GUEST_PATH (0 native, 1 generic, 2 sw_vcmdq) must be defined"
#endif

namespace {
constexpr const char* MANIFESTS[] = {"guest-native.toml", "guest-generic.toml",
                                     "guest-sw-vcmdq.toml"};
constexpr size_t MAX_COMMANDS = 128;
constexpr size_t BATCH = 32;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kj::Vector<kj::String> steps;
  steps.add(kj::str("(call = (target = \"memory\", method = \"alloc\", args = \"(bytes = 0x200000, "
                    "align = 0x200000)\", result = \"runs.0.pa\"), saveAs = \"ram\")"));
  steps.add(kj::str("(call = (target = \"domains\", method = \"allocPaging\", args = \"(target = "
                    "(smmu = \\\"smmu0\\\"), flags = (nestParent = true))\", result = \"domain\"), "
                    "saveAs = \"s2\")"));
  steps.add(kj::str("(call = (target = \"$s2\", method = \"map\", args = \"(runs = [(iova = "
                    "0x80000000, pa = $ram, size = 0x200000, prot = (read = true, write = true, "
                    "cache = true))])\"))"));
  steps.add(kj::str("(allocViommu = (s2Domain = \"$s2\"), saveAs = \"v\")"));
  steps.add(kj::str("(addVdevice = (viommu = \"$v\", vsid = 0x42, sid = 0x100))"));
  steps.add(kj::str("(guestInvalidate = (viommu = \"$v\", commands = [], ring = (gpa = "
                    "0x80000000, log2Entries = 10, s2Domain = \"$s2\")))"));
  nb::fuzz::Words in(data, size);
  kj::Vector<kj::String> batch;
  for (size_t n = 0; in.left() > 0 && n < MAX_COMMANDS; n++) {
    auto dw0 = in.u64();
    auto dw1 = in.u64();
    batch.add(kj::str("(dw0 = ", dw0, ", dw1 = ", dw1, ")"));
    if (batch.size() == BATCH || in.left() == 0 || n + 1 == MAX_COMMANDS) {
      steps.add(kj::str("(guestInvalidate = (viommu = \"$v\", commands = [",
                        kj::strArray(batch, ", "), "]))"));
      batch.clear();
    }
  }
  nb::fuzz::runScenario(MANIFESTS[NB_GUEST_PATH], nb::fuzz::scenarioText(steps));
  return 0;
}
