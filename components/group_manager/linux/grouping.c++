// Group formation by Linux's rules. See grouping.h.

#include "components/group_manager/linux/grouping.h"

#include <kj/debug.h>
#include <kj/map.h>

namespace nb::groups {

namespace {

struct Acs {
  bool sv, rr, cr, uf;
};
constexpr Acs REQ_ACS_FLAGS = {true, true, true, true};      // SV | RR | CR | UF (facts 6)
constexpr Acs PASID_ACS_FLAGS = {false, true, false, true};  // RR | UF (pci_enable_pasid)

bool has(const AcsFlags& acs, Acs need) {
  return (!need.sv || acs.sv) && (!need.rr || acs.rr) && (!need.cr || acs.cr) &&
         (!need.uf || acs.uf);
}

// pci_acs_enabled.
bool acsEnabled(const Function& f, Acs need) {
  switch (f.kind) {
    case rpc::PciKind::PCIE_TO_PCI_BRIDGE:
      return false;  // its secondary side is conventional PCI: no ACS applies
    case rpc::PciKind::ROOT_PORT:
    case rpc::PciKind::SWITCH_DOWNSTREAM: return has(f.acs, need);
    case rpc::PciKind::ENDPOINT:
    case rpc::PciKind::SWITCH_UPSTREAM:
      // ACS is meaningful for single-function devices only as part of a multifunction device.
      return f.multifunction ? has(f.acs, need) : true;
  }
  return false;  // an unknown kind from a newer topology: assume the worst
}

class Index {
public:
  explicit Index(kj::ArrayPtr<const Function> functions) : functions(functions) {
    for (auto i : kj::indices(functions)) {
      bySegmentRid.insert(uint32_t(functions[i].segment) << 16 | functions[i].rid, i);
    }
  }
  kj::Maybe<size_t> find(uint16_t segment, uint16_t rid) const {
    KJ_IF_MAYBE(i, bySegmentRid.find(uint32_t(segment) << 16 | rid)) { return *i; }
    return nullptr;
  }
  const Function& at(size_t i) const { return functions[i]; }

  // pci_acs_path_enabled(start, NULL, need): `start` and every bridge above it.
  bool pathEnabled(size_t start, Acs need) const {
    auto& f = functions[start];
    if (!acsEnabled(f, need)) return false;
    for (auto rid : f.path) {
      KJ_IF_MAYBE(h, find(f.segment, rid)) {
        if (!acsEnabled(functions[*h], need)) return false;
      } else {
        return false;  // a bridge the topology did not export: assume the worst
      }
    }
    return true;
  }

  kj::ArrayPtr<const Function> functions;
  kj::HashMap<uint32_t, size_t> bySegmentRid;
};

bool aliases(const Function& a, const Function& b) {
  for (auto r : a.aliases)
    if (r == b.rid) return true;
  return false;
}

}  // namespace

Function functionFrom(rpc::PciDevice::Reader d) {
  Function f;
  f.bdf = kj::heapString(d.getBdf());
  f.segment = d.getSegment();
  f.rid = d.getRid();
  f.kind = d.getKind();
  f.multifunction = d.getMultifunction();
  auto acs = d.getAcs();
  f.acs = AcsFlags{acs.getSv(), acs.getRr(), acs.getCr(), acs.getUf()};
  for (auto hop : d.getPath()) f.path.add(hop.getRid());
  for (auto a : d.getAliases()) f.aliases.add(a.getRid());
  f.smmu = kj::heapString(d.getSmmuName());
  return f;
}

Grouping formGroups(kj::ArrayPtr<const Function> functions) {
  Index index(functions);
  Grouping out;
  kj::Vector<kj::Maybe<uint32_t>> groupOf;
  kj::Vector<kj::String> why;
  groupOf.resize(functions.size());
  why.resize(functions.size());

  auto groupAt = [&](size_t i) -> kj::Maybe<uint32_t> { return groupOf[i]; };

  for (auto i : kj::indices(functions)) {
    auto& f = functions[i];
    kj::Maybe<uint32_t> chosen;
    kj::String reason;

    // 1. An alias of this function already has a group.
    for (auto rid : f.aliases) {
      KJ_IF_MAYBE(a, index.find(f.segment, rid)) {
        KJ_IF_MAYBE(g, groupAt(*a)) {
          chosen = *g;
          reason = kj::str(f.bdf, ": DMA alias ", index.at(*a).bdf);
          break;
        }
      }
    }

    // 2. Up the bridges until one whose path to the root has full ACS.
    if (chosen == nullptr) {
      for (auto rid : f.path) {
        auto bridge = KJ_ASSERT_NONNULL(index.find(f.segment, rid), "path names a missing bridge");
        if (index.pathEnabled(bridge, REQ_ACS_FLAGS)) break;
        KJ_IF_MAYBE(g, groupAt(bridge)) {
          chosen = *g;
          reason = kj::str(f.bdf, ": ", index.at(bridge).bdf, " above lacks ACS");
          break;
        }
      }
    }

    // 3. A function of its bus that it aliases, or that aliases it (DMA alias quirks).
    if (chosen == nullptr) {
      for (auto j : kj::indices(functions)) {
        auto& o = functions[j];
        if (j == i || o.segment != f.segment || o.bus() != f.bus()) continue;
        if (!aliases(f, o) && !aliases(o, f)) continue;
        KJ_IF_MAYBE(g, groupAt(j)) {
          chosen = *g;
          reason = kj::str(f.bdf, ": DMA alias quirk with ", o.bdf);
          break;
        }
      }
    }

    // 4. Functions of one multifunction device without ACS.
    if (chosen == nullptr && f.multifunction && !acsEnabled(f, REQ_ACS_FLAGS)) {
      for (auto j : kj::indices(functions)) {
        auto& o = functions[j];
        if (j == i || o.segment != f.segment || o.bus() != f.bus() || o.slot() != f.slot())
          continue;
        if (!o.multifunction || acsEnabled(o, REQ_ACS_FLAGS)) continue;
        KJ_IF_MAYBE(g, groupAt(j)) {
          chosen = *g;
          reason = kj::str(f.bdf, ": multifunction without ACS with ", o.bdf);
          break;
        }
      }
    }

    // 5. A group of its own.
    KJ_IF_MAYBE(g, chosen) {
      out.groups[*g].members.add(i);
      why[i] = kj::mv(reason);
      groupOf[i] = *g;
    } else {
      uint32_t id = out.groups.size();
      out.groups.add(Group{id, {}, kj::str()});
      out.groups.back().members.add(i);
      groupOf[i] = id;
    }
  }

  for (auto& g : out.groups) {
    kj::Vector<kj::StringPtr> reasons;
    for (size_t k = 1; k < g.members.size(); k++) reasons.add(why[g.members[k]]);
    g.reason = reasons.empty() ? kj::str("isolated") : kj::strArray(reasons, "; ");
  }
  for (auto& g : groupOf) out.groupOf.add(KJ_ASSERT_NONNULL(g));
  return out;
}

bool pasidCapable(const Function& f, kj::ArrayPtr<const Function> functions) {
  if (f.kind != rpc::PciKind::ENDPOINT) return false;
  Index index(functions);
  KJ_IF_MAYBE(self, index.find(f.segment, f.rid)) {
    return index.pathEnabled(*self, PASID_ACS_FLAGS);
  }
  return false;
}

}  // namespace nb::groups
