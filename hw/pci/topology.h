// hw/pci: a PCIe topology as data — functions, bridges, ACS, multifunction devices, DMA aliases.
//
// Owns: the manifest form of a topology (the `devices` array of a [[hw.pci]] entry), its
// validation with a positioned error for every problem, and what is derived from it: each
// function's requester ID, its upstream path, whether it is part of a multifunction device,
// and every requester ID its DMA can carry (quirk aliases, PCIe-to-PCI bridge takeover).
// Does not own: RPC (component.h) or grouping policy (the group manager decides from this data,
// facts 6).
//
// Manifest form, one table per function:
//   { bdf = "02:00.0", kind = "switch_downstream", parent = "01:00.0", secondary = 3,
//     acs = ["sv", "rr", "cr", "uf"], dma_aliases = ["02:00.1"] }
// `bdf` is "bus:device.function" in hex (device 0..1f, function 0..7); the segment is the
// [[hw.pci]] entry's. `kind` defaults to "endpoint". A function without `parent` sits on the
// root bus (00). Bridges name the bus behind them (`secondary`), which must be above their own
// bus: so a parent chain always ends at the root bus, and cycles cannot be written.

#pragma once

#include "system/runtime/contract.h"

#include <kj/string.h>
#include <kj/vector.h>
#include <cstdint>

namespace nb::pci {

enum class Kind : uint8_t {
  // Ordered as interfaces/pci.capnp PciKind.
  ENDPOINT,
  ROOT_PORT,
  SWITCH_UPSTREAM,
  SWITCH_DOWNSTREAM,
  PCIE_TO_PCI_BRIDGE,
};
kj::StringPtr kindName(Kind kind);  // the manifest spelling, e.g. "switch_downstream"
constexpr bool isBridge(Kind k) { return k != Kind::ENDPOINT; }

struct Acs {
  // The ACS capability (PCIe ACS Capability register bits), one flag each.
  bool sv = false, tb = false, rr = false, cr = false, uf = false, ec = false, dt = false;
};

struct Bdf {
  uint8_t bus = 0;
  uint8_t device = 0;    // 0..31
  uint8_t function = 0;  // 0..7

  uint16_t rid() const { return uint16_t(bus << 8 | device << 3 | function); }
  static Bdf fromRid(uint16_t rid) {
    return Bdf{uint8_t(rid >> 8), uint8_t((rid >> 3) & 31), uint8_t(rid & 7)};
  }
};

kj::Maybe<Bdf> parseBdf(kj::StringPtr text);
// "bb:dd.f", or "ssss:bb:dd.f" (the segment is accepted and ignored), hex digits.
kj::String formatBdf(uint16_t rid);                    // "03:00.1"
kj::String formatBdf(uint16_t segment, uint16_t rid);  // "0000:03:00.1"

enum class AliasReason : uint8_t { QUIRK, BRIDGE };  // as interfaces/pci.capnp AliasReason

struct Alias {
  uint16_t rid;
  AliasReason reason;
};

struct Function {
  // One PCI function, as written in the manifest plus what is derived.
  Bdf bdf;
  Kind kind = Kind::ENDPOINT;
  Acs acs;
  uint8_t secondary = 0;              // bridges: the bus behind it
  kj::Maybe<size_t> parent;           // index in Topology::functions
  kj::Vector<uint16_t> quirkAliases;  // dma_aliases, as RIDs

  // ---- derived
  bool multifunction = false;  // another function has the same bus and device
  kj::Vector<size_t> path;     // upstream bridges, nearest first
  uint16_t dmaRid = 0;         // the RID its DMA carries at the root complex
  kj::Vector<Alias> aliases;   // every other RID its DMA can carry
};

struct Topology {
  kj::Vector<Function> functions;  // sorted by RID

  kj::Maybe<const Function&> find(uint16_t rid) const;
};

kj::Maybe<Topology> parseTopology(const toml::node& devices, SettingErrors& errors);
// Validates the `devices` array and builds the topology; reports every problem found (each at
// the offending node, with a key suffix like ".3.parent") and returns null if there was any.

}  // namespace nb::pci
