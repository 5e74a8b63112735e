// tests/components/stage2_shadow: a composed system for stage2_shadow's tests — an SMMU, its
// queue, page_table, domain_allocator and group_manager, a PCIe endpoint, a VM and a
// stage2_shadow implementation — and
// the independent checks: the VM's memslots walked page by page against the domain's
// translations, DMA through the stage-2 domain attached directly to the endpoint (IOVA = GPA),
// and physical memory read and written behind everyone's back.
//
// Memory is a large sparse memfd (8 GiB from 1 GiB): only touched pages cost. Fixed backings
// live from 4 GiB up, where nothing else allocates; the SMMU's structures and "allocate" slots
// come from the bottom.
#pragma once

#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/endpoint.capnp.h"
#include "interfaces/stage2-shadow.capnp.h"
#include "interfaces/vm.capnp.h"
#include "tests/system/compose-testing.h"
#include "util/bits.h"

#include <capnp/message.h>
#include <catch2/catch.hpp>

namespace nb::s2::testing {

using nb::testing::TestSystem;

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
constexpr uint64_t PAGE = 4 * KiB;
constexpr uint64_t MEM_BASE = 1 * GiB;
constexpr uint64_t MEM_SIZE = 8 * GiB;
constexpr uint64_t HIGH = 4 * GiB;  // fixed backings from here up
constexpr kj::StringPtr DEVICE = "01:00.0"_kj;  // ep0: StreamID 0x100

kj::String hex(uint64_t v) { return kj::str("0x", kj::hex(v)); }

struct SlotSpec {
  uint32_t id;
  uint64_t gpa;
  uint64_t size;
  uint64_t pa;  // 0: "allocate"
  bool readonly = false;
};

inline kj::String slotsToml(kj::ArrayPtr<const SlotSpec> slots) {
  kj::Vector<kj::String> lines;
  for (auto& s : slots) {
    lines.add(kj::str("  { slot = ", s.id, ", gpa = ", s.gpa, ", size = ", s.size, ", pa = ",
                      s.pa == 0 ? kj::str("\"allocate\"") : kj::str(s.pa),
                      s.readonly ? ", readonly = true" : "", " },"));
  }
  return kj::strArray(lines, "\n");
}

struct Options {
  kj::StringPtr impl = "stage2_shadow/kvm_read";
  kj::StringPtr placement = "inline";   // of the shadow component
  kj::StringPtr others = "inline";      // of page_table, the queue, domains and groups
  kj::StringPtr shadowSettings = "";
  kj::StringPtr allocator = "domain_allocator/device_centric";
  kj::StringPtr guestPath = "native";
  unsigned ipaBits = 40;
};

inline kj::String manifest(kj::ArrayPtr<const SlotSpec> slots, const Options& o = {}) {
  return kj::str(
      "[memory]\nbase = ", MEM_BASE, "\nsize = ", MEM_SIZE, "\n\n",
      "[[hw.smmuv3]]\nname = \"smmu0\"\nsid_bits = 10\niotlb_entries = 1024\n\n",
      "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\nsid_base = 0\ndevices = [\n"
      "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n  { bdf = \"01:00.0\", parent = \"00:01.0\" },\n]\n\n",
      "[[hw.endpoint]]\nname = \"ep0\"\nuses = { pci = \"pci0\" }\nbdf = \"01:00.0\"\n\n",
      "[[hw.vm]]\nname = \"vm0\"\nipa_bits = ", o.ipaBits, "\nmemslots = [\n", slotsToml(slots),
      "\n]\n\n",
      "[components.page_table]\nimpl = \"page_table/arm_lpae\"\nplacement = \"", o.others,
      "\"\n\n",
      "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\nplacement = \"", o.others,
      "\"\nuses = { smmu = \"smmu0\" }\nguest_path = \"", o.guestPath, "\"\n\n",
      "[components.domains]\nimpl = \"", o.allocator, "\"\nplacement = \"", o.others, "\"\n"
      "uses = { queues = [\"queue\"], pci = [\"pci0\"], page_table = \"page_table\" }\n\n",
      "[components.groups]\nimpl = \"group_manager/linux\"\nplacement = \"", o.others, "\"\n"
      "uses = { pci = [\"pci0\"], domains = \"domains\" }\n\n",
      "[components.shadow]\nimpl = \"", o.impl, "\"\nplacement = \"", o.placement,
      "\"\nuses = { domains = \"domains\" }\n", o.shadowSettings, "\n");
}

struct DmaOutcome {
  enum Kind { OK, FAULT, ABORT } kind = OK;
  kj::Array<kj::byte> data;
  uint32_t faultId = 0;   // the event ID
  bool s2 = false;        // a stage-2 fault
  uint32_t sid = 0;

