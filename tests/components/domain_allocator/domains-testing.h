// tests/components/domain_allocator: a composed system with the real IOMMU stack — hw/smmuv3,
// hw/pci, hw/endpoint, page_table, smmu_queue, a domain allocator and group_manager — and
// helpers that drive it the way iommufd would (claim, allocate, map, attach, DMA).
#pragma once

#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/endpoint.capnp.h"
#include "interfaces/group-manager.capnp.h"
#include "interfaces/smmu-queue.capnp.h"
#include "tests/system/compose-testing.h"
#include "util/bits.h"

#include <capnp/serialize-text.h>

namespace nb::domains::testing {

using rpc::Errno;

struct Placement {
  // Where the OS-side components run: hw models stay inline (hw/README: DMA through a
  // process-placed topology costs a hop per page).
  kj::StringPtr components = "inline";
  kj::StringPtr allocator = "domain_allocator/group_centric";
};

// One SMMU, a root port with full ACS over 01:00.0 (ep0), an integrated endpoint 00:10.0
// (ep1, PASID-capable), and a multifunction device 02:00.0/02:00.1 without ACS (ep2, ep3; one
// group). `smmuExtra` is appended to smmu0's table.
inline kj::String oneSmmuManifest(Placement p, kj::StringPtr smmuExtra = "",
                                  kj::StringPtr groupsExtra = "", kj::StringPtr queueExtra = "",
                                  kj::StringPtr domainsExtra = "") {
  return kj::str(
      "[memory]\nbase = 0x80000000\nsize = \"128MiB\"\n"
      "[[hw.smmuv3]]\nname = \"smmu0\"\n",
      smmuExtra,
      "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\ndevices = [\n"
      "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n"
      "  { bdf = \"01:00.0\", parent = \"00:01.0\" },\n"
      "  { bdf = \"00:02.0\", kind = \"root_port\", secondary = 2, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n"
      "  { bdf = \"02:00.0\", parent = \"00:02.0\" },\n"
      "  { bdf = \"02:00.1\", parent = \"00:02.0\" },\n"
      "  { bdf = \"00:10.0\" },\n"
      "]\n"
      "[[hw.endpoint]]\nname = \"ep0\"\nuses = { pci = \"pci0\" }\nbdf = \"01:00.0\"\n"
      "[[hw.endpoint]]\nname = \"ep1\"\nuses = { pci = \"pci0\" }\nbdf = \"00:10.0\"\n"
      "[[hw.endpoint]]\nname = \"ep2\"\nuses = { pci = \"pci0\" }\nbdf = \"02:00.0\"\n"
      "[[hw.endpoint]]\nname = \"ep3\"\nuses = { pci = \"pci0\" }\nbdf = \"02:00.1\"\n"
      "[components.page_table]\nimpl = \"page_table/arm_lpae\"\nplacement = \"",
      p.components,
      "\"\n"
      "[components.smmu_queue]\nimpl = \"smmu_queue/smmuv3\"\nplacement = \"",
      p.components,
      "\"\n"
      "uses = { smmu = \"smmu0\" }\n",
      queueExtra, "[components.domains]\nimpl = \"", p.allocator, "\"\nplacement = \"",
      p.components,
      "\"\n"
      "uses = { queues = [\"smmu_queue\"], pci = [\"pci0\"], page_table = \"page_table\" }\n",
      domainsExtra, "[components.groups]\nimpl = \"group_manager/linux\"\nplacement = \"",
      p.components,
      "\"\n"
      "uses = { pci = [\"pci0\"], domains = \"domains\" }\n",
      groupsExtra);
}

struct Dma {
  kj::String outcome;  // "ok", "fault fTranslation", "abort ste", "errno ..."
  kj::Array<kj::byte> data;
};

class Stack {
public:
  explicit Stack(kj::StringPtr manifest)
      : sys(manifest),
        ws(sys.io.waitScope),
        groups(sys.main<rpc::GroupManager>("groups")),
        domains(sys.main<rpc::DomainAllocator>("domains")) {}

  nb::testing::TestSystem sys;
  kj::WaitScope& ws;
  rpc::GroupManager::Client groups;
  rpc::DomainAllocator::Client domains;

  PhysMem& mem() { return sys.composer.memory(); }
  uint64_t alloc(uint64_t bytes, uint64_t align = 4096) {
    uint64_t pa =
        KJ_REQUIRE_NONNULL(sys.composer.frames().allocFrames(alignUp(bytes, 4096), align));
    mem().zero(pa, alignUp(bytes, 4096));
    return pa;
  }

  rpc::Ownership::Client claimDevice(kj::StringPtr bdf, uint64_t owner = 1) {
    auto req = groups.claimDeviceRequest();
    req.setDevice(bdf);
    req.setOwner(owner);
    auto r = req.send().wait(ws);
    KJ_REQUIRE(r.getErrno() == Errno::OK, "claim failed", bdf, r.getErrno());
    return r.getOwnership();
  }
  rpc::Ownership::Client claimGroupOf(kj::StringPtr bdf, uint64_t owner = 1) {
    auto q = groups.groupOfRequest();
    q.setDevice(bdf);
    auto g = q.send().wait(ws);
    auto req = groups.claimGroupRequest();
    req.setGroup(g.getGroup().getId());
    req.setOwner(owner);
    auto r = req.send().wait(ws);
    KJ_REQUIRE(r.getErrno() == Errno::OK, "claim failed", bdf, r.getErrno());
    return r.getOwnership();
  }

