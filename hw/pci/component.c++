// hw/pci: the PCI topology's RPC face and registry entry. See component.h.
//
// The topology is fixed once built; the server only answers questions about it. The SMMU's
// instance name is asked once at start (SmmuInfo.name) so devices can say which SMMU they sit
// behind without a round trip per query.

#include "hw/pci/component.h"

#include "hw/pci/topology.h"
#include "interfaces/pci.capnp.h"
#include "interfaces/smmuv3.capnp.h"

#include <toml++/toml.h>

namespace nb::pci {

namespace {

void fillAcs(rpc::Acs::Builder out, const Acs& acs) {
  out.setSv(acs.sv);
  out.setTb(acs.tb);
  out.setRr(acs.rr);
  out.setCr(acs.cr);
  out.setUf(acs.uf);
  out.setEc(acs.ec);
  out.setDt(acs.dt);
}

class PciServer final : public rpc::PciTopology::Server, public ComponentCore {
public:
  PciServer(Topology topology, uint16_t segment, uint32_t sidBase, rpc::Smmuv3::Client smmu,
            kj::String smmuName)
      : topology(kj::mv(topology)),
        segment(segment),
        sidBase(sidBase),
        smmu(kj::mv(smmu)),
        smmuName(kj::mv(smmuName)) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    uint64_t endpoints = 0, bridges = 0, multifunction = 0, aliases = 0;
    for (auto& f : topology.functions) {
      if (isBridge(f.kind))
        bridges++;
      else
        endpoints++;
      if (f.multifunction) multifunction++;
      aliases += f.aliases.size();
    }
    out.add(Stat{kj::str("functions"), topology.functions.size()});
    out.add(Stat{kj::str("endpoints"), endpoints});
    out.add(Stat{kj::str("bridges"), bridges});
    out.add(Stat{kj::str("multifunction_functions"), multifunction});
    out.add(Stat{kj::str("dma_aliases"), aliases});
    out.add(Stat{kj::str("queries"), queries});
  }

