// hw/pci: parsing, validating and deriving a PCIe topology. See topology.h.

#include "hw/pci/topology.h"

#include <kj/debug.h>
#include <kj/map.h>
#include <toml++/toml.h>
#include <algorithm>

namespace nb::pci {

namespace {

struct KindInfo {
  Kind kind;
  kj::StringPtr name;
  bool hasAcs;      // may carry an ACS capability (PCIe: downstream ports and functions of
                    // multifunction devices / RCiEPs; not upstream ports or PCI bridges)
  uint8_t parents;  // bit per Kind allowed as parent
  bool rootBusOk;   // may sit on the root bus (no parent)
};

constexpr uint8_t bitOf(Kind k) { return uint8_t(1u << unsigned(k)); }

const KindInfo KINDS[] = {
    {Kind::ENDPOINT, "endpoint", true,
     bitOf(Kind::ROOT_PORT) | bitOf(Kind::SWITCH_DOWNSTREAM) | bitOf(Kind::PCIE_TO_PCI_BRIDGE),
     true},
    {Kind::ROOT_PORT, "root_port", true, 0, true},
    {Kind::SWITCH_UPSTREAM, "switch_upstream", false,
     bitOf(Kind::ROOT_PORT) | bitOf(Kind::SWITCH_DOWNSTREAM), false},
    {Kind::SWITCH_DOWNSTREAM, "switch_downstream", true, bitOf(Kind::SWITCH_UPSTREAM), false},
    {Kind::PCIE_TO_PCI_BRIDGE, "pcie_to_pci_bridge", false,
     bitOf(Kind::ROOT_PORT) | bitOf(Kind::SWITCH_DOWNSTREAM), true},
};

const KindInfo& info(Kind k) { return KINDS[unsigned(k)]; }

const kj::StringPtr KEYS[] = {"bdf", "kind", "parent", "secondary", "acs", "dma_aliases"};
const kj::StringPtr ACS_FLAGS[] = {"sv", "tb", "rr", "cr", "uf", "ec", "dt"};

kj::String str(std::string_view s) { return kj::heapString(s.data(), s.size()); }

// Bus numbers are written in hex, as in a BDF.
kj::String busName(unsigned bus) {
  const char* digits = "0123456789abcdef";
  return kj::str(digits[(bus >> 4) & 15], digits[bus & 15]);
}

kj::String allowedParents(uint8_t mask) {
  kj::Vector<kj::StringPtr> names;
  for (auto& k : KINDS) {
    if (mask & bitOf(k.kind)) names.add(k.name);
  }
  return kj::strArray(names, " or ");
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses `count` or fewer (at least 1) hex digits at text[pos], advancing pos.
kj::Maybe<uint32_t> hexField(kj::StringPtr text, size_t& pos, size_t maxDigits) {
  uint32_t value = 0;
  size_t start = pos;
  while (pos < text.size() && pos - start < maxDigits && hexDigit(text[pos]) >= 0) {
    value = value * 16 + uint32_t(hexDigit(text[pos]));
    pos++;
  }
  if (pos == start) return nullptr;
  return value;
}

// What a parsed entry holds before cross-checks; nodes kept for error positions.
struct Entry {
  size_t index;            // in the manifest array
  const toml::node* node;  // the entry's table
  const toml::node* bdfNode = nullptr;
  const toml::node* parentNode = nullptr;
  const toml::node* secondaryNode = nullptr;
  kj::Maybe<Bdf> bdf;
  kj::Maybe<Bdf> parentBdf;
  bool hasParent = false;
  Function function;
};

}  // namespace

kj::StringPtr kindName(Kind kind) { return info(kind).name; }

kj::Maybe<Bdf> parseBdf(kj::StringPtr text) {
  // [segment:]bus:device.function — 1..4, 1..2, 1..2 and 1 hex digits.
  size_t pos = 0;
  kj::Vector<uint32_t> parts;
  const size_t widths[] = {4, 2, 2};
  size_t colons = 0;
  for (char c : text) colons += c == ':';
  if (colons < 1 || colons > 2) return nullptr;
  for (size_t n = 0; n <= colons; n++) {
    size_t width = colons == 2 ? widths[n] : widths[n + 1];
    KJ_IF_MAYBE (v, hexField(text, pos, width)) {
      parts.add(*v);
    } else {
      return nullptr;
    }
    char want = n < colons ? ':' : '.';
    if (pos >= text.size() || text[pos] != want) return nullptr;
    pos++;
  }
  kj::Maybe<uint32_t> fn = hexField(text, pos, 1);
  if (fn == nullptr || pos != text.size()) return nullptr;
  uint32_t bus = parts[colons - 1], device = parts[colons], function = KJ_ASSERT_NONNULL(fn);
  if (device > 31 || function > 7) return nullptr;
  return Bdf{uint8_t(bus), uint8_t(device), uint8_t(function)};
}

kj::String formatBdf(uint16_t rid) {
  Bdf b = Bdf::fromRid(rid);
  return kj::str(busName(b.bus), ":", busName(b.device), ".", b.function);
}

kj::String formatBdf(uint16_t segment, uint16_t rid) {
  const char* digits = "0123456789abcdef";
  return kj::str(digits[(segment >> 12) & 15], digits[(segment >> 8) & 15],
                 digits[(segment >> 4) & 15], digits[segment & 15], ":", formatBdf(rid));
}

kj::Maybe<const Function&> Topology::find(uint16_t rid) const {
  for (auto& f : functions) {
    if (f.bdf.rid() == rid) return f;
  }
  return nullptr;
}

kj::Maybe<Topology> parseTopology(const toml::node& devices, SettingErrors& errors) {
  bool failed = false;
  auto error = [&](const toml::node& at, kj::StringPtr suffix, kj::String message) {
    errors.error(at, suffix, kj::mv(message));
    failed = true;
  };
  auto array = devices.as_array();
  if (array == nullptr) {
    error(devices, "", kj::str("must be an array of tables, one per PCI function"));
    return nullptr;
  }
  const char* BDF_HELP = "bus:device.function in hex, e.g. \"03:00.0\"";

  // ---- pass 1: each entry on its own
  kj::Vector<Entry> entries;
  for (size_t i = 0; i < array->size(); i++) {
    const toml::node& node = *array->get(i);
    auto at = [&](kj::StringPtr key) { return kj::str(".", i, key.size() ? "." : "", key); };
    auto table = node.as_table();
    if (table == nullptr) {
      error(node, at(""), kj::str("must be a table: { bdf = \"00:01.0\", ... }"));
      continue;
    }
    Entry e{i, &node};
    for (auto&& [k, v] : *table) {
      auto key = str(k.str());
      bool known = false;
      for (auto name : KEYS) known = known || name == key;
      if (!known) {
        error(v, at(key),
              kj::str("unknown key '", key, "'; a PCI function has ",
                      kj::strArray(kj::arrayPtr(KEYS, kj::size(KEYS)), ", ")));
      }
    }

    // bdf
    if (auto b = table->get("bdf")) {
      e.bdfNode = b;
      auto s = b->value<std::string>();
      KJ_IF_MAYBE (bdf, s ? parseBdf(s->c_str()) : nullptr) {
        e.bdf = *bdf;
        e.function.bdf = *bdf;
      } else {
        error(*b, at("bdf"),
              kj::str(s ? kj::str("'", s->c_str(), "'") : kj::str("the value"),
                      " is not a BDF: write ", BDF_HELP));
      }
    } else {
      error(node, at("bdf"), kj::str("missing required key 'bdf' (", BDF_HELP, ")"));
    }

    // kind
    if (auto k = table->get("kind")) {
      auto s = k->value<std::string>();
      bool found = false;
      for (auto& ki : KINDS) {
        if (s && ki.name == s->c_str()) {
          e.function.kind = ki.kind;
          found = true;
        }
      }
      if (!found) {
        kj::Vector<kj::String> names;
        for (auto& ki : KINDS) names.add(kj::str('"', ki.name, '"'));
        error(*k, at("kind"), kj::str("must be one of ", kj::strArray(names, ", ")));
      }
    }
    const Kind kind = e.function.kind;

    // parent
    if (auto p = table->get("parent")) {
      e.parentNode = p;
      e.hasParent = true;
      auto s = p->value<std::string>();
      KJ_IF_MAYBE (bdf, s ? parseBdf(s->c_str()) : nullptr) {
        e.parentBdf = *bdf;
      } else {
        error(*p, at("parent"), kj::str("must be the BDF of a bridge: ", BDF_HELP));
      }
    }

    // secondary
    if (auto s = table->get("secondary")) {
      e.secondaryNode = s;
      auto v = s->value<int64_t>();
      if (!isBridge(kind)) {
        error(*s, at("secondary"),
              kj::str("only bridges have a secondary bus; this is an ", kindName(kind)));
      } else if (!v || *v < 1 || *v > 255) {
        error(*s, at("secondary"), kj::str("must be a bus number, 1..255"));
      } else {
        e.function.secondary = uint8_t(*v);
      }
    } else if (isBridge(kind)) {
      error(node, at("secondary"),
            kj::str("missing required key 'secondary': the bus behind this ", kindName(kind)));
    }

    // acs
    if (auto a = table->get("acs")) {
      if (!info(kind).hasAcs) {
        error(*a, at("acs"), kj::str("a ", kindName(kind), " has no ACS capability"));
      } else if (auto list = a->as_array()) {
        for (size_t j = 0; j < list->size(); j++) {
          const toml::node& flagNode = *list->get(j);
          auto f = flagNode.value<std::string>();
          Acs& acs = e.function.acs;
          bool* flags[] = {&acs.sv, &acs.tb, &acs.rr, &acs.cr, &acs.uf, &acs.ec, &acs.dt};
          bool found = false;
          for (size_t n = 0; n < kj::size(ACS_FLAGS); n++) {
            if (f && ACS_FLAGS[n] == f->c_str()) {
              *flags[n] = true;
              found = true;
            }
          }
          if (!found) {
            error(flagNode, at(kj::str("acs.", j)),
                  kj::str("unknown ACS flag; flags are ",
                          kj::strArray(kj::arrayPtr(ACS_FLAGS, kj::size(ACS_FLAGS)), ", ")));
          }
        }
      } else {
        error(*a, at("acs"),
              kj::str("must be a list of ACS flags, e.g. [\"sv\", \"rr\", \"cr\", \"uf\"]"));
      }
    }

    // dma_aliases
    if (auto d = table->get("dma_aliases")) {
      if (auto list = d->as_array()) {
        for (size_t j = 0; j < list->size(); j++) {
          const toml::node& aliasNode = *list->get(j);
          auto s = aliasNode.value<std::string>();
          KJ_IF_MAYBE (alias, s ? parseBdf(s->c_str()) : nullptr) {
            KJ_IF_MAYBE (self, e.bdf) {
              if (alias->bus != self->bus) {
                error(aliasNode, at(kj::str("dma_aliases.", j)),
                      kj::str("a DMA alias quirk names a function on the device's own bus ",
                              busName(self->bus)));
                continue;
              }
              if (alias->rid() == self->rid()) {
                error(aliasNode, at(kj::str("dma_aliases.", j)),
                      kj::str("a device is not an alias of itself"));
                continue;
              }
            }
            e.function.quirkAliases.add(alias->rid());
          } else {
            error(aliasNode, at(kj::str("dma_aliases.", j)), kj::str("must be a BDF: ", BDF_HELP));
          }
        }
      } else {
        error(*d, at("dma_aliases"), kj::str("must be a list of BDFs"));
      }
    }
    entries.add(kj::mv(e));
  }

  // ---- pass 2: cross-checks between entries
  kj::HashMap<uint16_t, size_t> byRid;  // rid -> entries index
  for (auto i : kj::indices(entries)) {
    auto& e = entries[i];
    KJ_IF_MAYBE (bdf, e.bdf) {
      KJ_IF_MAYBE (first, byRid.find(bdf->rid())) {
        error(*e.bdfNode, kj::str(".", e.index, ".bdf"),
              kj::str("duplicate BDF ", formatBdf(bdf->rid()), " (also devices.",
                      entries[*first].index, ")"));
      } else {
        byRid.insert(bdf->rid(), i);
      }
    }
  }
  kj::HashMap<uint8_t, size_t> bySecondary;  // secondary bus -> entries index
  for (auto i : kj::indices(entries)) {
    auto& e = entries[i];
    const Function& f = e.function;
    if (!isBridge(f.kind) || f.secondary == 0 || e.bdf == nullptr) continue;
    const Bdf& self = KJ_ASSERT_NONNULL(e.bdf);
    if (f.secondary <= self.bus) {
      error(*e.secondaryNode, kj::str(".", e.index, ".secondary"),
            kj::str("the bus behind a bridge is numbered above the bridge's own bus ",
                    busName(self.bus), ", not ", busName(f.secondary)));
    }
    KJ_IF_MAYBE (other, bySecondary.find(f.secondary)) {
      error(*e.secondaryNode, kj::str(".", e.index, ".secondary"),
            kj::str("bus ", busName(f.secondary), " is already behind ",
                    formatBdf(KJ_ASSERT_NONNULL(entries[*other].bdf).rid()), " (devices.",
                    entries[*other].index, ")"));
    } else {
      bySecondary.insert(f.secondary, i);
    }
  }
  for (auto& e : entries) {
    KJ_IF_MAYBE (self, e.bdf) {
      const Kind kind = e.function.kind;
      auto key = kj::str(".", e.index, ".bdf");
      if (!e.hasParent) {
        if (!info(kind).rootBusOk) {
          error(*e.node, kj::str(".", e.index, ".parent"),
                kj::str("missing 'parent': a ", kindName(kind), " sits behind a ",
                        allowedParents(info(kind).parents)));
        } else if (self->bus != 0) {
          error(*e.bdfNode, key,
                kj::str("bus ", busName(self->bus),
                        " is not the root bus 00: give the "
                        "function a 'parent' bridge whose secondary bus is ",
                        busName(self->bus)));
        }
        continue;
      }
      KJ_IF_MAYBE (parentBdf, e.parentBdf) {
        KJ_IF_MAYBE (p, byRid.find(parentBdf->rid())) {
          Entry& parent = entries[*p];
          const Kind pk = parent.function.kind;
          if (!isBridge(pk)) {
            error(*e.parentNode, kj::str(".", e.index, ".parent"),
                  kj::str("parent ", formatBdf(parentBdf->rid()), " is an endpoint, not a bridge"));
          } else if (!(info(kind).parents & bitOf(pk))) {
            error(*e.parentNode, kj::str(".", e.index, ".parent"),
                  info(kind).parents == 0
                      ? kj::str("a ", kindName(kind), " sits on the root bus: it has no parent")
                      : kj::str("a ", kindName(kind), " sits behind a ",
                                allowedParents(info(kind).parents), ", not a ", kindName(pk)));
          } else if (parent.function.secondary != 0 && self->bus != parent.function.secondary) {
            error(*e.bdfNode, key,
                  kj::str("bus ", busName(self->bus), " is not the secondary bus ",
                          busName(parent.function.secondary), " of its parent ",
                          formatBdf(parentBdf->rid())));
          } else if ((pk == Kind::ROOT_PORT || pk == Kind::SWITCH_DOWNSTREAM) &&
                     self->device != 0) {
            error(*e.bdfNode, key,
                  kj::str("below a ", kindName(pk), " (a PCIe link) the only device number is 00"));
          } else {
            e.function.parent = *p;  // an entries index for now
          }
        } else {
          error(*e.parentNode, kj::str(".", e.index, ".parent"),
                kj::str("unknown parent ", formatBdf(parentBdf->rid()),
                        ": no function in devices has that BDF"));
        }
      }
    }
  }
  // Function 0 of every multifunction device.
  for (auto& e : entries) {
    KJ_IF_MAYBE (self, e.bdf) {
      if (self->function == 0) continue;
      uint16_t zero = uint16_t(self->rid() & ~7u);
      if (byRid.find(zero) == nullptr) {
        error(*e.bdfNode, kj::str(".", e.index, ".bdf"),
              kj::str(formatBdf(self->rid()), " has no function 0: add ", formatBdf(zero)));
      }
    }
  }
  if (failed) return nullptr;

  // ---- build: sorted by RID, parents re-indexed, derived fields
  kj::Vector<size_t> order;
  for (auto i : kj::indices(entries)) order.add(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return entries[a].function.bdf.rid() < entries[b].function.bdf.rid();
  });
  kj::Vector<size_t> newIndex;
  newIndex.resize(entries.size());
  for (auto i : kj::indices(order)) newIndex[order[i]] = i;
  Topology topology;
  for (auto i : order) {
    Function f = kj::mv(entries[i].function);
    KJ_IF_MAYBE (p, f.parent) {
      f.parent = newIndex[*p];
    }
    topology.functions.add(kj::mv(f));
  }
  auto& fs = topology.functions;
  for (auto& f : fs) {
    for (auto& g : fs) {
      if (&g != &f && g.bdf.bus == f.bdf.bus && g.bdf.device == f.bdf.device)
        f.multifunction = true;
    }
    for (kj::Maybe<size_t> up = f.parent; up != nullptr;) {
      size_t p = KJ_ASSERT_NONNULL(up);
      f.path.add(p);
      up = fs[p].parent;
    }
    // A PCIe-to-PCI bridge forwards its secondary side's requests upstream under its own
    // secondary bus number, device 0, function 0; the outermost such bridge names the RID the
    // root complex sees.
    f.dmaRid = f.bdf.rid();
    auto addAlias = [&](uint16_t rid, AliasReason reason) {
      if (rid == f.bdf.rid()) return;
      for (auto& a : f.aliases) {
        if (a.rid == rid) return;
      }
      f.aliases.add(Alias{rid, reason});
    };
    for (auto rid : f.quirkAliases) addAlias(rid, AliasReason::QUIRK);
    for (auto p : f.path) {
      if (fs[p].kind == Kind::PCIE_TO_PCI_BRIDGE) {
        f.dmaRid = uint16_t(fs[p].secondary << 8);
        addAlias(f.dmaRid, AliasReason::BRIDGE);
      }
    }
  }
  return kj::mv(topology);
}

}  // namespace nb::pci
