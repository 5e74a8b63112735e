// group_manager/linux over a recording domain allocator (fixture/domains): ownership, the
// default and blocking domains, attach / replace / detach, the kernel-driver attach, PASIDs —
// every errno of facts 6 — and rollback when one device of a group refuses. Each behaviour
// runs with the group manager inline and in its own process.

#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/group-manager.capnp.h"
#include "tests/fixtures/fixture.capnp.h"
#include "tests/system/compose-testing.h"

namespace nb {
namespace {

using rpc::Errno;

// Groups (by id): 0 {00:01.0}  1 {00:02.0}  2 {00:10.0 00:11.0 (DMA alias quirk)}
//                 3 {01:00.0}  4 {02:00.0 02:00.1 (multifunction, no ACS)}
// PASID-capable: 00:10.0, 00:11.0 (root bus), 01:00.0 (below a root port with ACS).
// Fake domain ids: identity 1, blocked 2, the five default domains 3..7, then each allocPaging.
kj::String manifest(kj::StringPtr placement, kj::StringPtr extra = "") {
  return kj::str(
      "[memory]\nbase = 0x80000000\nsize = \"16MiB\"\n"
      "[[hw.smmuv3]]\nname = \"smmu0\"\n"
      "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\ndevices = [\n"
      "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n"
      "  { bdf = \"01:00.0\", parent = \"00:01.0\" },\n"
      "  { bdf = \"00:02.0\", kind = \"root_port\", secondary = 2, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n"
      "  { bdf = \"02:00.0\", parent = \"00:02.0\" },\n"
      "  { bdf = \"02:00.1\", parent = \"00:02.0\" },\n"
      "  { bdf = \"00:10.0\", dma_aliases = [\"00:11.0\"] },\n"
      "  { bdf = \"00:11.0\" },\n"
      "]\n"
      "[components.domains]\nimpl = \"fixture/domains\"\nplacement = \"",
      placement,
      "\"\n"
      "uses = { pci = [\"pci0\"] }\n"
      "[components.groups]\nimpl = \"group_manager/linux\"\nplacement = \"",
      placement,
      "\"\n"
      "uses = { pci = [\"pci0\"], domains = \"domains\" }\n",
      extra);
}

struct Rig {
  explicit Rig(kj::StringPtr placement, kj::StringPtr extra = "")
      : sys(manifest(placement, extra)),
        ws(sys.io.waitScope),
        groups(sys.main<rpc::GroupManager>("groups")),
        domains(sys.main<rpc::DomainAllocator>("domains")) {}

  testing::TestSystem sys;
  kj::WaitScope& ws;
  rpc::GroupManager::Client groups;
  rpc::DomainAllocator::Client domains;

  struct Claim {
    Errno errno_;
    rpc::Ownership::Client ownership;
  };

  Claim claimGroup(uint32_t group, uint64_t owner) {
    auto req = groups.claimGroupRequest();
    req.setGroup(group);
    req.setOwner(owner);
    auto r = req.send().wait(ws);
    return Claim{r.getErrno(), r.getOwnership()};
  }
  Claim claimDevice(kj::StringPtr bdf, uint64_t owner) {
    auto req = groups.claimDeviceRequest();
    req.setDevice(bdf);
    req.setOwner(owner);
    auto r = req.send().wait(ws);
    return Claim{r.getErrno(), r.getOwnership()};
  }

  // A stage-1 domain for smmu0, or (refuse = a BDF) one that device refuses.
  rpc::Domain::Client paging(kj::StringPtr refuse = nullptr) {
    auto req = domains.allocPagingRequest();
    if (refuse == nullptr) {
      req.initTarget().setSmmu("smmu0");
    } else {
      req.initTarget().setSmmu(kj::str("refuse:", refuse));
    }
    return req.send().wait(ws).getDomain();
  }

