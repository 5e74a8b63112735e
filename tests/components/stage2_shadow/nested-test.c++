// tests/components/stage2_shadow: nesting end to end — a VM shadowed at stage 2, a vIOMMU over
// the shadow with the endpoint as a vDEVICE, and a guest driver (system/guest) owning stage 1 in
// its own memory: the endpoint's DMA with the guest's IOVA lands at the right host PA through
// guest stage 1 over the shadow stage 2; a guest unmap plus the guest's invalidation makes it
// fault at stage 1, and the fault reaches the guest's vEVENTQ with its vSID; a memslot deletion
// makes it fault at stage 2, and that fault goes to the host, not the guest. For each guest
// invalidation path, both implementations, components inline and each in its own process.

#include "system/guest/guest-driver.h"
#include "tests/components/stage2_shadow/shadow-testing.h"

#include <capnp/serialize-text.h>

namespace nb::s2::testing {
namespace {

constexpr uint64_t VSID = 0x42;
constexpr uint32_t SID = 0x100;          // ep0, 01:00.0
constexpr uint64_t RAM = 64 * MiB;       // slot 0: guest RAM at GPA 0
constexpr uint64_t REGION = 32 * MiB;    // the guest driver's own structures, in RAM
constexpr uint64_t BUFFER = 16 * MiB;    // a DMA buffer in RAM
constexpr uint64_t DATA_SLOT = 256 * MiB;  // slot 1: 2 MiB the VMM will delete
constexpr uint64_t IOVA = 0x1000'0000, IOVA2 = 0x2000'0000;

struct Nest {
  explicit Nest(const Options& o)
      : rig(kj::heapArray<SlotSpec>({{0, 0, RAM, 0}, {1, DATA_SLOT, 2 * MiB, HIGH}}), o),
        queue(rig.sys.main<rpc::SmmuQueue>("queue")),
        groups(rig.sys.main<rpc::GroupManager>("groups")) {}

  Rig rig;
  rpc::SmmuQueue::Client queue;
  rpc::GroupManager::Client groups;
  rpc::Viommu::Client viommu = nullptr;
  rpc::Ownership::Client ownership = nullptr;  // the VMM's claim: dropping it releases the device
  kj::Own<guest::GuestDriver> driver;

  void setUp() {
    REQUIRE(rig.shadowVm() == rpc::Errno::OK);
    auto alloc = queue.allocViommuRequest();
    alloc.setS2Domain(rig.domain);
    auto v = alloc.send().wait(rig.ws);
    REQUIRE(v.getErrno() == rpc::Errno::OK);
    viommu = v.getViommu();
    auto add = viommu.addVdeviceRequest();
    add.setVsid(VSID);
    add.setSid(SID);
    REQUIRE(add.send().wait(rig.ws).getErrno() == rpc::Errno::OK);

    auto claim = groups.claimDeviceRequest();
    claim.setDevice(DEVICE);
    claim.setOwner(1);
    auto owned = claim.send().wait(rig.ws);
    REQUIRE(owned.getErrno() == rpc::Errno::OK);
    ownership = owned.getOwnership();

    guest::GuestSetup setup;
    setup.regionGpa = REGION;
    setup.regionSize = 1 * MiB;
    setup.asid = 3;
    setup.vsid = VSID;
    driver = guest::GuestDriver::create(rig.mem, rig.vm, viommu, setup).wait(rig.ws);
    auto attached = driver->attach(rig.domains, ownership).wait(rig.ws);
    INFO(attached.message.cStr());
    REQUIRE(attached.errno_ == rpc::Errno::OK);
  }

  uint64_t ramPa() {
    for (auto& s : rig.slots()) {
      if (s.id == 0) return s.pa;
    }
    KJ_FAIL_REQUIRE("no RAM slot");
  }

  kj::Array<rpc::VeventRecord::Reader> events(kj::Own<void>& keep) {
    auto r = kj::heap(viommu.readEventsRequest().send().wait(rig.ws));
    auto records = KJ_MAP(e, r->getRecords()) { return e; };
    keep = kj::mv(r);
    return records;
  }

