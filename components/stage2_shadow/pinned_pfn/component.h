// components/stage2_shadow/pinned_pfn: the "stage2_shadow/pinned_pfn" registry entry — a stage
// 2 built from the frames pinned at shadow time (Vm.pin, as the root domain pins them) and kept
// from its own record of GPA → PFN runs, updated from the notices' contents: it never asks the
// VM for a translation after shadow time (interfaces/stage2-shadow.capnp).
#pragma once

#include "system/runtime/contract.h"

namespace nb::s2 {

ComponentType pinnedPfnType();
// "stage2_shadow/pinned_pfn". Role `domains` (a DomainAllocator). Setting `hold_pins` (default
// false): keep every shadowed slot pinned while shadowed (added slots too) — the VM then refuses
// to delete or move them (eBusy), as iommufd's pinned IOAS does; false pins to learn the frames,
// records them and unpins.

}  // namespace nb::s2