  Errno attach(rpc::Ownership::Client& o, rpc::Domain::Client d) {
    auto req = o.attachRequest();
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }
  Errno replace(rpc::Ownership::Client& o, rpc::Domain::Client d) {
    auto req = o.replaceRequest();
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }
  Errno detach(rpc::Ownership::Client& o) { return o.detachRequest().send().wait(ws).getErrno(); }
  Errno attachPasid(rpc::Ownership::Client& o, uint32_t pasid, rpc::Domain::Client d) {
    auto req = o.attachPasidRequest();
    req.setPasid(pasid);
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }
  Errno replacePasid(rpc::Ownership::Client& o, uint32_t pasid, rpc::Domain::Client d) {
    auto req = o.replacePasidRequest();
    req.setPasid(pasid);
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }
  Errno detachPasid(rpc::Ownership::Client& o, uint32_t pasid) {
    auto req = o.detachPasidRequest();
    req.setPasid(pasid);
    return req.send().wait(ws).getErrno();
  }
  Errno attachDevice(kj::StringPtr bdf, rpc::Domain::Client d) {
    auto req = groups.attachDeviceRequest();
    req.setDevice(bdf);
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }
  Errno detachDevice(kj::StringPtr bdf) {
    auto req = groups.detachDeviceRequest();
    req.setDevice(bdf);
    return req.send().wait(ws).getErrno();
  }

  // "on=attached domain=8 owners=1 pasids=5:9"
  kj::String group(uint32_t id) {
    auto all = groups.groupsRequest().send().wait(ws);
    auto g = all.getGroups()[id];
    kj::Vector<kj::String> pasids;
    for (auto p : g.getPasids()) pasids.add(kj::str(p.getPasid(), ":", p.getDomain()));
    kj::StringPtr on = g.getOn() == rpc::GroupDomain::DEFAULT_DOMAIN    ? "defaultDomain"
                       : g.getOn() == rpc::GroupDomain::BLOCKING_DOMAIN ? "blockingDomain"
                                                                        : "attached";
    return kj::str("on=", on, " domain=", g.getDomain(), " owners=", g.getOwners(),
                   " pasids=", kj::strArray(pasids, ","));
  }

  // What the allocator was told for one device: "7" or "7 5:9".
  kj::String device(kj::StringPtr bdf) {
    auto masters = domains.mastersRequest().send().wait(ws);
    for (auto m : masters.getMasters()) {
      if (m.getDevice() == bdf) {
        kj::Vector<kj::String> parts;
        parts.add(kj::str(m.getDomain()));
        for (auto p : m.getPasids()) parts.add(kj::str(p.getPasid(), ":", p.getDomain()));
        return kj::strArray(parts, " ");
      }
    }
    return kj::str("no such device");
  }

