// hw/vm: the "hw/vm" registry entry — a virtual machine as KVM sees it (interfaces/vm.capnp):
// memslots mapping guest-physical to physical memory, changes to them with notices to
// subscribers before and after each takes effect (the MMU-notifier analog), pinning, and guest
// memory access by GPA.
//
// Owns: the VM's memory map, the frames backing it (allocated from hw/mem's FrameAllocator or
// reserved at the manifest's fixed addresses, returned when a slot is deleted or the VM shuts
// down), pin counts, the order of changes (one at a time) and their notices. Does not own: any
// stage-2 table (a stage2_shadow subscribes and keeps one), guest CPUs, MMIO regions.
#pragma once

#include "system/runtime/contract.h"

namespace nb::vm {

ComponentType vmType();
// "hw/vm" (isHardware). Settings: memslots (an array of { slot, gpa, size, pa = <address> |
// "allocate", readonly }, see settings.h), ipa_bits (32..52, default 40). No roles: guest RAM
// comes from the composer's physical memory and frame allocator.

}  // namespace nb::vm
