// components/group_manager/linux: forming iommu groups from PCIe topologies by Linux's rules.
//
// Owns: the group-formation algorithm of Linux's pci_device_group (facts 6), restated: for each
// function in probe order (parents first), the first rule that yields a group wins —
//   1. a DMA alias of it (a bridge takeover RID, a quirk alias) already has a group;
//   2. walking up its bridges, the first bridge whose path to the root lacks ACS
//      (SV, RR, CR and UF) hands its group down (a bridge with full ACS up the path stops the
//      walk);
//   3. a function on its bus that it aliases, or that aliases it, has a group;
//   4. it is a multifunction function without ACS and another such function of its device has
//      a group;
//   5. otherwise a new group.
// "ACS enabled" follows Linux's pci_acs_enabled: root and downstream ports by their ACS
// capability, PCIe-to-PCI bridges never, other functions by their capability when they are
// multifunction and always otherwise. Also the PASID rule of pci_enable_pasid (ACS RR and UF on
// the whole upstream path). Does not own RPC, ownership or domains (component.c++).
//
// Known property of these rules (kept, not fixed): downstream ports of one switch each get their
// own group, even without ACS, so devices below two such ports land in different groups. The
// 2025 rework of pci_device_group (per-bus "non-isolated" tracking) would merge them.

#pragma once

#include "interfaces/pci.capnp.h"

#include <kj/string.h>
#include <kj/vector.h>

namespace nb::groups {

struct AcsFlags {
  bool sv = false, rr = false, cr = false, uf = false;
};

struct Function {
  // One PCI function, as hw/pci exports it (only what grouping reads).
  kj::String bdf;  // "ssss:bb:dd.f"
  uint16_t segment = 0;
  uint16_t rid = 0;
  rpc::PciKind kind = rpc::PciKind::ENDPOINT;
  bool multifunction = false;
  AcsFlags acs;
  kj::Vector<uint16_t> path;     // RIDs of its upstream bridges, nearest first
  kj::Vector<uint16_t> aliases;  // other RIDs its DMA can carry
  kj::String smmu;               // the SMMU instance it sits behind

  uint8_t bus() const { return uint8_t(rid >> 8); }
  uint8_t slot() const { return uint8_t((rid >> 3) & 31); }
};

Function functionFrom(rpc::PciDevice::Reader device);

struct Group {
  uint32_t id;
  kj::Vector<size_t> members;  // indices into the functions, in probe order
  kj::String reason;           // why the members share it (the rule that joined the last)
};

struct Grouping {
  kj::Vector<Group> groups;      // by id
  kj::Vector<uint32_t> groupOf;  // per function
};

Grouping formGroups(kj::ArrayPtr<const Function> functions);
// `functions`: every function of every topology, each topology's in RID order (hw/pci's
// `devices()` order, which puts every bridge before what sits behind it).

bool pasidCapable(const Function& f, kj::ArrayPtr<const Function> functions);
// pci_enable_pasid's ACS rule: an endpoint, with ACS RR and UF enabled on itself and on every
// bridge up to the root (Linux's pci_acs_path_enabled with RR | UF).

}  // namespace nb::groups