  uint64_t counter(kj::StringPtr instance, kj::StringPtr name) {
    for (auto& s : sys.stats()) {
      if (s.name != instance) continue;
      for (auto& c : s.counters)
        if (c.name == name) return c.value;
    }
    FAIL("no counter " << instance.cStr() << "." << name.cStr());
    return 0;
  }
};

const kj::StringPtr PLACEMENTS[] = {"inline", "process"};

TEST_CASE("GroupManager: groups boot on their default domains", "[group_manager]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig(placement,
              "device_defaults = [{ bdf = \"01:00.0\", default_domain = \"identity\" },\n"
              "  { bdf = \"00:10.0\", default_domain = \"identity\" },\n"
              "  { bdf = \"0000:00:11.0\", default_domain = \"translated\" }]\n");
      auto response = rig.groups.groupsRequest().send().wait(rig.ws);
      auto all = response.getGroups();
      REQUIRE(all.size() == 5);
      CHECK(all[4].getDevices().size() == 2);
      CHECK(all[4].getDevices()[1] == "0000:02:00.1"_kj);
      CHECK(all[4].getSmmu() == "smmu0"_kj);
      CHECK(all[4].getMaxPasids() == 0);
      CHECK(all[3].getMaxPasids() == 1u << 20);
      // 01:00.0's override makes group 3 identity; 00:10.0 and 00:11.0 disagree: the global type.
      CHECK(all[3].getDefaultType() == rpc::DefaultDomainType::IDENTITY);
      CHECK(all[2].getDefaultType() == rpc::DefaultDomainType::TRANSLATED);
      CHECK(rig.counter("groups", "default_type_conflicts") == 1);
      CHECK(rig.device("0000:01:00.0") == "1");
      for (uint32_t id = 0; id < 5; id++) {
        CHECK(all[id].getOn() == rpc::GroupDomain::DEFAULT_DOMAIN);
        CHECK(all[id].getDomain() == all[id].getDefaultDomain());
        for (auto d : all[id].getDevices())
          CHECK(rig.device(d) == kj::str(all[id].getDefaultDomain()));
      }
      auto groupOf = [&](kj::StringPtr bdf) {
        auto req = rig.groups.groupOfRequest();
        req.setDevice(bdf);
        auto r = req.send().wait(rig.ws);
        return r.getErrno() == Errno::OK ? kj::str(r.getGroup().getId())
                                         : kj::str("errno ", uint(r.getErrno()));
      };
      CHECK(groupOf("02:00.1") == "4");
      CHECK(groupOf("09:00.0") == kj::str("errno ", uint(Errno::E_NO_DEV)));
      CHECK(groupOf("nonsense") == kj::str("errno ", uint(Errno::E_INVAL)));
    }
  }
}

TEST_CASE("GroupManager: DMA ownership — exclusive, shared by cookie, released by dropping",
          "[group_manager][ownership]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig(placement);
      CHECK(rig.claimGroup(99, 7).errno_ == Errno::E_NO_ENT);
      CHECK(rig.claimGroup(4, 0).errno_ == Errno::E_INVAL);
      CHECK(rig.claimDevice("09:00.0", 7).errno_ == Errno::E_NO_DEV);
      CHECK(rig.claimDevice("0000:01:00", 7).errno_ == Errno::E_INVAL);

      // Exclusive: moves the group onto blocking; nobody else, not even the same owner.
      auto a = rig.claimGroup(4, 7);
      REQUIRE(a.errno_ == Errno::OK);
      CHECK(rig.group(4) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
      CHECK(rig.device("0000:02:00.0") == "2");
      CHECK(rig.device("0000:02:00.1") == "2");
      CHECK(rig.claimGroup(4, 7).errno_ == Errno::E_PERM);
      CHECK(rig.claimDevice("02:00.0", 7).errno_ == Errno::E_PERM);

      // Shared by the same cookie, counted; another cookie is refused.
      auto b = rig.claimDevice("01:00.0", 5);
      auto c = rig.claimDevice("0000:01:00.0", 5);
      REQUIRE(b.errno_ == Errno::OK);
      REQUIRE(c.errno_ == Errno::OK);
      CHECK(rig.group(3) == "on=blockingDomain domain=2 owners=2 pasids="_kj);
      CHECK(rig.claimDevice("01:00.0", 6).errno_ == Errno::E_PERM);
      CHECK(rig.claimGroup(3, 5).errno_ == Errno::E_PERM);

      // Releasing: explicitly, or by dropping the capability; the last one restores default.
      b.ownership.releaseRequest().send().wait(rig.ws);
      CHECK(rig.group(3) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
      auto released = b.ownership.infoRequest().send().then([](auto) { return false; },
                                                            [](kj::Exception&&) { return true; });
      CHECK(released.wait(rig.ws));
      c = Rig::Claim{Errno::OK, nullptr};
      a = Rig::Claim{Errno::OK, nullptr};
      CHECK(rig.group(3) == "on=defaultDomain domain=6 owners=0 pasids="_kj);
      CHECK(rig.group(4) == "on=defaultDomain domain=7 owners=0 pasids="_kj);
      CHECK(rig.device("0000:02:00.1") == "7");
      CHECK(rig.claimGroup(4, 9).errno_ == Errno::OK);
    }
  }
}

