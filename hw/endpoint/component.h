// hw/endpoint: the "hw/endpoint" registry entry — one DMA-capable PCI function
// (interfaces/endpoint.capnp) that reads and writes shared physical memory through the SMMU its
// PCI topology puts it behind.
//
// Owns: the DMA engine of a device — splitting a transfer at 4 KiB page boundaries, presenting
// every page to the SMMU (one batched translate call over RPC), and, only when every page
// translated, moving the bytes in shared memory. Does not own: translation (the SMMU, reached
// through its capability) or topology (hw/pci, role `pci`); it links neither.
#pragma once

#include "system/runtime/contract.h"

namespace nb::endpoint {

ComponentType endpointType();
// "hw/endpoint" (isHardware). Settings: bdf (required, "bb:dd.f", a function of kind endpoint
// in the wired topology), max_dma (largest transfer, a byte size, default "16MiB", at most
// "64MiB"). Role: pci (hw/pci).

}  // namespace nb::endpoint
