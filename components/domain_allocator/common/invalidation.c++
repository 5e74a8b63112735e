// Linux's invalidation for a domain's unmap (linux-invalidation-facts 1.4, 2, 4.3): each rule
// in one function, named after the Linux function it mirrors. The commands themselves (range
// form TG/TTL/NUM/SCALE with RIL, one per granule without: __arm_smmu_tlb_inv_range) are built
// by smmu_queue from each typed operation; these functions decide which operations, in which
// submissions (each ending in a CMD_SYNC), in which order.
//
// arm_smmu_atc_inv_domain sends nothing: no master enables ATS here (entries.h), as in Linux
// with nr_ats_masters = 0. Not modelled: the SVA notifier path, MMU-700's forced SYNC, E2H (EL2
// opcodes).

#include "components/domain_allocator/common/state.h"

#include <kj/debug.h>

namespace nb::domains {

namespace {

// IOVA_DEFAULT_FQ_SIZE: a per-CPU ring of 256 slots holds at most 255 entries (full when
// tail + 1 == head).
constexpr size_t FQ_CAPACITY = 256 - 1;
// IOVA_DEFAULT_FQ_TIMEOUT: 10 ms, in modeled nanoseconds.
constexpr uint64_t FQ_TIMEOUT_NS = 10'000'000;

}  // namespace

void InvalidationPlan::endSubmission() {
  if (ops.empty() || ops.back().op == rpc::HostOp::SYNC) {
    // A submission with no command is still a lone SYNC in Linux (batch_submit with n = 0),
    // but no rule here submits an empty batch.
    return;
  }
  ops.add(Inv{rpc::HostOp::SYNC});
  submissions++;
}

void DomainServer::armSmmuTlbInvRangeDomain(InvalidationPlan& plan, uint64_t iova,
                                            uint64_t size, uint64_t granule, bool leaf) {
  // arm_smmu_tlb_inv_range_domain (<= 7.0; facts 2.3) / arm_smmu_domain_inv_range (>= 7.1;
  // facts 2.5): the range as one batch + SYNC, then for a nest parent TLBI_NH_ALL of its VMID
  // + SYNC (6.13+: the guest's stage-1 entries cached through this stage 2).
  if (size == 0) return;
  auto& s = *shared;
  const bool stage1 = kind == rpc::DomainKind::STAGE1;
  leaf ? s.counters.leafFlushes++ : s.counters.walkFlushes++;
  // arm_smmu_inv_size_too_big (>= 7.1, facts 2.4): without RIL, a range of (granule / 8)
  // granules or more is one whole-ASID/VMID command; the nest parent's S1_CLEAR entry is then
  // skipped (S12_VMALL already removed the stage-1 entries of the VMID).
  if (s.kernel == KernelEra::K7_1 && !smmu->ril && granule != 0 &&
      size / granule >= granule / 8) {
    s.counters.wholeDomainFlushes++;
    plan.add(stage1 ? Inv{rpc::HostOp::TLBI_NH_ASID, 0, 0, asid, 0}
                    : Inv{rpc::HostOp::TLBI_S12_VMALL, 0, 0, 0, vmid});
    plan.endSubmission();
    return;
  }
  // __arm_smmu_tlb_inv_range: TLBI_NH_VA by ASID or TLBI_S2_IPA by VMID over the range.
  Inv op{stage1 ? rpc::HostOp::TLBI_NH_VA : rpc::HostOp::TLBI_S2_IPA};
  op.asid = stage1 ? asid : 0;
  op.vmid = stage1 ? 0 : vmid;
  op.addr = iova;
  op.size = size;
  op.granule = granule;
  op.pageSize = pageSize;
  op.leaf = leaf;
  plan.add(op);
  plan.endSubmission();
  if (nestParent && s.kernel != KernelEra::K6_12) {
    s.counters.nestParentFlushes++;
    plan.add(Inv{rpc::HostOp::TLBI_NH_ALL, 0, 0, 0, vmid});
    plan.endSubmission();
  }
}

void DomainServer::armSmmuTlbInvContext(InvalidationPlan& plan) {
  // arm_smmu_tlb_inv_context (flush_iotlb_all): TLBI_NH_ASID for stage 1, TLBI_S12_VMALL for
  // stage 2 (a nest parent too: it covers the VMID's stage-1 entries), each + SYNC.
  shared->counters.wholeDomainFlushes++;
  plan.add(kind == rpc::DomainKind::STAGE1 ? Inv{rpc::HostOp::TLBI_NH_ASID, 0, 0, asid, 0}
                                           : Inv{rpc::HostOp::TLBI_S12_VMALL, 0, 0, 0, vmid});
  plan.endSubmission();
}

void DomainServer::iommuIotlbSync(InvalidationPlan& plan, Gather& gather) {
  // iommu_iotlb_sync -> arm_smmu_iotlb_sync: nothing when nothing was gathered; otherwise the
  // gathered span as a leaf range with granule = the gather's page size.
  if (gather.pgsize == 0) return;
  armSmmuTlbInvRangeDomain(plan, gather.start, gather.end - gather.start + 1, gather.pgsize,
                           true);
  gather = Gather{};
}

void DomainServer::iommuIotlbGatherAddPage(InvalidationPlan& plan, Gather& gather,
                                           uint64_t iova, uint64_t size, uint64_t pgsize) {
  // iommu_iotlb_gather_add_page (facts 1.4) for a run of add_page(iova + k * pgsize, pgsize)
  // calls covering [iova, iova + size): a full sync of what is gathered first when the page
  // size differs or the run is disjoint from (neither touches nor overlaps) the gathered span;
  // then the span widens. Calls inside one run are adjacent and of one size, so they merge.
  const uint64_t end = iova + size - 1;
  const bool disjoint = gather.end != 0 && (end + 1 < gather.start || iova > gather.end + 1);
  if (gather.pgsize != 0 && (gather.pgsize != pgsize || disjoint)) {
    shared->counters.gatherEarlySyncs++;
    iommuIotlbSync(plan, gather);
  }
  gather.pgsize = pgsize;
  gather.start = kj::min(gather.start, iova);
  gather.end = kj::max(gather.end, end);
}

bool DomainServer::fqFlushTimeout(InvalidationPlan& plan, uint32_t& reclaimed) {
  // fq_flush_timeout: the armed timer fires: one fq_flush_iotlb (flush_iotlb_all), then every
  // entry queued before it is reclaimed (its IOVA may be reused from then on).
  reclaimed = 0;
  if (!fqTimerArmed) return false;
  fqTimerArmed = false;
  fqFlushStart++;
  armSmmuTlbInvContext(plan);
  fqFlushFinish++;
  shared->counters.fqTimeoutFlushes++;
  while (!fqEntries.empty() && fqEntries[0] < fqFlushFinish) {
    fqEntries.pop_front();
    shared->counters.fqPending--;
    reclaimed++;
  }
  return true;
}

void DomainServer::fqTimerCheck(InvalidationPlan& plan) {
  // The timer is a modeled-time deadline. nestbed has no modeled-time events, so it is noticed
  // at the domain's next map or unmap (or an explicit drain), and fires then, before that call's
  // own work: a DMA to a queued IOVA after the deadline with no call on the domain in between
  // still sees the old translation (docs/MODELED-TIME.md).
  if (!fqTimerArmed || shared->clock.now() < fqDeadlineNs) return;
  uint32_t reclaimed = 0;
  fqFlushTimeout(plan, reclaimed);
}

void DomainServer::queueIova(InvalidationPlan& plan) {
  // queue_iova (facts 4.3): reclaim what a completed flush covers; if the ring is still full,
  // flush synchronously (fq_flush_iotlb) and reclaim again; queue one entry stamped with the
  // flush-start count; arm the timer unless it is armed (later entries do not push it back).
  auto& c = shared->counters;
  auto reclaim = [&]() {
    while (!fqEntries.empty() && fqEntries[0] < fqFlushFinish) {
      fqEntries.pop_front();
      c.fqPending--;
    }
  };
  reclaim();
  if (fqEntries.size() >= FQ_CAPACITY) {
    fqFlushStart++;
    armSmmuTlbInvContext(plan);
    fqFlushFinish++;
    c.fqFullFlushes++;
    reclaim();
  }
  fqEntries.push_back(fqFlushStart);
  c.fqQueued++;
  c.fqPending++;
  if (!fqTimerArmed) fqDeadlineNs = shared->clock.now() + FQ_TIMEOUT_NS;
  fqTimerArmed = true;
}

void DomainServer::replayUnmap(InvalidationPlan& plan,
                               capnp::List<rpc::Invalidation>::Reader list, uint32_t rangesDone) {
  // __iommu_dma_unmap / iommu_unmap for each range in turn: io-pgtable-arm's callbacks as the
  // page table returned them — tlb_flush_walk at once, tlb_add_page into the gather (skipped
  // when the gather is queued: a flush-queue domain) — then the range's final iotlb_sync
  // (strict) or its flush-queue entry (lazy).
  size_t next = 0;
  fqTimerCheck(plan);
  for (uint32_t range = 0; range < rangesDone; range++) {
    Gather gather;
    for (; next < list.size() && list[next].getRange() == range; next++) {
      auto inv = list[next];
      if (!inv.getLeaf()) {
        armSmmuTlbInvRangeDomain(plan, inv.getIova(), inv.getSize(), inv.getGranule(), false);
      } else if (!flushQueue) {
        iommuIotlbGatherAddPage(plan, gather, inv.getIova(), inv.getSize(), inv.getGranule());
      }
    }
    if (flushQueue) {
      queueIova(plan);
    } else {
      iommuIotlbSync(plan, gather);
    }
  }
}

kj::Promise<DomainServer::Issued> DomainServer::issue(InvalidationPlan plan) {
  if (plan.ops.empty()) return Issued{};
  auto& s = *shared;
  // The last submission's SYNC is the one smmu_queue appends.
  if (plan.ops.back().op == rpc::HostOp::SYNC) plan.ops.removeLast();
  const uint32_t explicitSyncs = plan.submissions - 1;
  return s.invalidate(*smmu, kj::mv(plan.ops)).then([this, explicitSyncs](uint32_t executed) {
    Issued out;
    out.commands = executed - explicitSyncs;
    out.syncs = explicitSyncs + 1;
    shared->counters.tlbiCommands += out.commands;
    return out;
  });
}

}  // namespace nb::domains
