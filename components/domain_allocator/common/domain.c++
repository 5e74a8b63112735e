// The Domain capability: what a domain is, its map/unmap with the TLB invalidations they
// require (issued and synced before the call returns), and its end (IDs flushed and freed,
// page table destroyed).

#include "components/domain_allocator/common/state.h"

#include <kj/debug.h>
#include <algorithm>

namespace nb::domains {

DomainServer::DomainServer(kj::Own<Shared> sharedRef, rpc::DomainKind kind, Smmu* smmu)
    : shared(kj::mv(sharedRef)), id(shared->nextId++), kind(kind), smmu(smmu) {
  shared->liveDomains++;
  shared->counters.domainsAllocated[uint(kind)]++;
}

DomainServer::~DomainServer() noexcept(false) {
  // Nothing holds it: nothing is installed on it. Flush what the SMMU may still cache under
  // its ASID or VMID before the ID can be reused, then free the ID and the page table.
  auto& s = *shared;
  s.liveDomains--;
  s.counters.fqPending -= fqEntries.size();  // iommu_dma_free_fq: the whole flush below covers them
  if (smmu == nullptr) return;
  kj::Vector<Inv> ops;
  auto* instance = smmu;
  kj::Maybe<kj::Function<void()>> release;
  switch (kind) {
    case rpc::DomainKind::STAGE1: {
      uint16_t a = asid;
      ops.add(Inv{rpc::HostOp::TLBI_NH_ASID, 0, 0, a, 0});
      release = [instance, a]() { instance->asids.free(a); };
      break;
    }
    case rpc::DomainKind::STAGE2: {
      uint16_t v = vmid;
      if (nestParent) instance->nestParents.erase(v);
      ops.add(Inv{rpc::HostOp::TLBI_S12_VMALL, 0, 0, 0, v});
      release = [instance, v]() { instance->vmids.free(v); };
      break;
    }
    default: break;  // nested: the VMID is its parent's; the guest owns its stage-1 entries
  }
  kj::Promise<void> done = kj::READY_NOW;
  if (!ops.empty() && !s.stopped) {  // after shutdown smmu_queue may be gone: only free
    s.counters.tlbiCommands += ops.size();
    done = s.invalidate(*instance, kj::mv(ops)).ignoreResult();
  }
  done = done.then([release = kj::mv(release)]() mutable {
    KJ_IF_MAYBE(r, release) { (*r)(); }
  });
  KJ_IF_MAYBE(t, table) {
    if (!s.stopped) {
      done = done.then(
          [t = kj::mv(*t)]() mutable { return t.destroyRequest().send().ignoreResult(); });
    }
  }
  // Not attached to a reference on `s`: a task must never own the TaskSet it runs in. If the
  // allocator goes first, the task is cancelled with it.
  s.tasks.add(kj::mv(done));
}

Cd DomainServer::cd() {
  KJ_REQUIRE(kind == rpc::DomainKind::STAGE1, "only a stage-1 domain has a CD", id);
  auto s1 = info().getS1();
  auto t = s1.getTcr();
  return makeS1Cd(asid, Tcr{t.getTsz(), t.getTg(), t.getIrgn(), t.getOrgn(), t.getSh(), t.getIps()},
                  s1.getTtbr(), s1.getMair(), dirtyTracking);
}

namespace {

Vtcr vtcrOf(rpc::TableInfo::Reader info) {
  auto v = info.getS2().getVtcr();
  return Vtcr{v.getTsz(), v.getSl(), v.getIrgn(), v.getOrgn(), v.getSh(), v.getTg(), v.getPs()};
}

}  // namespace

Ste DomainServer::steFor(const Master& master) {
  auto options = master.smmu->steOptions();
  switch (kind) {
    case rpc::DomainKind::STAGE2:
      return makeS2Ste(vmid, vtcrOf(info()), info().getS2().getVttbr(), options);
    case rpc::DomainKind::NESTED: {
      auto& p = *KJ_ASSERT_NONNULL(parent).server;
      switch (vste.config) {
        case VsteConfig::ABORT: return makeAbortSte();
        case VsteConfig::BYPASS:
          // The guest sees identity at stage 1; DMA is still translated by stage 2.
          return makeS2Ste(p.vmid, vtcrOf(p.info()), p.info().getS2().getVttbr(), options);
        case VsteConfig::S1_TRANS:
          return makeNestedSte(p.vmid, vtcrOf(p.info()), p.info().getS2().getVttbr(), vste.dw0,
                               vste.dw1, options);
      }
      KJ_UNREACHABLE;
    }
    default: KJ_FAIL_REQUIRE("steFor is for stage-2 and nested domains", id);
  }
}

void DomainServer::detach(Master& master, kj::Maybe<uint32_t> pasid) {
  for (auto i : kj::indices(attachments)) {
    auto& a = attachments[i];
    if (a.master == &master && a.pasid == pasid) {
      // Order does not matter (info() sorts): move the last one here.
      if (i + 1 != attachments.size()) attachments[i] = attachments.back();
      attachments.removeLast();
      return;
    }
  }
}

kj::Promise<void> DomainServer::info(InfoContext context) {
  auto out = context.getResults().initInfo();
  out.setId(id);
  out.setKind(kind);
  if (smmu != nullptr) out.setSmmu(smmu->name);
  out.setNestParent(nestParent);
  out.setDirtyTracking(dirtyTracking);
  out.setFlushQueue(flushQueue);
  out.setAsid(asid);
  out.setVmid(vmid);
  if (hasTable) {
    auto t = info();
    out.setIas(t.getConfig().getIas());
    out.setOas(t.getConfig().getOas());
    out.setPgsizeBitmap(t.getPgsizeBitmap());
    out.setTable(t);
  }
  // Attachments sorted by device, RID before PASIDs.
  kj::Vector<const Attachment*> sorted;
  for (auto& a : attachments) sorted.add(&a);
  std::sort(sorted.begin(), sorted.end(), [](const Attachment* a, const Attachment* b) {
    if (a->master->bdf != b->master->bdf) return a->master->bdf < b->master->bdf;
    return a->pasid.orDefault(0) < b->pasid.orDefault(0) ||
           (a->pasid == nullptr && b->pasid != nullptr);
  });
  auto list = out.initAttachments(sorted.size());
  for (auto i : kj::indices(sorted)) {
    list[i].setDevice(sorted[i]->master->bdf);
    KJ_IF_MAYBE(p, sorted[i]->pasid) {
      list[i].setPasid(*p);
    } else {
      list[i].setRid();
    }
  }
  if (kind == rpc::DomainKind::NESTED) {
    auto v = out.initVste(2);
    v.set(0, vste.dw0);
    v.set(1, vste.dw1);
    out.setVsteConfig(vste.config == VsteConfig::ABORT    ? rpc::VsteConfig::ABORT
                      : vste.config == VsteConfig::BYPASS ? rpc::VsteConfig::BYPASS
                                                          : rpc::VsteConfig::S1_TRANS);
    out.setIas(KJ_ASSERT_NONNULL(parent).server->info().getConfig().getIas());
  }
  return kj::READY_NOW;
}

kj::Promise<void> DomainServer::iovaToPhys(IovaToPhysContext context) {
  KJ_IF_MAYBE(t, table) {
    auto req = t->iovaToPhysRequest();
    req.setIova(context.getParams().getIova());
    return req.send().then([context](auto r) mutable {
      auto results = context.getResults();
      results.setErrno(r.getErrno());
      results.setPa(r.getPa());
    });
  }
  context.getResults().setErrno(Errno::E_OP_NOT_SUPP);
  return kj::READY_NOW;
}

kj::Promise<void> DomainServer::map(MapContext context) {
  auto& s = *shared;
  KJ_IF_MAYBE(t, table) {
    s.counters.mapCalls++;
    auto params = context.getParams();
    auto req = t->mapRequest(capnp::MessageSize{4 + params.getRuns().size() * 8, 0});
    req.setRuns(params.getRuns());
    context.releaseParams();
    return req.send().then([this, context](auto r) mutable {
      auto results = context.getResults();
      results.setErrno(r.getErrno());
      results.setBytesMapped(r.getBytesMapped());
      results.setFailedIndex(r.getFailedIndex());
      shared->counters.bytesMapped += r.getBytesMapped();
      // A block replacing a table: its walk flush (arm_lpae_init_pte, no add_page).
      return invalidateRanges(r.getInvalidations()).ignoreResult();
    });
  }
  context.getResults().setErrno(Errno::E_OP_NOT_SUPP);
  return kj::READY_NOW;
}

kj::Promise<void> DomainServer::unmap(UnmapContext context) {
  auto& s = *shared;
  KJ_IF_MAYBE(t, table) {
    s.counters.unmapCalls++;
    auto params = context.getParams();
    auto req = t->unmapRequest(capnp::MessageSize{4 + params.getRanges().size() * 4, 0});
    req.setRanges(params.getRanges());
    return req.send().then([this, context](auto r) mutable {
      auto results = context.getResults();
      results.setErrno(r.getErrno());
      results.setBytesUnmapped(r.getBytesUnmapped());
      results.setStoppedIndex(r.getStoppedIndex());
      shared->counters.bytesUnmapped += r.getBytesUnmapped();
      // Each range processed is one iommu_unmap: those before the one that stopped, and that
      // one if it unmapped anything.
      auto list = r.getInvalidations();
      int64_t stopped = r.getStoppedIndex();
      uint32_t done = stopped < 0 ? context.getParams().getRanges().size() : uint32_t(stopped);
      if (stopped >= 0 && list.size() > 0 && list[list.size() - 1].getRange() == done) done++;
      InvalidationPlan plan;
      replayUnmap(plan, list, done);
      // The table pages the unmap freed are back in the pool already: the walk flushes must
      // complete before this returns (page_table's contract), and strict leaf flushes too.
      return issue(kj::mv(plan)).then([context](Issued issued) mutable {
        context.getResults().setCommands(issued.commands);
        context.getResults().setSyncs(issued.syncs);
      });
    });
  }
  context.getResults().setErrno(Errno::E_OP_NOT_SUPP);
  return kj::READY_NOW;
}

kj::Promise<void> DomainServer::flushAll(FlushAllContext context) {
  if (smmu == nullptr) {
    context.getResults().setErrno(Errno::E_OP_NOT_SUPP);
    return kj::READY_NOW;
  }
  return flush().ignoreResult();
}

kj::Promise<uint32_t> DomainServer::flush() {
  // iommu_flush_iotlb_all. A nested domain: TLBI_NH_ALL of its VMID (the guest's entries).
  InvalidationPlan plan;
  if (kind == rpc::DomainKind::NESTED) {
    shared->counters.wholeDomainFlushes++;
    plan.add(Inv{rpc::HostOp::TLBI_NH_ALL, 0, 0, 0, vmid});
    plan.endSubmission();
  } else {
    armSmmuTlbInvContext(plan);
  }
  return issue(kj::mv(plan)).then([](Issued issued) { return issued.commands; });
}

kj::Promise<void> DomainServer::drainFlushQueue(DrainFlushQueueContext context) {
  if (smmu == nullptr || !hasTable) {
    context.getResults().setErrno(Errno::E_OP_NOT_SUPP);
    return kj::READY_NOW;
  }
  // A strict domain has no queue: nothing is ever pending (flushed = false).
  InvalidationPlan plan;
  uint32_t reclaimed = 0;
  bool flushed = fqFlushTimeout(plan, reclaimed);
  context.getResults().setFlushed(flushed);
  context.getResults().setEntries(reclaimed);
  return issue(kj::mv(plan)).ignoreResult();
}

kj::Promise<uint32_t> DomainServer::invalidateRanges(
    capnp::List<rpc::Invalidation>::Reader ranges) {
  // Walk flushes a map returned (a block replacing a table), each as Linux issues it — after
  // the flush-queue timer, if it has fired meanwhile.
  InvalidationPlan plan;
  fqTimerCheck(plan);
  for (auto r : ranges) {
    armSmmuTlbInvRangeDomain(plan, r.getIova(), r.getSize(), r.getGranule(), r.getLeaf());
  }
  return issue(kj::mv(plan)).then([](Issued issued) { return issued.commands; });
}

kj::Promise<DomainServer*> unwrap(Shared& shared, rpc::Domain::Client domain) {
  return shared.domains.getLocalServer(domain).then([domain](auto server) mutable -> DomainServer* {
    auto& s = KJ_REQUIRE_NONNULL(server, "a domain capability from another allocator");
    return &static_cast<DomainServer&>(s);
  });
}

}  // namespace nb::domains
