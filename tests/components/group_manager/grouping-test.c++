// Group formation by Linux's rules (facts 6): topologies written as hw/pci manifests, exported
// by the real hw/pci model, grouped by formGroups — one table row per rule, each expected group
// listed by its devices, plus the reason the rule gives and the PASID rule.

#include "components/group_manager/linux/grouping.h"
#include "interfaces/pci.capnp.h"
#include "tests/system/compose-testing.h"

namespace nb::groups {
namespace {

// The functions of every [[hw.pci]] in `topologies` (each a `devices = [...]` body, segments
// 0, 1, ...), as the group manager sees them.
kj::Vector<Function> functionsOf(kj::ArrayPtr<const kj::StringPtr> topologies) {
  kj::Vector<kj::String> parts;
  parts.add(kj::str("[memory]\nbase = 0x80000000\nsize = \"16MiB\"\n"));
  for (auto i : kj::indices(topologies)) {
    parts.add(kj::str("[[hw.smmuv3]]\nname = \"smmu", i, "\"\n[[hw.pci]]\nname = \"pci", i,
                      "\"\nsegment = ", i, "\nuses = { smmu = \"smmu", i, "\" }\ndevices = [\n",
                      topologies[i], "]\n"));
  }
  testing::TestSystem sys(kj::strArray(parts, ""));
  kj::Vector<Function> out;
  for (auto i : kj::indices(topologies)) {
    auto pci = sys.main<rpc::PciTopology>(kj::str("pci", i));
    auto devices = pci.devicesRequest().send().wait(sys.io.waitScope);
    for (auto d : devices.getDevices()) out.add(functionFrom(d));
  }
  return out;
}

// Groups as text: "{a b} {c}" with BDFs without the segment, in group id order.
kj::String describe(kj::ArrayPtr<const Function> functions, const Grouping& grouping) {
  kj::Vector<kj::String> groups;
  for (auto& g : grouping.groups) {
    kj::Vector<kj::String> names;
    for (auto m : g.members) {
      auto& f = functions[m];
      names.add(f.segment == 0 ? kj::heapString(f.bdf.slice(5)) : kj::heapString(f.bdf));
    }
    groups.add(kj::str("{", kj::strArray(names, " "), "}"));
  }
  return kj::strArray(groups, " ");
}

struct Row {
  const char* what;
  const char* devices;
  const char* groups;
};

TEST_CASE("Grouping: Linux's pci_device_group rules, one topology per rule",
          "[group_manager][grouping]") {
  auto row = GENERATE(values<Row>({
      {"root ports with ACS isolate what is below them",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"01:00.0\", parent = \"00:01.0\" },\n"
       "{ bdf = \"00:02.0\", kind = \"root_port\", secondary = 2, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"02:00.0\", parent = \"00:02.0\" },\n",
       "{00:01.0} {00:02.0} {01:00.0} {02:00.0}"},
      {"a root port without (full) ACS hands its group down",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\"] "
       "},\n"
       "{ bdf = \"01:00.0\", parent = \"00:01.0\" },\n",
       "{00:01.0 01:00.0}"},
      {"a switch with ACS on its downstream ports isolates its endpoints",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"01:00.0\", kind = \"switch_upstream\", parent = \"00:01.0\", secondary = 2 },\n"
       "{ bdf = \"02:00.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 3, "
       "acs = [\"sv\", \"rr\", \"cr\", \"uf\"] },\n"
       "{ bdf = \"02:01.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 4, "
       "acs = [\"sv\", \"rr\", \"cr\", \"uf\"] },\n"
       "{ bdf = \"03:00.0\", parent = \"02:00.0\" },\n"
       "{ bdf = \"04:00.0\", parent = \"02:01.0\" },\n",
       "{00:01.0} {01:00.0} {02:00.0} {02:01.0} {03:00.0} {04:00.0}"},
      {"a switch without ACS: each downstream port with what is below it (the known hole)",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"01:00.0\", kind = \"switch_upstream\", parent = \"00:01.0\", secondary = 2 },\n"
       "{ bdf = \"02:00.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 3 },\n"
       "{ bdf = \"02:01.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 4 },\n"
       "{ bdf = \"03:00.0\", parent = \"02:00.0\" },\n"
       "{ bdf = \"04:00.0\", parent = \"02:01.0\" },\n",
       "{00:01.0} {01:00.0} {02:00.0 03:00.0} {02:01.0 04:00.0}"},
      {"a switch below a root port without ACS: everything joins the root port",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1 },\n"
       "{ bdf = \"01:00.0\", kind = \"switch_upstream\", parent = \"00:01.0\", secondary = 2 },\n"
       "{ bdf = \"02:00.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 3, "
       "acs = [\"sv\", \"rr\", \"cr\", \"uf\"] },\n"
       "{ bdf = \"03:00.0\", parent = \"02:00.0\" },\n",
       "{00:01.0 01:00.0 02:00.0 03:00.0}"},
      {"a PCIe-to-PCI bridge: everything behind it shares its group",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"01:00.0\", kind = \"pcie_to_pci_bridge\", parent = \"00:01.0\", secondary = 2 "
       "},\n"
       "{ bdf = \"02:00.0\", parent = \"01:00.0\" },\n"
       "{ bdf = \"02:04.0\", parent = \"01:00.0\" },\n",
       "{00:01.0} {01:00.0 02:00.0 02:04.0}"},
      {"multifunction without ACS shares; with ACS isolates",
       "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"01:00.0\", parent = \"00:01.0\" },\n"
       "{ bdf = \"01:00.1\", parent = \"00:01.0\" },\n"
       "{ bdf = \"00:02.0\", kind = \"root_port\", secondary = 2, acs = [\"sv\", \"rr\", \"cr\", "
       "\"uf\"] },\n"
       "{ bdf = \"02:00.0\", parent = \"00:02.0\", acs = [\"sv\", \"rr\", \"cr\", \"uf\"] },\n"
       "{ bdf = \"02:00.1\", parent = \"00:02.0\", acs = [\"sv\", \"rr\", \"cr\", \"uf\"] },\n",
       "{00:01.0} {00:02.0} {01:00.0 01:00.1} {02:00.0} {02:00.1}"},
      {"a DMA alias quirk joins the aliased function, in either direction",
       "{ bdf = \"00:10.0\", dma_aliases = [\"00:11.0\"] },\n"
       "{ bdf = \"00:11.0\" },\n"
       "{ bdf = \"00:12.0\" },\n"
       "{ bdf = \"00:13.0\" },\n"
       "{ bdf = \"00:14.0\", dma_aliases = [\"00:13.0\"] },\n",
       "{00:10.0 00:11.0} {00:12.0} {00:13.0 00:14.0}"},
      {"integrated endpoints on the root bus are isolated",
       "{ bdf = \"00:03.0\" },\n{ bdf = \"00:04.0\" },\n", "{00:03.0} {00:04.0}"},
  }));
  DYNAMIC_SECTION(row.what) {
    kj::StringPtr topologies[] = {row.devices};
    auto functions = functionsOf(topologies);
    auto grouping = formGroups(functions);
    CHECK(describe(functions, grouping) == kj::StringPtr(row.groups));
  }
}

TEST_CASE("Grouping: the default manifest's tree, with reasons", "[group_manager][grouping]") {
  kj::StringPtr topologies[] = {
      "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n"
      "{ bdf = \"01:00.0\", kind = \"switch_upstream\", parent = \"00:01.0\", secondary = 2 },\n"
      "{ bdf = \"02:00.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 3 },\n"
      "{ bdf = \"02:01.0\", kind = \"switch_downstream\", parent = \"01:00.0\", secondary = 4 },\n"
      "{ bdf = \"03:00.0\", parent = \"02:00.0\" },\n"
      "{ bdf = \"04:00.0\", parent = \"02:01.0\" },\n"
      "{ bdf = \"00:02.0\", kind = \"root_port\", secondary = 5, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n"
      "{ bdf = \"05:00.0\", parent = \"00:02.0\", dma_aliases = [\"05:00.2\"] },\n"
      "{ bdf = \"05:00.1\", parent = \"00:02.0\" },\n"};
  auto functions = functionsOf(topologies);
  auto grouping = formGroups(functions);
  CHECK(describe(functions, grouping) ==
        "{00:01.0} {00:02.0} {01:00.0} {02:00.0 03:00.0} {02:01.0 04:00.0} {05:00.0 05:00.1}"_kj);
  CHECK(grouping.groups[3].reason == "0000:03:00.0: 0000:02:00.0 above lacks ACS"_kj);
  CHECK(grouping.groups[5].reason ==
        "0000:05:00.1: multifunction without ACS with 0000:05:00.0"_kj);
  CHECK(grouping.groups[0].reason == "isolated"_kj);
  // PCIe PASID needs ACS RR and UF on the way up (and on a multifunction function itself):
  // nothing in this tree can enable it.
  for (auto& f : functions) {
    INFO(f.bdf.cStr());
    CHECK(!pasidCapable(f, functions));
  }
}

TEST_CASE("Grouping: PASID needs ACS RR and UF on every port up to the root",
          "[group_manager][grouping]") {
  kj::StringPtr topologies[] = {
      "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"rr\", \"uf\"] },\n"
      "{ bdf = \"01:00.0\", parent = \"00:01.0\" },\n"
      "{ bdf = \"00:02.0\", kind = \"root_port\", secondary = 2, acs = [\"rr\"] },\n"
      "{ bdf = \"02:00.0\", parent = \"00:02.0\" },\n"
      "{ bdf = \"00:03.0\" },\n"};
  auto functions = functionsOf(topologies);
  kj::Vector<kj::String> capable;
  for (auto& f : functions) {
    if (pasidCapable(f, functions)) capable.add(kj::heapString(f.bdf));
  }
  CHECK(kj::strArray(capable, " ") == "0000:00:03.0 0000:01:00.0"_kj);
}

TEST_CASE("Grouping: two segments form separate groups, ids continuing",
          "[group_manager][grouping]") {
  kj::StringPtr topologies[] = {
      "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1 },\n{ bdf = \"01:00.0\", parent = "
      "\"00:01.0\" },\n",
      "{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1 },\n{ bdf = \"01:00.0\", parent = "
      "\"00:01.0\" },\n"};
  auto functions = functionsOf(topologies);
  auto grouping = formGroups(functions);
  CHECK(describe(functions, grouping) == "{00:01.0 01:00.0} {0001:00:01.0 0001:01:00.0}"_kj);
  CHECK(functions[2].smmu == "smmu1");
  CHECK(grouping.groupOf[3] == 1);
}

}  // namespace
}  // namespace nb::groups
