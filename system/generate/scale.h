// Systems of realistic size from a few parameters: `nestbed generate`'s manifest and scenario.
//
// The system: `vms` VMs, each with `devices` passed-through PCIe endpoints, spread over `smmus`
// SMMUv3 instances (VM i behind smmu(i % smmus), each SMMU with its own PCI segment, command
// queue component and two-level stream table), one domain allocator, group manager, page-table
// engine and stage-2 shadow for all. Every endpoint sits alone behind its own root port with
// ACS (its own group), root ports being the functions of multifunction devices on bus 00, so a
// segment holds up to 248 endpoints; endpoint k of a segment is on bus k + 1 (StreamID
// (k + 1) << 8: one level-2 stream table per endpoint). Each VM has one RAM memslot: 1 MiB of
// DMA buffers at GPA 0x10_0000, then 1 MiB per device for that device's guest driver
// (its stage-1 table and CD table) from GPA 0x20_0000.
//
// The scenario does, for each VM: shadow it at stage 2 for its SMMU, allocate its vIOMMU over
// the shadow; then for each of its devices: a vDEVICE (vSID 0x40 + j), the VMM's claim, the
// guest driver's nested attach (ASID 1 + j), a guest map of two pages, a DMA write with the
// guest's IOVA and a read of the same bytes through the VM (they landed in this VM's buffer),
// a guest invalidation batch (TLBI_NH_VA + CMD_SYNC on the vIOMMU's guest path), the guest's
// unmap with its invalidation, a DMA that then faults at stage 1, and the fault in the vIOMMU's
// vEVENTQ with the device's vSID. Every step names what it expects.

#pragma once

#include <kj/string.h>
#include <stdint.h>

namespace nb::generate {

struct ScaleParams {
  uint32_t vms = 4;
  uint32_t devices = 2;               // per VM
  uint32_t smmus = 2;
  kj::StringPtr placement = "inline"; // the OS-side components: "inline" or "process"
  kj::StringPtr guestPath = "native"; // smmu_queue's guest_path: "native" or "generic"
};

// Null, or what is wrong with `params` (limits: 1..1024 VMs, 1..8 devices, 1..16 SMMUs, at most
// 248 endpoints per SMMU, a known placement and guest path).
kj::Maybe<kj::String> checkScale(const ScaleParams& params);

// The manifest (TOML) and scenario (Cap'n Proto text) of `params`, which checkScale() accepts.
kj::String scaleManifest(const ScaleParams& params);
kj::String scaleScenario(const ScaleParams& params);

// Every step is labelled "vm<i>: <what>" or "vm<i>.<j>: <what>" (device j of VM i), <what> one
// of: shadow, s2 domain, vIOMMU; vDEVICE, claim, attach, map, DMA, DMA landed, invalidate,
// unmap, DMA faults, vEVENTQ.

}  // namespace nb::generate