  kj::String describe() const {
    switch (kind) {
      case OK: return kj::str("ok ", data.size(), " bytes");
      case FAULT: return kj::str("fault 0x", kj::hex(faultId), s2 ? " s2" : " s1");
      case ABORT: return kj::str("abort");
    }
    KJ_UNREACHABLE;
  }
};

struct Rig {
  explicit Rig(kj::ArrayPtr<const SlotSpec> slots, const Options& o = {})
      : sys(manifest(slots, o)),
        ws(sys.io.waitScope),
        mem(sys.composer.memory()),
        vm(sys.main<rpc::Vm>("vm0")),
        service(sys.main<rpc::Stage2Shadow>("shadow")),
        domains(sys.main<rpc::DomainAllocator>("domains")),
        ep(sys.main<rpc::Endpoint>("ep0")) {}

  TestSystem sys;
  kj::WaitScope& ws;
  PhysMem& mem;
  rpc::Vm::Client vm;
  rpc::Stage2Shadow::Client service;
  rpc::DomainAllocator::Client domains;
  rpc::Endpoint::Client ep;
  rpc::Shadow::Client shadow = nullptr;
  rpc::Domain::Client domain = nullptr;

  // shadow() for smmu0; returns its errno (the shadow and domain are kept on success).
  rpc::Errno shadowVm(kj::StringPtr smmu = "smmu0") {
    auto req = service.shadowRequest();
    req.setVm(vm);
    req.initTarget().setSmmu(smmu);
    auto r = req.send().wait(ws);
    if (r.getErrno() == rpc::Errno::OK) {
      shadow = r.getShadow();
      domain = r.getDomain();
    } else {
      INFO(r.getMessage().cStr());
    }
    return r.getErrno();
  }

  // The stage-2 domain on the endpoint itself: its DMA addresses are GPAs.
  void attachS2() {
    auto req = domains.attachDeviceRequest();
    req.setDevice(DEVICE);
    req.setDomain(domain);
    auto r = req.send().wait(ws);
    REQUIRE(r.getErrno() == rpc::Errno::OK);
  }

  struct Slot {
    uint32_t id;
    uint64_t gpa, size, pa;
    bool readonly;
  };

  kj::Array<Slot> slots() {
    auto r = vm.memslotsRequest().send().wait(ws);
    return KJ_MAP(s, r.getSlots()) {
      return Slot{s.getSlot(), s.getGpa(), s.getSize(), s.getPa(), s.getReadonly()};
    };
  }

  kj::Array<Slot> mappings() {
    auto r = shadow.mappingsRequest().send().wait(ws);
    return KJ_MAP(s, r.getRuns()) {
      return Slot{s.getSlot(), s.getGpa(), s.getSize(), s.getPa(), s.getReadonly()};
    };
  }

  kj::Maybe<uint64_t> translate(uint64_t gpa) {
    auto req = domain.iovaToPhysRequest();
    req.setIova(gpa);
    auto r = req.send().wait(ws);
    if (r.getErrno() != rpc::Errno::OK) return nullptr;
    return r.getPa();
  }

  rpc::Errno memslotResult(capnp::Response<rpc::MemslotResult>&& r) { return r.getErrno(); }

  rpc::Errno add(uint32_t id, uint64_t gpa, uint64_t size, uint64_t pa = 0, bool readonly = false) {
    auto req = vm.addMemslotRequest();
    req.setSlot(id);
    req.setGpa(gpa);
    req.setSize(size);
    req.setReadonly(readonly);
    if (pa != 0) req.setPa(pa);
    return req.send().wait(ws).getErrno();
  }
  rpc::Errno remove(uint32_t id) {
    auto req = vm.deleteMemslotRequest();
    req.setSlot(id);
    return req.send().wait(ws).getErrno();
  }
  rpc::Errno move(uint32_t id, uint64_t gpa) {
    auto req = vm.moveMemslotRequest();
    req.setSlot(id);
    req.setGpa(gpa);
    return req.send().wait(ws).getErrno();
  }
  rpc::Errno setReadonly(uint32_t id, bool readonly) {
    auto req = vm.setMemslotFlagsRequest();
    req.setSlot(id);
    req.setReadonly(readonly);
    return req.send().wait(ws).getErrno();
  }

