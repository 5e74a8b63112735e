// components/stage2_shadow/kvm_read: the "stage2_shadow/kvm_read" registry entry — a KVM-owned
// stage 2 that computes GPA → PA by reading the VM's memslots (Vm.memslots, KVM's memslot
// array) on every update and walking them for the changed range (interfaces/stage2-shadow.capnp).
#pragma once

#include "system/runtime/contract.h"

namespace nb::s2 {

ComponentType kvmReadType();
// "stage2_shadow/kvm_read". Role `domains` (a DomainAllocator). No settings.

}  // namespace nb::s2
