// tests/hw/pci: the "hw/pci" topology — manifest validation with positioned errors, and the
// structure it exports over RPC (what a group manager needs: facts 6).

#include "tests/hw/hw-testing.h"

namespace nb::hw::testing {
namespace {

constexpr kj::StringPtr HEAD =
    "[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n"
    "[[hw.smmuv3]]\nname = \"smmu0\"\n\n"
    "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\n"_kj;  // 10 lines

std::string errorsText(kj::StringPtr devices) {
  return kj::strArray(manifestErrors(kj::str(HEAD, "devices = [\n", devices, "]\n")), "\n").cStr();
}

TEST_CASE("hw/pci: every topology error is reported with file, line, column and key", "[pci]") {
  // Line 12 is the first device (the comments give each line's number).
  auto errors = errorsText(
      "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1 },\n"  // 12
      "  { bdf = \"0x:00.0\", parent = \"00:01.0\" },\n"                 // 13
      "  { bdf = \"01:00.0\", parent = \"00:09.0\" },\n"                 // 14
      "  { bdf = \"00:01.0\" },\n"                                       // 15
      "  { bdf = \"02:00.0\", parent = \"00:01.0\" },\n"                 // 16
      "  { bdf = \"01:00.1\", parent = \"01:00.0\" },\n"                 // 17
      "  { bdf = \"00:02.0\", kind = \"root_port\" },\n"                 // 18
      "  { bdf = \"00:03.0\", kind = \"switch_upstream\", secondary = 8, acs = [\"sv\"] "
      "},\n"  // 19
      "  { bdf = \"00:04.0\", kind = \"root_port\", secondary = 9, acs = [\"sv\", \"xx\"] "
      "},\n"                                                             // 20
      "  { bdf = \"00:05.0\", dma_aliases = [\"01:00.0\"] },\n"          // 21
      "  { bdf = \"00:06.3\" },\n"                                       // 22
      "  { bdf = \"00:07.0\", colour = \"red\" },\n"                     // 23
      "  { bdf = \"00:08.0\", kind = \"bridge\" },\n"                    // 24
      "  { bdf = \"00:0a.0\", kind = \"root_port\", secondary = 1 },\n"  // 25
      "  { bdf = \"00:0b.0\", parent = \"00:01.0\" },\n"                 // 26
      "  { bdf = \"00:0c.0\", kind = \"switch_downstream\", parent = \"00:01.0\", "
      "secondary = 12 },\n"  // 27
      "  \"00:0d.0\",\n");   // 28
  std::string expected =
      kj::strArray(
          kj::arr(
              // pass 1: each entry on its own
              kj::str("test.toml:13:11: hw.pci0.devices.1.bdf: '0x:00.0' is not a BDF: write "
                      "bus:device.function in hex, e.g. \"03:00.0\""),
              kj::str("test.toml:18:3: hw.pci0.devices.6.secondary: missing required key "
                      "'secondary': the bus behind this root_port"),
              kj::str("test.toml:19:69: hw.pci0.devices.7.acs: a switch_upstream has no ACS "
                      "capability"),
              kj::str(
                  "test.toml:20:70: hw.pci0.devices.8.acs.1: unknown ACS flag; flags are sv, tb, "
                  "rr, cr, uf, ec, dt"),
              kj::str("test.toml:21:37: hw.pci0.devices.9.dma_aliases.0: a DMA alias quirk names a "
                      "function on the device's own bus 00"),
              kj::str("test.toml:23:31: hw.pci0.devices.11.colour: unknown key 'colour'; a PCI "
                      "function has bdf, kind, parent, secondary, acs, dma_aliases"),
              kj::str("test.toml:24:29: hw.pci0.devices.12.kind: must be one of \"endpoint\", "
                      "\"root_port\", \"switch_upstream\", \"switch_downstream\", "
                      "\"pcie_to_pci_bridge\""),
              kj::str("test.toml:28:3: hw.pci0.devices.16: must be a table: { bdf = \"00:01.0\", "
                      "... }"),
              // pass 2: between entries
              kj::str(
                  "test.toml:15:11: hw.pci0.devices.3.bdf: duplicate BDF 00:01.0 (also devices.0)"),
              kj::str("test.toml:25:54: hw.pci0.devices.13.secondary: bus 01 is already behind "
                      "00:01.0 (devices.0)"),
              kj::str(
                  "test.toml:14:31: hw.pci0.devices.2.parent: unknown parent 00:09.0: no function "
                  "in devices has that BDF"),
              kj::str(
                  "test.toml:16:11: hw.pci0.devices.4.bdf: bus 02 is not the secondary bus 01 of "
                  "its parent 00:01.0"),
              kj::str(
                  "test.toml:17:31: hw.pci0.devices.5.parent: parent 01:00.0 is an endpoint, not "
                  "a bridge"),
              kj::str(
                  "test.toml:19:3: hw.pci0.devices.7.parent: missing 'parent': a switch_upstream "
                  "sits behind a root_port or switch_downstream"),
              kj::str("test.toml:26:11: hw.pci0.devices.14.bdf: bus 00 is not the secondary bus 01 "
                      "of its parent 00:01.0"),
              kj::str(
                  "test.toml:27:59: hw.pci0.devices.15.parent: a switch_downstream sits behind a "
                  "switch_upstream, not a root_port"),
              kj::str("test.toml:22:11: hw.pci0.devices.10.bdf: 00:06.3 has no function 0: add "
                      "00:06.0")),
          "\n")
          .cStr();
  CHECK(errors == expected);
}

TEST_CASE("hw/pci: devices is required and structural checks report the bad node", "[pci]") {
  CHECK(std::string(kj::strArray(manifestErrors(HEAD), "\n").cStr()) ==
        "test.toml:8:1: hw.pci0.devices: missing required key 'devices'");
  CHECK(errorsText("  { bdf = \"05:00.0\" },\n") ==
        "test.toml:12:11: hw.pci0.devices.0.bdf: bus 05 is not the root bus 00: give the "
        "function a 'parent' bridge whose secondary bus is 05");
  CHECK(errorsText("  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 0 },\n") ==
        "test.toml:12:54: hw.pci0.devices.0.secondary: must be a bus number, 1..255");
  CHECK(errorsText("  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 4 },\n"
                   "  { bdf = \"04:01.0\", parent = \"00:01.0\" },\n") ==
        "test.toml:13:11: hw.pci0.devices.1.bdf: below a root_port (a PCIe link) the only "
        "device number is 00");
  CHECK(errorsText("  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 4 },\n"
                   "  { bdf = \"04:00.0\", parent = \"00:01.0\", secondary = 5 },\n") ==
        "test.toml:13:54: hw.pci0.devices.1.secondary: only bridges have a secondary bus; this "
        "is an endpoint");
}

// The reference tree: a root port with ACS over a switch without ACS with two endpoints, a
// root port with ACS over a multifunction device with a DMA alias quirk, a root port without
// ACS over a PCIe-to-PCI bridge with two conventional devices, and an integrated endpoint.
constexpr kj::StringPtr TREE =
    "sid_base = 0x100\n"
    "devices = [\n"
    "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
    "\"uf\"] },\n"
    "  { bdf = \"01:00.0\", kind = \"switch_upstream\", parent = \"00:01.0\", secondary = 2 },\n"
    "  { bdf = \"02:00.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 3 },\n"
    "  { bdf = \"02:01.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 4 },\n"
    "  { bdf = \"03:00.0\", parent = \"02:00.0\" },\n"
    "  { bdf = \"04:00.0\", parent = \"02:01.0\" },\n"
    "  { bdf = \"00:02.0\", kind = \"root_port\", secondary = 5, acs = [\"sv\", \"rr\", \"cr\", "
    "\"uf\"] },\n"
    "  { bdf = \"05:00.1\", parent = \"00:02.0\" },\n"
    "  { bdf = \"05:00.0\", parent = \"00:02.0\", dma_aliases = [\"05:00.3\"] },\n"
    "  { bdf = \"00:03.0\", kind = \"root_port\", secondary = 6 },\n"
    "  { bdf = \"06:00.0\", kind = \"pcie_to_pci_bridge\", parent = \"00:03.0\", secondary = 7 },\n"
    "  { bdf = \"07:02.0\", parent = \"06:00.0\" },\n"
    "  { bdf = \"07:03.0\", parent = \"06:00.0\" },\n"
    "  { bdf = \"00:1f.0\" },\n"
    "]\n"_kj;

kj::String describe(rpc::PciDevice::Reader d) {
  auto acs = [](rpc::Acs::Reader a) {
    return kj::str(a.getSv() ? "V" : "-", a.getRr() ? "R" : "-", a.getCr() ? "C" : "-",
                   a.getUf() ? "U" : "-");
  };
  kj::Vector<kj::String> path, aliases;
  for (auto hop : d.getPath()) path.add(kj::str(hop.getBdf().slice(5), "/", acs(hop.getAcs())));
  for (auto a : d.getAliases()) {
    aliases.add(kj::str(a.getBdf().slice(5), a.getReason() == rpc::AliasReason::QUIRK ? "q" : "b",
                        "@", kj::hex(a.getStreamId())));
  }
  return kj::str(d.getBdf(), " rid=", kj::hex(d.getRid()), " sid=", kj::hex(d.getStreamId()),
                 " dma=", kj::hex(d.getDmaStreamId()), d.getMultifunction() ? " mf" : "",
                 " acs=", acs(d.getAcs()), " up=[", kj::strArray(path, " "), "] al=[",
                 kj::strArray(aliases, " "), "]");
}

TEST_CASE(
    "hw/pci: the exported topology carries RIDs, StreamIDs, ACS paths, multifunction and "
    "aliases",
    "[pci]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(kj::str(HEAD, "placement = \"", placement, "\"\n", TREE));
    auto pci = sys.main<rpc::PciTopology>("pci0");
    auto response = pci.devicesRequest().send().wait(sys.io.waitScope);
    auto devices = response.getDevices();
    kj::Vector<kj::String> lines;
    for (auto d : devices) lines.add(describe(d));
    CHECK(std::string(kj::strArray(lines, "\n").cStr()) ==
          "0000:00:01.0 rid=8 sid=108 dma=108 acs=VRCU up=[] al=[]\n"
          "0000:00:02.0 rid=10 sid=110 dma=110 acs=VRCU up=[] al=[]\n"
          "0000:00:03.0 rid=18 sid=118 dma=118 acs=---- up=[] al=[]\n"
          "0000:00:1f.0 rid=f8 sid=1f8 dma=1f8 acs=---- up=[] al=[]\n"
          "0000:01:00.0 rid=100 sid=200 dma=200 acs=---- up=[00:01.0/VRCU] al=[]\n"
          "0000:02:00.0 rid=200 sid=300 dma=300 acs=---- up=[01:00.0/---- 00:01.0/VRCU] al=[]\n"
          "0000:02:01.0 rid=208 sid=308 dma=308 acs=---- up=[01:00.0/---- 00:01.0/VRCU] al=[]\n"
          "0000:03:00.0 rid=300 sid=400 dma=400 acs=---- up=[02:00.0/---- 01:00.0/---- "
          "00:01.0/VRCU] al=[]\n"
          "0000:04:00.0 rid=400 sid=500 dma=500 acs=---- up=[02:01.0/---- 01:00.0/---- "
          "00:01.0/VRCU] al=[]\n"
          "0000:05:00.0 rid=500 sid=600 dma=600 mf acs=---- up=[00:02.0/VRCU] al=[05:00.3q@603]\n"
          "0000:05:00.1 rid=501 sid=601 dma=601 mf acs=---- up=[00:02.0/VRCU] al=[]\n"
          "0000:06:00.0 rid=600 sid=700 dma=700 acs=---- up=[00:03.0/----] al=[]\n"
          "0000:07:02.0 rid=710 sid=810 dma=800 acs=---- up=[06:00.0/---- 00:03.0/----] "
          "al=[07:00.0b@800]\n"
          "0000:07:03.0 rid=718 sid=818 dma=800 acs=---- up=[06:00.0/---- 00:03.0/----] "
          "al=[07:00.0b@800]");
    auto ep = devices[8];
    CHECK(ep.getKind() == rpc::PciKind::ENDPOINT);
    CHECK(ep.getParent() == "0000:02:01.0");
    CHECK(ep.getBus() == 4);
    CHECK(ep.getPath()[0].getKind() == rpc::PciKind::SWITCH_DOWNSTREAM);
    CHECK(ep.getPath()[0].getSecondaryBus() == 4);
    CHECK(ep.getSmmuName() == "smmu0");
    CHECK(devices[0].getKind() == rpc::PciKind::ROOT_PORT);
    CHECK(devices[0].getSecondaryBus() == 1);