  struct Alloc {
    Errno errno_;
    rpc::Domain::Client domain;
    kj::String message;
  };
  Alloc paging(kj::StringPtr device, bool nestParent = false, bool dirty = false,
               bool pasid = false) {
    auto req = domains.allocPagingRequest();
    req.initTarget().setDevice(device);
    auto flags = req.initFlags();
    flags.setNestParent(nestParent);
    flags.setDirtyTracking(dirty);
    flags.setPasid(pasid);
    auto r = req.send().wait(ws);
    return Alloc{r.getErrno(), r.getDomain(), kj::heapString(r.getMessage())};
  }
  rpc::Domain::Client s1(kj::StringPtr device) {
    auto a = paging(device);
    KJ_REQUIRE(a.errno_ == Errno::OK, a.message);
    return kj::mv(a.domain);
  }

  Errno map(rpc::Domain::Client& d, uint64_t iova, uint64_t pa, uint64_t size, bool write = true) {
    auto req = d.mapRequest();
    auto run = req.initRuns(1)[0];
    run.setIova(iova);
    run.setPa(pa);
    run.setSize(size);
    run.getProt().setRead(true);
    run.getProt().setWrite(write);
    run.getProt().setCache(true);
    return req.send().wait(ws).getErrno();
  }
  struct Unmapped {
    Errno errno_;
    uint64_t bytes;
    uint32_t commands;
    uint32_t syncs;
  };
  Unmapped unmap(rpc::Domain::Client& d, uint64_t iova, uint64_t size) {
    auto req = d.unmapRequest();
    auto r = req.initRanges(1)[0];
    r.setIova(iova);
    r.setSize(size);
    auto res = req.send().wait(ws);
    return Unmapped{res.getErrno(), res.getBytesUnmapped(), res.getCommands(), res.getSyncs()};
  }

  Errno attach(rpc::Ownership::Client& o, rpc::Domain::Client d, kj::String* message = nullptr) {
    auto req = o.attachRequest();
    req.setDomain(kj::mv(d));
    auto r = req.send().wait(ws);
    if (message != nullptr) *message = kj::heapString(r.getMessage());
    return r.getErrno();
  }
  Errno replace(rpc::Ownership::Client& o, rpc::Domain::Client d) {
    auto req = o.replaceRequest();
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }
  Errno attachPasid(rpc::Ownership::Client& o, uint32_t pasid, rpc::Domain::Client d) {
    auto req = o.attachPasidRequest();
    req.setPasid(pasid);
    req.setDomain(kj::mv(d));
    return req.send().wait(ws).getErrno();
  }

  rpc::DomainInfo::Reader info(rpc::Domain::Client& d, kj::Own<capnp::MallocMessageBuilder>& keep) {
    auto r = d.infoRequest().send().wait(ws);
    keep = kj::heap<capnp::MallocMessageBuilder>();
    keep->setRoot(r.getInfo());
    return keep->getRoot<rpc::DomainInfo>().asReader();
  }

  // "ok", "fault fTranslation", "abort ste", ...
  Dma dma(kj::StringPtr endpoint, uint64_t iova, kj::Maybe<kj::StringPtr> write = nullptr,
          uint64_t length = 4, kj::Maybe<uint32_t> ssid = nullptr) {
    auto ep = sys.main<rpc::Endpoint>(endpoint);
    auto req = ep.dmaRequest();
    req.setIova(iova);
    KJ_IF_MAYBE(w, write) {
      req.setWrite(true);
      req.setData(w->asBytes());
    } else {
      req.setLength(length);
    }
    KJ_IF_MAYBE(s, ssid) { req.setSsid(*s); }
    auto r = req.send().wait(ws);
    Dma out;
    if (r.getErrno() != Errno::OK) {
      out.outcome = kj::str("errno ", uint(r.getErrno()));
      return out;
    }
    capnp::TextCodec codec;
    switch (r.which()) {
      case rpc::DmaResult::OK: out.outcome = kj::str("ok"); break;
      case rpc::DmaResult::FAULT: {
        auto type = r.getFault().getType();
        auto e = capnp::Schema::from<rpc::EventType>().getEnumerants()[uint16_t(type)];
        out.outcome = kj::str("fault ", e.getProto().getName());
        break;
      }
      case rpc::DmaResult::ABORTED: {
        auto c = r.getAborted().getCause();
        out.outcome = kj::str("abort ", c == rpc::DmaAbortCause::STE    ? "ste"
                                        : c == rpc::DmaAbortCause::GBPA ? "gbpa"
                                                                        : "external");
        break;
      }
    }
    out.data = kj::heapArray(r.getData().asBytes());
    return out;
  }

  kj::String read(uint64_t pa, size_t n) {
    auto bytes = kj::heapArray<kj::byte>(n);
    mem().read(pa, bytes);
    return kj::heapString(reinterpret_cast<const char*>(bytes.begin()), n);
  }

  // The master as the allocator reports it.
  struct MasterView {
    uint32_t domain;
    kj::Array<uint64_t> ste;
    uint64_t cdTable;
    kj::Array<uint32_t> sids;
  };
  MasterView master(kj::StringPtr bdf) {
    auto r = domains.mastersRequest().send().wait(ws);
    for (auto m : r.getMasters()) {
      if (m.getDevice() == bdf) {
        return MasterView{m.getDomain(), KJ_MAP(w, m.getSte()){return uint64_t(w);
      }
      , m.getCdTable(), KJ_MAP(s, m.getStreamIds()) { return uint32_t(s); }
    };
  }
} KJ_FAIL_REQUIRE("no such master", bdf);
}  // namespace nb::domains::testing

uint64_t counter(kj::StringPtr instance, kj::StringPtr name) {
  for (auto& s : sys.stats()) {
    if (s.name != instance) continue;
    for (auto& c : s.counters)
      if (c.name == name) return c.value;
  }
  KJ_FAIL_REQUIRE("no counter", instance, name);
}
}
;

}  // namespace nb::domains::testing
