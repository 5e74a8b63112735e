// components/domain_allocator/device_centric: the "domain_allocator/device_centric" registry
// entry — the shared allocator (../common/allocator.h) with the device-centric policy: an
// allocation must name the device (or the SMMU instance); "for a group" and "for the bus" are
// eInval, so a domain is never finalised for an SMMU nobody asked for.
#pragma once

#include "system/runtime/contract.h"

namespace nb::domains {

ComponentType deviceCentricType();

}  // namespace nb::domains