    // Each device's SMMU capability is the SMMU itself.
    auto smmu = ep.getSmmu();
    auto info = smmu.infoRequest().send().wait(sys.io.waitScope);
    CHECK(info.getInfo().getName() == "smmu0");

    auto root = pci.infoRequest().send().wait(sys.io.waitScope);
    CHECK(root.getSegment() == 0);
    CHECK(root.getSidBase() == 0x100);
    CHECK(root.getDevices() == 14);
    CHECK(root.getSmmuName() == "smmu0");
  }
}

TEST_CASE("hw/pci: device() finds a function by BDF; absent is eNoDev, malformed eInval", "[pci]") {
  TestSystem sys(kj::str(HEAD, "segment = 2\n", TREE));
  auto pci = sys.main<rpc::PciTopology>("pci0");
  auto lookup = [&](kj::StringPtr bdf) {
    auto req = pci.deviceRequest();
    req.setBdf(bdf);
    return req.send().wait(sys.io.waitScope);
  };
  auto found = lookup("05:00.1");
  CHECK(found.getErrno() == rpc::Errno::OK);
  CHECK(found.getDevice().getBdf() == "0002:05:00.1");
  CHECK(found.getDevice().getSegment() == 2);
  CHECK(lookup("0002:03:00.0").getDevice().getRid() == 0x300);
  CHECK(lookup("0000:03:00.0").getErrno() == rpc::Errno::E_NO_DEV);  // another segment
  CHECK(lookup("03:00.1").getErrno() == rpc::Errno::E_NO_DEV);
  CHECK(lookup("3:0.0").getErrno() == rpc::Errno::OK);  // leading zeros optional
  CHECK(lookup("03:00.8").getErrno() == rpc::Errno::E_INVAL);
  CHECK(lookup("bus 3").getErrno() == rpc::Errno::E_INVAL);
}

TEST_CASE("hw/pci: the topology needs its SMMU wired", "[pci]") {
  auto text =
      kj::str("[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n[[hw.pci]]\nname = \"pci0\"\n",
              "devices = [{ bdf = \"00:1f.0\" }]\n");
  CHECK(std::string(kj::strArray(manifestErrors(text), "\n").cStr()) ==
        "test.toml:5:1: hw.pci0.uses: missing required role 'smmu' (the SMMU this root complex "
        "sits behind)");
}

}  // namespace
}  // namespace nb::hw::testing