  uint64_t counter(kj::StringPtr name) { return rig.counter("queue", name); }
};

constexpr pt::Prot RW = pt::Prot::READ | pt::Prot::WRITE | pt::Prot::CACHE;

TEST_CASE("Nested: guest-owned stage 1 over the shadow stage 2, end to end",
          "[stage2_shadow][nested]") {
  auto path = GENERATE(as<kj::StringPtr>{}, "native", "generic", "sw_vcmdq");
  auto placement = GENERATE(as<kj::StringPtr>{}, "inline", "process");
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  DYNAMIC_SECTION(path.cStr() << " " << placement.cStr() << " " << impl.cStr()) {
    Options o;
    o.impl = impl;
    o.guestPath = path;
    o.placement = placement;
    o.others = placement;
    Nest nest(o);
    nest.setUp();
    auto& rig = nest.rig;
    auto& driver = *nest.driver;
    CHECK(driver.queue().path() == (path == "native"    ? rpc::GuestPath::NATIVE
                                    : path == "generic" ? rpc::GuestPath::GENERIC
                                                        : rpc::GuestPath::SW_VCMDQ));

    // The guest maps two RAM pages and a page of the data slot.
    REQUIRE(driver.map(IOVA, BUFFER, 2 * PAGE, RW).error == pt::Errno::OK);
    REQUIRE(driver.map(IOVA2, DATA_SLOT, PAGE, RW).error == pt::Errno::OK);
    CHECK(driver.iovaToGpa(IOVA + PAGE + 8) == BUFFER + PAGE + 8);

    // DMA with the guest's IOVA lands at the host PA behind the GPA its stage 1 names.
    const uint64_t ram = nest.ramPa();
    auto w = rig.write(IOVA + PAGE + 8, "nested"_kj.asBytes());
    INFO(w.describe().cStr());
    REQUIRE(w.kind == DmaOutcome::OK);
    kj::byte landed[6];
    rig.mem.read(ram + BUFFER + PAGE + 8, landed);
    CHECK(kj::arrayPtr(landed, 6) == "nested"_kj.asBytes());
    rig.mem.store64(HIGH + 0x10, 0xda7a);
    auto r = rig.read(IOVA2 + 0x10);
    REQUIRE(r.kind == DmaOutcome::OK);
    uint64_t got;
    memcpy(&got, r.data.begin(), 8);
    CHECK(got == 0xda7a);

    // The guest unmaps and invalidates through its path: the IOTLB held the translation (the
    // DMA above), so only the invalidation makes the next DMA fault — at stage 1.
    auto unmapped = driver.unmap(IOVA, 2 * PAGE);
    REQUIRE(unmapped.error == pt::Errno::OK);
    CHECK(driver.iovaToGpa(IOVA2 + 0x10) == DATA_SLOT + 0x10);
    CHECK(driver.iovaToGpa(IOVA + PAGE) == nullptr);
    // Not yet invalidated: the IOTLB still translates the page the DMA above used.
    CHECK(rig.read(IOVA + PAGE + 8).kind == DmaOutcome::OK);
    auto inv = driver.invalidate(unmapped.invalidations).wait(rig.ws);
    INFO(inv.message.cStr());
    REQUIRE(inv.errno_ == rpc::Errno::OK);
    uint64_t toGuests = nest.counter("events_to_guests");
    auto f = rig.read(IOVA + PAGE);
    REQUIRE(f.kind == DmaOutcome::FAULT);
    CHECK(f.faultId == 0x10);  // F_TRANSLATION
    CHECK_FALSE(f.s2);
    CHECK(f.sid == SID);
    kj::Own<void> keep;
    auto events = nest.events(keep);
    REQUIRE(events.size() == 1);
    CHECK(events[0].getFault().getSid() == VSID);  // the guest sees its vSID
    CHECK(events[0].getFault().getInputAddr() == IOVA + PAGE);
    CHECK_FALSE(events[0].getFault().getS2());
    CHECK(nest.counter("events_to_guests") == toGuests + 1);

    // The VMM deletes the data slot: the shadow unmaps it (with invalidation) before it goes,
    // and DMA through the guest's still-present stage-1 entry faults at stage 2 — the host's.
    CHECK(rig.read(IOVA2 + 0x10).kind == DmaOutcome::OK);  // the other mapping is intact
    uint64_t hostEvents = nest.counter("events_routed") + nest.counter("events_unrouted");
    REQUIRE(rig.remove(1) == rpc::Errno::OK);
    auto s2 = rig.read(IOVA2 + 0x10);
    INFO("after the delete: " << s2.describe().cStr());
    REQUIRE(s2.kind == DmaOutcome::FAULT);
    CHECK(s2.s2);
    CHECK(s2.faultId == 0x10);
    auto none = nest.events(keep);
    for (auto e : none) {
      capnp::TextCodec codec;
      UNSCOPED_INFO(codec.encode(e.getFault()).cStr());
    }
    CHECK(none.size() == 0);
    CHECK(nest.counter("events_to_guests") == toGuests + 1);
    CHECK(nest.counter("events_routed") + nest.counter("events_unrouted") == hostEvents + 1);

    // Guest memory still works: the guest maps again and DMA lands.
    REQUIRE(driver.map(IOVA, BUFFER, PAGE, RW).error == pt::Errno::OK);
    auto again = rig.write(IOVA, "again"_kj.asBytes());
    INFO(again.describe().cStr());
    CHECK(again.kind == DmaOutcome::OK);
    CHECK(rig.counter("shadow", "update_errors") == 0);
  }
}

}  // namespace
}  // namespace nb::s2::testing
