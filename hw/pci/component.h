// hw/pci: the "hw/pci" registry entry — one PCI segment (a root complex behind one SMMU, wired
// as role `smmu`) built from the manifest and exported over interfaces/pci.capnp.
//
// Owns: the [[hw.pci]] settings (segment, sid_base, devices) and the RPC face of the topology.
// Does not own: the topology's rules (topology.h) or any SMMU (reached through its capability).
#pragma once

#include "system/runtime/contract.h"

namespace nb::pci {

ComponentType pciType();
// "hw/pci" (isHardware). Settings: devices (required: one table per function, see
// topology.h), segment (PCI domain number, default 0), sid_base (StreamID = sid_base + RID,
// default 0). Role: smmu (hw/smmuv3).

}  // namespace nb::pci