TEST_CASE("GroupManager: attach, replace without a blocking window, detach; rollback on refusal",
          "[group_manager][attach]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig(placement);
      auto o = rig.claimGroup(4, 1).ownership;
      auto d1 = rig.paging();  // id 8
      auto d2 = rig.paging();  // id 9
      CHECK(rig.attach(o, d1) == Errno::OK);
      CHECK(rig.group(4) == "on=attached domain=8 owners=1 pasids="_kj);
      CHECK(rig.device("0000:02:00.0") == "8");
      CHECK(rig.device("0000:02:00.1") == "8");
      CHECK(rig.attach(o, d2) == Errno::E_BUSY);

      uint64_t setsBefore = rig.counter("groups", "device_domain_sets");
      CHECK(rig.replace(o, d2) == Errno::OK);
      // Straight from d1 to d2: one allocator call per device, none to the blocked domain.
      CHECK(rig.counter("groups", "device_domain_sets") == setsBefore + 2);
      CHECK(rig.device("0000:02:00.1") == "9");
      CHECK(rig.replace(o, d2) == Errno::OK);  // already there: nothing to do
      CHECK(rig.counter("groups", "device_domain_sets") == setsBefore + 2);

      // A domain the group's second device refuses: the first is put back.
      auto refused = rig.paging("0000:02:00.1");  // id 10
      CHECK(rig.replace(o, refused) == Errno::E_INVAL);
      CHECK(rig.group(4) == "on=attached domain=9 owners=1 pasids="_kj);
      CHECK(rig.device("0000:02:00.0") == "9");
      CHECK(rig.device("0000:02:00.1") == "9");
      CHECK(rig.counter("groups", "rollbacks") == 1);

      CHECK(rig.detach(o) == Errno::OK);
      CHECK(rig.group(4) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
      CHECK(rig.attach(o, refused) == Errno::E_INVAL);
      CHECK(rig.device("0000:02:00.0") == "2");
      CHECK(rig.group(4) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
      CHECK(rig.counter("groups", "rollbacks") == 2);
      CHECK(rig.counter("groups", "rollback_failures") == 0);
      CHECK(rig.attach(o, d1) == Errno::OK);

      // Dropping the ownership while attached puts the group back on its default domain.
      o = nullptr;
      CHECK(rig.group(4) == "on=defaultDomain domain=7 owners=0 pasids="_kj);
    }
  }
}