  static DmaOutcome outcomeOf(rpc::DmaResult::Reader r) {
    DmaOutcome out;
    REQUIRE(r.getErrno() == rpc::Errno::OK);
    if (r.isFault()) {
      out.kind = DmaOutcome::FAULT;
      out.faultId = r.getFault().getId();
      out.s2 = r.getFault().getS2();
      out.sid = r.getFault().getSid();
    } else if (r.isAborted()) {
      out.kind = DmaOutcome::ABORT;
    } else {
      out.data = kj::heapArray(r.getData());
    }
    return out;
  }

  DmaOutcome read(uint64_t iova, uint64_t length = 8) {
    auto req = ep.dmaRequest();
    req.setIova(iova);
    req.setLength(length);
    return outcomeOf(req.send().wait(ws));
  }

  DmaOutcome write(uint64_t iova, kj::ArrayPtr<const kj::byte> data) {
    auto req = ep.dmaRequest();
    req.setIova(iova);
    req.setWrite(true);
    req.setData(data);
    return outcomeOf(req.send().wait(ws));
  }

  capnp::Response<rpc::Shadow::InfoResults> info() { return shadow.infoRequest().send().wait(ws); }

  uint64_t counter(kj::StringPtr instance, kj::StringPtr name) {
    for (auto& s : sys.stats()) {
      if (s.name != instance) continue;
      for (auto& c : s.counters) {
        if (c.name == name) return c.value;
      }
    }
    KJ_FAIL_REQUIRE("no such counter", instance, name);
  }
};

// The GPAs worth probing in a slot: both ends, both sides of every 2 MiB and 1 GiB boundary
// inside it, and the page after its end.
inline kj::Vector<uint64_t> probes(uint64_t gpa, uint64_t size) {
  kj::Vector<uint64_t> out;
  auto add = [&](uint64_t g) {
    if (g >= gpa && g < gpa + size && (out.size() == 0 || out.back() < g)) out.add(g);
  };
  add(gpa);
  for (uint64_t b = alignUp(gpa + 1, 2 * MiB); b < gpa + size; b += 2 * MiB) {
    add(b - PAGE);
    add(b);
    if (out.size() > 64) {
      // Large slots: sample the rest at 1 GiB steps.
      for (uint64_t g = alignUp(b + 1, GiB); g < gpa + size; g += GiB) {
        add(g - PAGE);
        add(g);
      }
      break;
    }
  }
  add(gpa + size - PAGE);
  return out;
}

// The independent check: every probe of every memslot translates to its backing, no probe
// outside the slots translates, and the shadow's record lists exactly the slots.
inline void checkAgainstSlots(Rig& rig) {
  auto slots = rig.slots();
  for (auto& s : slots) {
    for (auto g : probes(s.gpa, s.size)) {
      INFO("slot " << s.id << " gpa " << hex(g).cStr());
      auto pa = rig.translate(g);
      REQUIRE(pa != nullptr);
      CHECK(KJ_ASSERT_NONNULL(pa) == s.pa + (g - s.gpa));
    }
    // Just outside the slot, where no other slot is.
    for (uint64_t g : {s.gpa - PAGE, s.gpa + s.size}) {
      if (s.gpa == 0 && g == s.gpa - PAGE) continue;
      bool inSlot = false;
      for (auto& o : slots) inSlot = inSlot || (g >= o.gpa && g < o.gpa + o.size);
      if (inSlot) continue;
      INFO("outside slot " << s.id << " gpa " << hex(g).cStr());
      CHECK(rig.translate(g) == nullptr);
    }
  }
  auto runs = rig.mappings();
  REQUIRE(runs.size() == slots.size());
  for (auto i : kj::indices(slots)) {
    CHECK(runs[i].id == slots[i].id);
    CHECK(runs[i].gpa == slots[i].gpa);
    CHECK(runs[i].size == slots[i].size);
    CHECK(runs[i].pa == slots[i].pa);
    CHECK(runs[i].readonly == slots[i].readonly);
  }
}

}  // namespace nb::s2::testing
