// components/group_manager/linux: the "group_manager/linux" registry entry — iommu groups formed
// by Linux's rules (grouping.h), DMA ownership, default and blocking domains, attach / replace /
// detach and PASID attach (interfaces/group-manager.capnp), over a domain_allocator.
//
// Owns: the component's settings, roles and RPC face; each group's state machine (facts 6).
// Does not own: group formation rules (grouping.h), domains, STEs or CDs (domain_allocator).
#pragma once

#include "system/runtime/contract.h"

namespace nb::groups {

ComponentType groupManagerType();
// "group_manager/linux". Roles: pci (list of hw/pci topologies), domains (domain_allocator).
// Settings: default_domain = "translated" (default) | "identity"; device_defaults =
// [{ bdf = "0000:05:00.0", default_domain = "identity" }] (per-device overrides: a group takes
// its devices' override when they agree, the global type when they conflict).

}  // namespace nb::groups
