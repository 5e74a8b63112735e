// Fuzz target: MMIO writes to the SMMU model. On the shipped hardware manifest (an SMMU no
// driver has touched, a PCIe topology, endpoints), each 13 input bytes are one register write:
// a 32-bit offset (taken modulo the 128 KiB register frame), a 64-bit value and one byte whose
// low bit chooses a 64-bit access. Then ep0 (StreamID 0x300) makes a DMA and CMDQ_CONS, GERROR
// and the event queue's PROD are read: whatever the writes configured is exercised.

#include "tests/fuzz/harness.h"

namespace {
constexpr size_t MAX_WRITES = 256;
constexpr uint32_t FRAME = 0x20000;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kj::Vector<kj::String> steps;
  nb::fuzz::Words in(data, size);
  for (size_t n = 0; in.left() > 0 && n < MAX_WRITES; n++) {
    auto offset = in.u32() % FRAME;
    auto value = in.u64();
    bool wide = in.u8() & 1;
    steps.add(kj::str("(mmioWrite = (offset = ", offset, ", value = ", value,
                      ", size = ", wide ? 8 : 4, "))"));
  }
  steps.add(kj::str("(dma = (endpoint = \"ep0\", iova = 0x10000, length = 8))"));
  for (auto reg : {0x9c, 0x60, 0x100a8}) {   // CMDQ_CONS, GERROR, EVENTQ_PROD (page 1)
    steps.add(kj::str("(mmioRead = (offset = ", reg, "))"));
  }
  nb::fuzz::runScenario("hw.toml", nb::fuzz::scenarioText(steps));
  return 0;
}
