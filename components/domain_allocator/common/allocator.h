// components/domain_allocator/common: the domain allocator both implementations share — the
// DomainAllocator capability (interfaces/domain-allocator.capnp) over smmu_queue and page_table.
//
// Owns: what an implementation registers — settings, roles, the factory parameterised by the
// allocation policy. group_centric/ and device_centric/ are one registry entry each over this.
// Does not own: recipes and plans (entries.h, hitless.h) or the state's details (state.h).

#pragma once

#include "interfaces/domain-allocator.capnp.h"
#include "system/runtime/contract.h"

namespace nb::domains {

kj::Promise<rpc::Component::Client> makeDomainAllocator(ComponentContext& ctx, rpc::Policy policy);
// Roles: queues (list of smmu_queue, one per SMMU instance), pci (list of hw/pci topologies),
// page_table (page_table). Settings: granule ("4K" default, "16K", "64K": the paging domains'
// translation granule, the smallest the SMMU has when it lacks it), pasid_bits (0..20, default
// 20: a device's SSID bits are min(SSIDSIZE, pasid_bits); 10 at most without CD2L).

ComponentType domainAllocatorType(
    kj::StringPtr name, kj::StringPtr doc,
    kj::Promise<rpc::Component::Client> (*factory)(ComponentContext&));
// The registry entry for one implementation: its name, description and factory (which calls
// makeDomainAllocator with its policy).

}  // namespace nb::domains
