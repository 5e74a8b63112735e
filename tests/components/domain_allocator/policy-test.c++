// Group-centric against device-centric allocation on two SMMU instances (ARCHITECTURE.md,
// debate 4): which allocation targets each policy takes, which SMMU the domain is finalised
// for, and where an attach then fails — the shipped two-smmu manifests, inline and with every
// component in its own process.

#include "tests/components/domain_allocator/domains-testing.h"

#include <fstream>
#include <sstream>

namespace nb::domains::testing {
namespace {

kj::String shippedManifest(kj::StringPtr policy, kj::StringPtr placement) {
  auto path = kj::str(getenv("TEST_SRCDIR"), "/nestbed/system/manifests/two-smmu-", policy,
                      "-centric.toml");
  std::ifstream in(path.cStr());
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto manifest = kj::str(text.str().c_str());
  if (placement == "inline") return manifest;
  // Every OS-side component in its own process.
  std::string s = manifest.cStr();
  for (auto name : {"page_table", "queue0", "queue1", "domains", "groups"}) {
    auto header = std::string("[components.") + name + "]\n";
    auto at = s.find(header);
    REQUIRE(at != std::string::npos);
    s.insert(at + header.size(), "placement = \"process\"\n");
  }
  return kj::str(s.c_str());
}

struct Outcome {
  Errno errno_;
  kj::String smmu;  // the SMMU the domain was finalised for ("" when refused)
};

Outcome alloc(Stack& st, kj::Function<void(rpc::AllocTarget::Builder)> target) {
  auto req = st.domains.allocPagingRequest();
  target(req.initTarget());
  auto r = req.send().wait(st.ws);
  if (r.getErrno() != Errno::OK) return Outcome{r.getErrno(), kj::str()};
  auto info = r.getDomain().infoRequest().send().wait(st.ws);
  return Outcome{Errno::OK, kj::heapString(info.getInfo().getSmmu())};
}

kj::StringPtr placements[] = {"inline", "process"};

TEST_CASE("Policy: group_centric binds 'bus' and 'group' domains to a device nobody named",
          "[domain_allocator][policy]") {
  for (auto where : placements) {
    DYNAMIC_SECTION(where.cStr()) {
      Stack st(shippedManifest("group", where));
      auto info = st.domains.infoRequest().send().wait(st.ws);
      CHECK(info.getPolicy() == rpc::Policy::GROUP_CENTRIC);
      CHECK(info.getSmmus().size() == 2);

      // "For the bus": the first device of the first topology — smmu0.
      auto bus = alloc(st, [](auto t) { t.setBus(); });
      CHECK(bus.errno_ == Errno::OK);
      CHECK(bus.smmu == "smmu0"_kj);
      // "For a group": its first device, whatever the others are.
      auto group = alloc(st, [](auto t) {
        auto g = t.initGroup(2);
        g.set(0, "0001:01:00.0");
        g.set(1, "0000:01:00.0");
      });
      CHECK(group.smmu == "smmu1"_kj);
      CHECK(alloc(st, [](auto t) { t.initGroup(0); }).errno_ == Errno::E_INVAL);
      // Named targets.
      CHECK(alloc(st, [](auto t) { t.setDevice("0001:01:00.0"); }).smmu == "smmu1"_kj);
      CHECK(alloc(st, [](auto t) { t.setSmmu("smmu1"); }).smmu == "smmu1"_kj);
      CHECK(alloc(st, [](auto t) { t.setSmmu("smmu7"); }).errno_ == Errno::E_NO_DEV);
      // Without a segment, 01:00.0 names two devices.
      CHECK(alloc(st, [](auto t) { t.setDevice("01:00.0"); }).errno_ == Errno::E_INVAL);

      // The container's "bus" domain works for smmu0's device and fails, late, for smmu1's.
      auto o0 = st.claimDevice("0000:01:00.0", 7);
      auto o1 = st.claimDevice("0001:01:00.0", 7);
      auto req = st.domains.allocPagingRequest();
      req.initTarget().setBus();
      auto shared = req.send().wait(st.ws).getDomain();
      CHECK(st.attach(o0, shared) == Errno::OK);
      kj::String message;
      CHECK(st.attach(o1, shared, &message) == Errno::E_INVAL);
      CHECK(std::string(message.cStr()).find("finalised for smmu0") != std::string::npos);
      CHECK(std::string(message.cStr()).find("behind smmu1") != std::string::npos);
    }
  }
}

TEST_CASE("Policy: device_centric takes a named device or SMMU and refuses the rest",
          "[domain_allocator][policy]") {
  for (auto where : placements) {
    DYNAMIC_SECTION(where.cStr()) {
      Stack st(shippedManifest("device", where));
      CHECK(st.domains.infoRequest().send().wait(st.ws).getPolicy() == rpc::Policy::DEVICE_CENTRIC);
      CHECK(alloc(st, [](auto t) { t.setBus(); }).errno_ == Errno::E_INVAL);
      CHECK(alloc(st, [](auto t) { t.initGroup(1).set(0, "0000:01:00.0"); }).errno_ ==
            Errno::E_INVAL);
      CHECK(alloc(st, [](auto t) { t.setDevice("0000:01:00.0"); }).smmu == "smmu0"_kj);
      CHECK(alloc(st, [](auto t) { t.setDevice("0001:01:00.0"); }).smmu == "smmu1"_kj);
      CHECK(alloc(st, [](auto t) { t.setSmmu("smmu1"); }).smmu == "smmu1"_kj);
      CHECK(st.counter("domains", "alloc_errors") == 2);

      // One domain per SMMU; each device's DMA goes through its own.
      auto o0 = st.claimDevice("0000:01:00.0", 7);
      auto o1 = st.claimDevice("0001:01:00.0", 7);
      auto d0 = st.s1("0000:01:00.0");
      auto d1 = st.s1("0001:01:00.0");
      auto buffer = st.alloc(0x2000);
      CHECK(st.map(d0, 0x100000, buffer, 0x1000) == Errno::OK);
      CHECK(st.map(d1, 0x100000, buffer + 0x1000, 0x1000) == Errno::OK);
      CHECK(st.attach(o0, d0) == Errno::OK);
      CHECK(st.attach(o1, d1) == Errno::OK);
      CHECK(st.dma("ep0", 0x100000, "zero"_kj).outcome == "ok"_kj);
      CHECK(st.dma("ep1", 0x100000, "one"_kj).outcome == "ok"_kj);
      CHECK(st.read(buffer, 4) == "zero"_kj);
      CHECK(st.read(buffer + 0x1000, 3) == "one"_kj);
      // A domain of one SMMU on a device of the other: eInval whatever the policy.
      CHECK(st.replace(o0, d1) == Errno::E_INVAL);
      // Each SMMU has its own ASID space: on each, the two groups' default domains took ASIDs 1
      // and 2, so both new domains got ASID 3.
      kj::Own<capnp::MallocMessageBuilder> k0, k1;
      CHECK(st.info(d0, k0).getAsid() == 3);
      CHECK(st.info(d1, k1).getAsid() == 3);
    }
  }
}

}  // namespace
}  // namespace nb::domains::testing
