// Fuzz target: vSTEs. On the shipped nested manifest, as system/scenarios/nested.capnp sets it
// up (a stage-2 shadow of vm0, a vIOMMU over it, vSID 0x42 for ep0, the VMM's ownership of
// ep0), each 16 input bytes are a guest STE (dw0, dw1) made into a nested domain
// (allocNested), attached (or replacing the last), followed by a DMA from ep0 at an IOVA from
// the input: the SMMU then reads the guest's CD and stage 1 wherever the vSTE points.

#include "tests/fuzz/harness.h"

namespace {
constexpr size_t MAX_VSTES = 4;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kj::Vector<kj::String> steps;
  steps.add(kj::str("(shadow = (vm = \"vm0\", target = (smmu = \"smmu0\")), saveAs = \"shadow\")"));
  steps.add(kj::str("(call = (target = \"$shadow\", method = \"domain\", result = \"domain\"), "
                    "saveAs = \"s2\")"));
  steps.add(kj::str("(allocViommu = (s2Domain = \"$s2\"), saveAs = \"v\")"));
  steps.add(kj::str("(addVdevice = (viommu = \"$v\", vsid = 0x42, sid = 0x100))"));
  steps.add(kj::str("(claimDevice = (device = \"01:00.0\"), saveAs = \"o\")"));
  nb::fuzz::Words in(data, size);
  for (size_t n = 0; in.left() > 0 && n < MAX_VSTES; n++) {
    auto dw0 = in.u64();
    auto dw1 = in.u64();
    auto iova = in.u64() & 0xffffffffffffull;
    auto name = kj::str("n", n);
    steps.add(kj::str("(allocNested = (viommu = \"$v\", vste = [", dw0, ", ", dw1,
                      "]), saveAs = \"", name, "\")"));
    steps.add(kj::str("(", n == 0 ? "attach" : "replace", " = (ownership = \"$o\", domain = \"$",
                      name, "\"))"));
    steps.add(kj::str("(dma = (endpoint = \"ep0\", iova = ", iova & ~7ull, ", length = 8))"));
  }
  nb::fuzz::runScenario("nested.toml", nb::fuzz::scenarioText(steps));
  return 0;
}