TEST_CASE("GroupManager: the kernel-driver path, iommu_attach_device, and claims after it",
          "[group_manager][attach]") {
  Rig rig("inline");
  auto d = rig.paging();                                    // id 8
  CHECK(rig.attachDevice("02:00.0", d) == Errno::E_INVAL);  // not a singleton group
  CHECK(rig.attachDevice("01:00.0", d) == Errno::OK);
  CHECK(rig.group(3) == "on=attached domain=8 owners=0 pasids="_kj);
  CHECK(rig.attachDevice("01:00.0", d) == Errno::E_BUSY);
  // A group a driver attached is not on its default domain: it cannot be claimed.
  CHECK(rig.claimDevice("01:00.0", 3).errno_ == Errno::E_BUSY);
  CHECK(rig.detachDevice("02:00.0") == Errno::E_INVAL);
  CHECK(rig.detachDevice("01:00.0") == Errno::OK);
  CHECK(rig.group(3) == "on=defaultDomain domain=6 owners=0 pasids="_kj);
  auto o = rig.claimDevice("01:00.0", 3);
  CHECK(o.errno_ == Errno::OK);
  // Linux lets the kernel attach to an owned group sitting on blocking; detach returns there.
  CHECK(rig.attachDevice("01:00.0", d) == Errno::OK);
  CHECK(rig.detachDevice("01:00.0") == Errno::OK);
  CHECK(rig.group(3) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
}

TEST_CASE("GroupManager: PASID attach, replace and detach; limits, slots and rollback",
          "[group_manager][pasid]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig(placement);
      auto o = rig.claimDevice("01:00.0", 1).ownership;
      auto d1 = rig.paging();                                     // 8
      auto d2 = rig.paging();                                     // 9
      CHECK(rig.attachPasid(o, 0, d1) == Errno::E_INVAL);         // IOMMU_NO_PASID
      CHECK(rig.attachPasid(o, 1u << 20, d1) == Errno::E_INVAL);  // >= max_pasids
      CHECK(rig.attachPasid(o, 5, d1) == Errno::OK);
      CHECK(rig.group(3) == "on=blockingDomain domain=2 owners=1 pasids=5:8"_kj);
      CHECK(rig.device("0000:01:00.0") == "2 5:8");
      CHECK(rig.attachPasid(o, 5, d2) == Errno::E_BUSY);
      CHECK(rig.replacePasid(o, 5, d2) == Errno::OK);
      CHECK(rig.device("0000:01:00.0") == "2 5:9");
      CHECK(rig.replacePasid(o, 6, d2) == Errno::E_NO_ENT);
      CHECK(rig.detachPasid(o, 6) == Errno::E_NO_ENT);
      CHECK(rig.detachPasid(o, 5) == Errno::OK);
      CHECK(rig.device("0000:01:00.0") == "2");
      CHECK(rig.group(3) == "on=blockingDomain domain=2 owners=1 pasids="_kj);

      // A multifunction device without ACS cannot enable PASID: max_pasids is 0.
      auto mf = rig.claimGroup(4, 1).ownership;
      CHECK(rig.attachPasid(mf, 1, d1) == Errno::E_INVAL);

      // Both devices of group 2 take the PASID; the second refusing rolls the first back.
      auto pair = rig.claimGroup(2, 1).ownership;
      auto refused = rig.paging("0000:00:11.0");
      CHECK(rig.attachPasid(pair, 3, refused) == Errno::E_INVAL);
      CHECK(rig.device("0000:00:10.0") == "2");
      CHECK(rig.group(2) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
      CHECK(rig.attachPasid(pair, 3, d1) == Errno::OK);
      CHECK(rig.device("0000:00:10.0") == "2 3:8");
      CHECK(rig.device("0000:00:11.0") == "2 3:8");

      // Releasing with a PASID still attached detaches it and restores the default domain.
      pair = nullptr;
      CHECK(rig.group(2) == "on=defaultDomain domain=5 owners=0 pasids="_kj);
      CHECK(rig.device("0000:00:11.0") == "5");
    }
  }
}

TEST_CASE("GroupManager: a claim held by a process that dies is released",
          "[group_manager][ownership]") {
  Rig rig("inline",
          "[components.owner]\nimpl = \"fixture/claimer\"\nplacement = \"process\"\n"
          "uses = { groups = \"groups\" }\n");
  auto claimer = rig.sys.main<fixture::Claimer>("owner");
  auto claim = claimer.claimRequest();
  claim.setDevice("01:00.0");
  claim.setOwner(9);
  REQUIRE(claim.send().wait(rig.ws).getErrno() == Errno::OK);
  CHECK(rig.group(3) == "on=blockingDomain domain=2 owners=1 pasids="_kj);
  CHECK(rig.claimDevice("01:00.0", 4).errno_ == Errno::E_PERM);

  auto crashed = claimer.crashRequest().send().then([](auto) { return false; },
                                                    [](kj::Exception&&) { return true; });
  CHECK(crashed.wait(rig.ws));
  rig.sys.waitForEvents(1);
  CHECK(rig.sys.events.size() >= 1);
  // The holder's connection is gone: its capabilities were dropped, the claim released.
  CHECK(rig.group(3) == "on=defaultDomain domain=6 owners=0 pasids="_kj);
  CHECK(rig.claimDevice("01:00.0", 4).errno_ == Errno::OK);
}

}  // namespace
}  // namespace nb