  // implements PciTopology ------------------------------------------------------------------
protected:
  kj::Promise<void> devices(DevicesContext context) override {
    queries++;
    auto out = context.getResults().initDevices(topology.functions.size());
    for (auto i : kj::indices(topology.functions)) fill(out[i], topology.functions[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> device(DeviceContext context) override {
    queries++;
    auto text = context.getParams().getBdf();
    auto results = context.getResults();
    KJ_IF_MAYBE (bdf, parseBdf(text)) {
      KJ_IF_MAYBE (f, topology.find(bdf->rid())) {
        if (inSegment(text)) {
          fill(results.initDevice(), *f);
          return kj::READY_NOW;
        }
      }
      results.setErrno(rpc::Errno::E_NO_DEV);
    } else {
      results.setErrno(rpc::Errno::E_INVAL);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    auto results = context.getResults();
    results.setSegment(segment);
    results.setSidBase(sidBase);
    results.setSmmu(smmu);
    results.setSmmuName(smmuName);
    results.setDevices(topology.functions.size());
    return kj::READY_NOW;
  }

private:
  // A BDF with a segment ("0001:03:00.0") names a function here only in this segment.
  bool inSegment(kj::StringPtr text) const {
    size_t colons = 0;
    for (char c : text) colons += c == ':';
    if (colons < 2) return true;
    return strtoul(kj::heapString(text.slice(0, KJ_ASSERT_NONNULL(text.findFirst(':')))).cStr(),
                   nullptr, 16) == segment;
  }

  void fill(rpc::PciDevice::Builder out, const Function& f) {
    uint16_t rid = f.bdf.rid();
    out.setBdf(formatBdf(segment, rid));
    out.setSegment(segment);
    out.setBus(f.bdf.bus);
    out.setDevice(f.bdf.device);
    out.setFunction(f.bdf.function);
    out.setRid(rid);
    out.setKind(rpc::PciKind(uint16_t(f.kind)));
    out.setStreamId(sidBase + rid);
    out.setDmaRid(f.dmaRid);
    out.setDmaStreamId(sidBase + f.dmaRid);
    out.setMultifunction(f.multifunction);
    fillAcs(out.initAcs(), f.acs);
    out.setSecondaryBus(f.secondary);
    KJ_IF_MAYBE (p, f.parent) {
      out.setParent(formatBdf(segment, topology.functions[*p].bdf.rid()));
    }
    auto path = out.initPath(f.path.size());
    for (auto i : kj::indices(f.path)) {
      const Function& hop = topology.functions[f.path[i]];
      path[i].setBdf(formatBdf(segment, hop.bdf.rid()));
      path[i].setRid(hop.bdf.rid());
      path[i].setKind(rpc::PciKind(uint16_t(hop.kind)));
      fillAcs(path[i].initAcs(), hop.acs);
      path[i].setSecondaryBus(hop.secondary);
    }
    auto aliases = out.initAliases(f.aliases.size());
    for (auto i : kj::indices(f.aliases)) {
      aliases[i].setBdf(formatBdf(segment, f.aliases[i].rid));
      aliases[i].setRid(f.aliases[i].rid);
      aliases[i].setStreamId(sidBase + f.aliases[i].rid);
      aliases[i].setReason(f.aliases[i].reason == AliasReason::QUIRK ? rpc::AliasReason::QUIRK
                                                                     : rpc::AliasReason::BRIDGE);
    }
    out.setSmmu(smmu);
    out.setSmmuName(smmuName);
  }

  Topology topology;
  uint16_t segment;
  uint32_t sidBase;
  rpc::Smmuv3::Client smmu;
  kj::String smmuName;
  uint64_t queries = 0;
};

// ======================================================================================
// Settings

void checkDevices(const toml::node& value, SettingErrors& errors) { parseTopology(value, errors); }

constexpr int64_t MAX_SID_BASE = (int64_t(1) << 32) - 0x10000;  // every RID's SID fits 32 bits

void checkSidBase(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && (*v < 0 || *v > MAX_SID_BASE)) {
    errors.error(value, "",
                 kj::str("must be between 0 and ", MAX_SID_BASE,
                         " (StreamID = "
                         "sid_base + RID must fit 32 bits)"));
  }
}

void checkSegment(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && (*v < 0 || *v > 0xffff)) errors.error(value, "", kj::str("must be between 0 and 65535"));
}

// Settings were validated before the factory runs: an error now is a broken contract.
class RejectingErrors final : public SettingErrors {
public:
  void error(const toml::node& at, kj::StringPtr keySuffix, kj::String message) override {
    KJ_FAIL_REQUIRE("hw/pci devices did not validate", keySuffix, message);
  }
};

kj::Promise<rpc::Component::Client> startPci(ComponentContext& ctx);

kj::Promise<rpc::Component::Client> makePci(ComponentContext& ctx) {
  return kj::evalNow([&]() { return startPci(ctx); });
}

kj::Promise<rpc::Component::Client> startPci(ComponentContext& ctx) {
  auto devices = ctx.settings.table().get("devices");
  KJ_REQUIRE(devices != nullptr, "hw/pci needs 'devices'");
  RejectingErrors errors;
  auto topology = KJ_ASSERT_NONNULL(parseTopology(*devices, errors));
  auto segment = uint16_t(ctx.settings.integer("segment", 0));
  auto sidBase = uint32_t(ctx.settings.integer("sid_base", 0));
  auto smmu = ctx.use<rpc::Smmuv3>("smmu");
  auto request = smmu.infoRequest();
  kj::StringPtr typeName = ctx.type.name;  // the registry outlives every instance
  return request.send().then([typeName, topology = kj::mv(topology), segment, sidBase,
                              smmu = kj::mv(smmu)](auto response) mutable {
    auto server = kj::heap<PciServer>(kj::mv(topology), segment, sidBase, kj::mv(smmu),
                                      kj::heapString(response.getInfo().getName()));
    auto& core = *server;
    rpc::PciTopology::Client main = kj::mv(server);
    return makeComponent(typeName, capnp::typeId<rpc::PciTopology>(), kj::mv(main), core);
  });
}

}  // namespace

ComponentType pciType() {
  return ComponentType{
      "hw/pci",
      "PCIe topology: root ports, switches with ACS, PCI bridges, endpoints, multifunction "
      "devices, DMA aliases; RID -> StreamID for its SMMU",
      capnp::Schema::from<rpc::PciTopology>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"devices", SettingType::ARRAY, true, nullptr,
                      "one table per PCI function: { bdf = \"02:00.0\", kind = \"endpoint\" | "
                      "\"root_port\" | \"switch_upstream\" | \"switch_downstream\" | "
                      "\"pcie_to_pci_bridge\", parent = \"01:00.0\", secondary = 3, acs = "
                      "[\"sv\", \"rr\", \"cr\", \"uf\"], dma_aliases = [\"02:00.1\"] }",
                      checkDevices},
          SettingSpec{"segment", SettingType::INTEGER, false, nullptr,
                      "PCI segment (domain) number, 0..65535 (default 0)", checkSegment},
          SettingSpec{"sid_base", SettingType::INTEGER, false, nullptr,
                      "StreamID of RID 0: StreamID = sid_base + RID (default 0)", checkSidBase},
      }),
      kj::heapArray<RoleSpec>({RoleSpec{"smmu", capnp::Schema::from<rpc::Smmuv3>(), true,
                                        "the SMMU this root complex sits behind"}}),
      makePci,
      true};
}

}  // namespace nb::pci
