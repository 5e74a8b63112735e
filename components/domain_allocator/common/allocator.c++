// The DomainAllocator capability: allocation by policy, installing domains on devices (RID and
// PASIDs) with the STE/CD recipes and the hitless sequence, and the factory.
//
// Changes to one device are queued behind each other (Master::tail): each is several
// invalidations through smmu_queue, and the next must start from the entry the last one left.

#include "components/domain_allocator/common/allocator.h"

#include "components/domain_allocator/common/state.h"
#include "interfaces/pci.capnp.h"

#include <kj/debug.h>
#include <toml++/toml.h>

namespace nb::domains {

namespace {

namespace cdl = smmuv3::cd;

Result fail(Errno e, kj::String message) { return Result{e, kj::mv(message)}; }

kj::StringPtr kindName(rpc::DomainKind k) {
  switch (k) {
    case rpc::DomainKind::BLOCKED: return "blocked";
    case rpc::DomainKind::IDENTITY: return "identity";
    case rpc::DomainKind::STAGE1: return "stage1";
    case rpc::DomainKind::STAGE2: return "stage2";
    case rpc::DomainKind::NESTED: return "nested";
  }
  return "unknown";
}

kj::Promise<Result> serialized(Master& m, kj::Function<kj::Promise<Result>()> op) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  auto previous = kj::mv(m.tail);
  m.tail = paf.promise.fork();
  return previous.addBranch()
      .then([op = kj::mv(op)]() mutable { return op(); })
      .attach(kj::defer([f = kj::mv(paf.fulfiller)]() mutable { f->fulfill(); }));
}

// The STE a master needs: its RID domain's, in CD-table form while PASIDs are in use.
Ste targetSte(Master& m, kj::Maybe<DomainServer&> rid) {
  auto options = m.smmu->steOptions();
  auto kind = rpc::DomainKind::BLOCKED;  // nothing installed yet behaves as blocked
  KJ_IF_MAYBE(r, rid) { kind = r->kind; }
  auto cdTable = [&](S1Dss dss) {
    auto& t = KJ_ASSERT_NONNULL(m.cdTable, "a CD-table STE without a CD table", m.bdf);
    return makeCdTableSte(t.pa, t.format, t.s1CdMax, dss, options);
  };
  bool pasids = m.pasids.size() != 0;
  switch (kind) {
    case rpc::DomainKind::STAGE1: return cdTable(S1Dss::SSID0);
    case rpc::DomainKind::BLOCKED: return pasids ? cdTable(S1Dss::TERMINATE) : makeAbortSte();
    case rpc::DomainKind::IDENTITY: return pasids ? cdTable(S1Dss::BYPASS) : makeBypassSte(options);
    case rpc::DomainKind::STAGE2:
    case rpc::DomainKind::NESTED: return KJ_ASSERT_NONNULL(rid).steFor(m);
  }
  KJ_UNREACHABLE;
}

kj::Maybe<DomainServer&> ridDomain(Master& m) {
  KJ_IF_MAYBE(h, m.domain) { return *h->server; }
  return nullptr;
}

class AllocatorServer final : public rpc::DomainAllocator::Server, public ComponentCore {
public:
  explicit AllocatorServer(kj::Own<Shared> shared) : s_(kj::mv(shared)) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    auto& c = s_->counters;
    auto add = [&](kj::StringPtr name, uint64_t v) { out.add(Stat{kj::heapString(name), v}); };
    add("domains_live", s_->liveDomains);
    for (auto k : {rpc::DomainKind::STAGE1, rpc::DomainKind::STAGE2, rpc::DomainKind::NESTED}) {
      out.add(Stat{kj::str("domains_allocated_", kindName(k)), c.domainsAllocated[uint(k)]});
    }
    add("alloc_errors", c.allocErrors);
    add("vste_rejected", c.vsteRejected);
    uint64_t asids = 0, vmids = 0;
    for (auto& smmu : s_->smmus) {
      asids += smmu->asids.live();
      vmids += smmu->vmids.live();
    }
    add("asids_live", asids);
    add("vmids_live", vmids);
    add("attaches", c.attaches);
    add("attach_errors", c.attachErrors);
    add("pasid_sets", c.pasidSets);
    add("pasid_errors", c.pasidErrors);
    add("updates_none", c.updates[uint(UpdateKind::NONE)]);
    add("updates_direct", c.updates[uint(UpdateKind::DIRECT)]);
    add("updates_hitless", c.updates[uint(UpdateKind::HITLESS)]);
    add("updates_breaking", c.updates[uint(UpdateKind::BREAKING)]);
    add("qword_stores", c.qwordStores);
    add("cfgi_ste", c.cfgiSte);
    add("cfgi_cd", c.cfgiCd);
    add("syncs", c.syncs);
    add("invalidate_calls", c.invalidateCalls);
    add("tlbi_commands", c.tlbiCommands);
    add("whole_domain_flushes", c.wholeDomainFlushes);
    add("walk_flushes", c.walkFlushes);
    add("leaf_flushes", c.leafFlushes);
    add("gather_early_syncs", c.gatherEarlySyncs);
    add("nest_parent_flushes", c.nestParentFlushes);
    add("fq_queued", c.fqQueued);
    add("fq_pending", c.fqPending);
    add("fq_full_flushes", c.fqFullFlushes);
    add("fq_timeout_flushes", c.fqTimeoutFlushes);
    add("map_calls", c.mapCalls);
    add("unmap_calls", c.unmapCalls);
    add("bytes_mapped", c.bytesMapped);
    add("bytes_unmapped", c.bytesUnmapped);
    add("l2_stream_tables", c.l2StreamTables);
    add("cd_tables", c.cdTables);
    add("cd_leaves", c.cdLeaves);
    add("frames_bytes", c.framesBytes);
    add("masters", s_->masters.size());
    add("shared_stream_ids", c.sharedStreamIds);
    add("task_failures", c.taskFailures);
  }

  void structures(kj::Vector<StructureInfo>& out) override {
    for (auto& smmu : s_->smmus) {
      for (auto& e : smmu->l2Tables) {
        out.add(StructureInfo{kj::str("stream_table_l2"), kj::str(smmu->name, " span ", e.key),
                              e.value, uint64_t(smmuv3::ste::STE_BYTES) << smmu->split,
                              kj::str("StreamIDs ", uint64_t(e.key) << smmu->split, "..",
                                      ((uint64_t(e.key) + 1) << smmu->split) - 1)});
      }
    }
    for (auto& m : s_->masters) {
      KJ_IF_MAYBE(t, m->cdTable) {
        out.add(
            StructureInfo{kj::str("cd_table"), kj::heapString(m->bdf), t->pa, t->bytes,
                          kj::str(t->format == CdTableFormat::LINEAR ? "linear" : "two-level 64K",
                                  " S1CDMax=", t->s1CdMax)});
        for (auto& leaf : t->leaves) {
          out.add(StructureInfo{kj::str("cd_leaf"), kj::str(m->bdf, " leaf ", leaf.key), leaf.value,
                                uint64_t(cdl::CD_BYTES) * cdl::CTXDESC_L2_ENTRIES,
                                kj::str("SSIDs ", leaf.key * cdl::CTXDESC_L2_ENTRIES, "..")});
        }
      }
    }
  }

  kj::Promise<void> shutdown() override {
    s_->shutdown();
    return s_->tasks.onEmpty().then([this]() { s_->stopped = true; });
  }

  // implements DomainAllocator -----------------------------------------------------------------
protected:
  kj::Promise<void> allocPaging(AllocPagingContext context) override {
    auto params = context.getParams();
    auto flags = params.getFlags();
    Smmu* smmu = nullptr;
    KJ_SWITCH_ONEOF(resolve(params.getTarget())) {
      KJ_CASE_ONEOF(r, Result) { return refuse(context, kj::mv(r)); }
      KJ_CASE_ONEOF(found, Smmu*) { smmu = found; }
    }
    bool nestParent = flags.getNestParent(), dirty = flags.getDirtyTracking(),
         pasid = flags.getPasid();
    // arm_smmu_domain_alloc_paging_flags (facts 5.2).
    if (dirty && nestParent) {
      return refuse(context,
                    fail(Errno::E_OP_NOT_SUPP, kj::str("DIRTY_TRACKING with NEST_PARENT")));
    }
    bool stage2 = nestParent || (!dirty && !pasid && !smmu->stage1);
    if (stage2) {
      if (!smmu->stage2)
        return refuse(context, fail(Errno::E_OP_NOT_SUPP, kj::str(smmu->name, " has no stage 2")));
      if (nestParent && !smmu->nesting) {
        return refuse(context, fail(Errno::E_OP_NOT_SUPP, kj::str(smmu->name, " cannot nest")));
      }
    } else {
      if (!smmu->stage1)
        return refuse(context, fail(Errno::E_OP_NOT_SUPP, kj::str(smmu->name, " has no stage 1")));
      if (dirty && !smmu->httuDirty) {
        return refuse(context,
                      fail(Errno::E_OP_NOT_SUPP, kj::str(smmu->name, " has no HTTU dirty state")));
      }
    }
    auto& ids = stage2 ? smmu->vmids : smmu->asids;
    uint32_t id;
    KJ_IF_MAYBE(i, ids.alloc()) {
      id = *i;
    } else {
      return refuse(context, fail(Errno::E_NO_SPC,
                                  kj::str(smmu->name, ": no free ", stage2 ? "VMID" : "ASID")));
    }

    auto req = s_->pageTables.createRequest();
    auto config = req.initConfig();
    config.setFormat(stage2 ? rpc::Format::STAGE2 : rpc::Format::STAGE1);
    config.setGranule(granuleFor(*smmu));
    // Facts 5.2: stage 1 IAS 48 (no VAX), OAS the SMMU's; stage 2 IAS = OAS = the SMMU's.
    config.setIas(stage2 ? smmu->oas : 48);
    config.setOas(smmu->oas);
    config.setDirtyTracking(dirty);
    // IOMMU_DOMAIN_DMA_FQ or IOMMU_DOMAIN_DMA (facts 4.1): the flag, else the setting; a nest
    // parent (an iommufd domain, never a DMA-API one) is strict.
    const auto type = flags.getType();
    const bool fq = !nestParent && (type == rpc::DmaDomainType::DMA_FQ ||
                                    (type == rpc::DmaDomainType::FROM_SETTING && s_->defaultFq));
    return req.send().then([this, context, smmu, stage2, id, nestParent, dirty, fq](
                               auto r) mutable {
      auto results = context.getResults();
      if (r.getErrno() != Errno::OK) {
        (stage2 ? smmu->vmids : smmu->asids).free(id);
        s_->counters.allocErrors++;
        results.setErrno(r.getErrno());
        results.setMessage(kj::str("page_table refused the table"));
        return;
      }
      auto d = kj::heap<DomainServer>(
          kj::addRef(*s_), stage2 ? rpc::DomainKind::STAGE2 : rpc::DomainKind::STAGE1, smmu);
      if (stage2)
        d->vmid = uint16_t(id);
      else
        d->asid = uint16_t(id);
      d->nestParent = nestParent;
      d->dirtyTracking = dirty;
      d->flushQueue = fq;
      d->table = r.getTable();
      d->tableInfo.setRoot(r.getInfo());
      d->hasTable = true;
      uint64_t bitmap = r.getInfo().getPgsizeBitmap();
      d->pageSize = bitmap & (~bitmap + 1);
      if (nestParent) smmu->nestParents.insert(uint16_t(id), d.get());
      results.setDomain(s_->domains.add(kj::mv(d)));
    });
  }

  kj::Promise<void> allocIdentity(AllocIdentityContext context) override {
    context.getResults().setDomain(KJ_ASSERT_NONNULL(s_->identity, "allocator is shut down"));
    return kj::READY_NOW;
  }

  kj::Promise<void> allocBlocked(AllocBlockedContext context) override {
    context.getResults().setDomain(KJ_ASSERT_NONNULL(s_->blocked, "allocator is shut down"));
    return kj::READY_NOW;
  }

  kj::Promise<void> allocNested(AllocNestedContext context) override {
    auto params = context.getParams();
    auto words = params.getVste();
    if (words.size() != 2) {
      return refuse(context, fail(Errno::E_INVAL,
                                  kj::str("a vSTE is 2 qwords (dw0, dw1), not ", words.size())));
    }
    ValidVste vste{0, 0, VsteConfig::ABORT, false};
    KJ_SWITCH_ONEOF(validateVste(words[0], words[1])) {
      KJ_CASE_ONEOF(e, VsteError) {
        s_->counters.vsteRejected++;
        return refuse(context, fail(Errno::E_IO, kj::mv(e.message)));
      }
      KJ_CASE_ONEOF(v, ValidVste) { vste = v; }
    }
    auto viommu = params.getViommu();
    return viommu.infoRequest().send().then([this, context, viommu, vste](auto r) mutable {
      auto info = r.getInfo();
      auto results = context.getResults();
      Smmu* smmu = nullptr;
      KJ_IF_MAYBE(found, s_->findSmmu(info.getSmmu())) { smmu = &*found; }
      if (smmu == nullptr) {
        s_->counters.allocErrors++;
        results.setErrno(Errno::E_INVAL);
        results.setMessage(
            kj::str("the vIOMMU is on ", info.getSmmu(), ", which this allocator does not drive"));
        return;
      }
      DomainServer* parent = nullptr;
      KJ_IF_MAYBE(p, smmu->nestParents.find(info.getVmid())) { parent = *p; }
      if (parent == nullptr) {
        s_->counters.allocErrors++;
        results.setErrno(Errno::E_INVAL);
        results.setMessage(
            kj::str("no nest-parent domain of this allocator has VMID ", info.getVmid()));
        return;
      }
      auto d = kj::heap<DomainServer>(kj::addRef(*s_), rpc::DomainKind::NESTED, smmu);
      d->vmid = info.getVmid();
      d->parent = Hold(parent->self(), parent);
      d->viommu = kj::mv(viommu);
      d->vste = vste;
      results.setDomain(s_->domains.add(kj::mv(d)));
    });
  }

  kj::Promise<void> attachDevice(AttachDeviceContext context) override {
    s_->counters.attaches++;
    auto params = context.getParams();
    auto device = params.getDevice();
    Master* m = nullptr;
    KJ_SWITCH_ONEOF(master(device)) {
      KJ_CASE_ONEOF(r, Result) { return failed(context, kj::mv(r), s_->counters.attachErrors); }
      KJ_CASE_ONEOF(found, Master*) { m = found; }
    }
    auto cap = params.getDomain();
    return unwrap(*s_, cap)
        .then([this, m, cap](DomainServer* d) mutable {
          return serialized(*m,
                            [this, m, d, cap]() mutable { return attach(*m, *d, kj::mv(cap)); });
        })
        .then([this, context](Result r) mutable {
          if (r.errno_ != Errno::OK) s_->counters.attachErrors++;
          done(context, kj::mv(r));
        });
  }

  kj::Promise<void> setPasid(SetPasidContext context) override {
    s_->counters.pasidSets++;
    auto params = context.getParams();
    Master* m = nullptr;
    KJ_SWITCH_ONEOF(master(params.getDevice())) {
      KJ_CASE_ONEOF(r, Result) { return failed(context, kj::mv(r), s_->counters.pasidErrors); }
      KJ_CASE_ONEOF(found, Master*) { m = found; }
    }
    uint32_t pasid = params.getPasid();
    auto cap = params.getDomain();
    return unwrap(*s_, cap)
        .then([this, m, cap, pasid](DomainServer* d) mutable {
          return serialized(*m, [this, m, d, cap, pasid]() mutable {
            return setDevicePasid(*m, pasid, *d, kj::mv(cap));
          });
        })
        .then([this, context](Result r) mutable {
          if (r.errno_ != Errno::OK) s_->counters.pasidErrors++;
          done(context, kj::mv(r));
        });
  }

  kj::Promise<void> masters(MastersContext context) override {
    auto list = context.getResults().initMasters(s_->masters.size());
    for (auto i : kj::indices(s_->masters)) {
      auto& m = *s_->masters[i];
      auto out = list[i];
      out.setDevice(m.bdf);
      out.setSmmu(m.smmu->name);
      auto sids = out.initStreamIds(m.sids.size());
      for (auto k : kj::indices(m.sids)) sids.set(k, m.sids[k]);
      out.setSsidBits(m.ssidBits);
      KJ_IF_MAYBE(d, m.domain) { out.setDomain(d->server->id); }
      auto pasids = out.initPasids(m.pasids.size());
      size_t k = 0;
      for (auto& e : m.pasids) {
        pasids[k].setPasid(e.key);
        pasids[k].setDomain(e.value.server->id);
        k++;
      }
      KJ_IF_MAYBE(t, m.cdTable) { out.setCdTable(t->pa); }
      auto ste = out.initSte(8);
      if (!m.owned.empty()) {
        uint64_t pa = s_->stePa(*m.smmu, m.owned[0]);
        for (unsigned q = 0; q < 8; q++) ste.set(q, s_->mem.load64(pa + q * 8));
      } else {
        for (unsigned q = 0; q < 8; q++) ste.set(q, m.ste.dw[q]);
      }
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    auto results = context.getResults();
    results.setPolicy(s_->policy);
    auto names = results.initSmmus(s_->smmus.size());
    for (auto i : kj::indices(s_->smmus)) names.set(i, s_->smmus[i]->name);
    results.setDomains(s_->liveDomains);
    return kj::READY_NOW;
  }

private:
  // ---- allocation policy: which SMMU a domain is finalised for

  kj::OneOf<Smmu*, Result> resolve(rpc::AllocTarget::Reader target) {
    bool groupCentric = s_->policy == rpc::Policy::GROUP_CENTRIC;
    switch (target.which()) {
      case rpc::AllocTarget::DEVICE: {
        KJ_SWITCH_ONEOF(master(target.getDevice())) {
          KJ_CASE_ONEOF(r, Result) { return kj::mv(r); }
          KJ_CASE_ONEOF(m, Master*) { return m->smmu; }
        }
        KJ_UNREACHABLE;
      }
      case rpc::AllocTarget::GROUP: {
        if (!groupCentric) {
          return fail(Errno::E_INVAL,
                      kj::str("device_centric: name the device (or the SMMU), not a group"));
        }
        auto group = target.getGroup();
        if (group.size() == 0) return fail(Errno::E_INVAL, kj::str("an empty group"));
        // __iommu_group_domain_alloc: the group's first device decides.
        KJ_SWITCH_ONEOF(master(group[0])) {
          KJ_CASE_ONEOF(r, Result) { return kj::mv(r); }
          KJ_CASE_ONEOF(m, Master*) { return m->smmu; }
        }
        KJ_UNREACHABLE;
      }
      case rpc::AllocTarget::BUS:
        if (!groupCentric) {
          return fail(Errno::E_INVAL,
                      kj::str("device_centric: name the device (or the SMMU), not the bus"));
        }
        // iommu_domain_alloc(bus): the first device on the bus decides.
        if (s_->masters.empty()) return fail(Errno::E_NO_DEV, kj::str("no device on the bus"));
        return s_->masters[0]->smmu;
      case rpc::AllocTarget::SMMU:
        KJ_IF_MAYBE(smmu, s_->findSmmu(target.getSmmu())) { return &*smmu; }
        return fail(Errno::E_NO_DEV, kj::str("no SMMU instance named '", target.getSmmu(), "'"));
    }
    return fail(Errno::E_INVAL, kj::str("unknown allocation target"));
  }

  kj::OneOf<Master*, Result> master(kj::StringPtr bdf) {
    KJ_IF_MAYBE(m, s_->findMaster(bdf)) { return &*m; }
    if (s_->ambiguous(bdf)) {
      return fail(Errno::E_INVAL,
                  kj::str("'", bdf, "' is on several PCI segments: give ssss:bb:dd.f"));
    }
    return fail(Errno::E_NO_DEV, kj::str("no device '", bdf, "'"));
  }

  rpc::Granule granuleFor(Smmu& smmu) {
    bool has[3] = {smmu.gran4k, smmu.gran16k, smmu.gran64k};
    if (has[uint(s_->granule)]) return s_->granule;
    for (unsigned g = 0; g < 3; g++) {
      if (has[g]) return rpc::Granule(g);
    }
    return rpc::Granule::SIZE4K;
  }

  // ---- installing

  kj::Promise<Result> attach(Master& m, DomainServer& d, rpc::Domain::Client cap) {
    KJ_IF_MAYBE(current, ridDomain(m)) {
      if (&*current == &d) return Result{};
    }
    if (d.smmu != nullptr && d.smmu != m.smmu) {
      return fail(Errno::E_INVAL, kj::str("domain ", d.id, " was finalised for ", d.smmu->name,
                                          "; ", m.bdf, " is behind ", m.smmu->name));
    }
    bool translatesStage2 = d.kind == rpc::DomainKind::STAGE2 || d.kind == rpc::DomainKind::NESTED;
    if (translatesStage2 && m.pasids.size() != 0) {
      return fail(Errno::E_BUSY,
                  kj::str(m.bdf, " has PASIDs in use: no ", kindName(d.kind), " domain"));
    }
    kj::Promise<Result> checked = Result{};
    if (d.kind == rpc::DomainKind::NESTED && d.vste.config == VsteConfig::S1_TRANS) {
      // A translating nested attach needs a vDEVICE: faults are forwarded with the vSID.
      auto& viommu = KJ_ASSERT_NONNULL(d.viommu);
      checked = viommu.infoRequest().send().then([&m](auto r) {
        for (auto v : r.getInfo().getVdevices()) {
          for (auto sid : m.sids) {
            if (v.getSid() == sid) return Result{};
          }
        }
        return fail(Errno::E_NO_ENT,
                    kj::str(m.bdf, " has no vDEVICE on the nested domain's vIOMMU"));
      });
    }
    return checked.then([this, &m, &d, cap = kj::mv(cap)](Result r) mutable -> kj::Promise<Result> {
      if (r.errno_ != Errno::OK) return kj::mv(r);
      kj::Promise<void> prepared = kj::READY_NOW;
      if (d.kind == rpc::DomainKind::STAGE1) {
        // The CD first: the STE that makes it reachable comes after.
        prepared =
            s_->ensureCdTable(m).then([this, &m, &d]() { return s_->writeCd(m, 0, d.cd()); });
      }
      return prepared.then([this, &m, &d]() { return s_->writeSte(m, targetSte(m, d)); })
          .then([this, &m, &d]() -> kj::Promise<void> {
            // Leaving stage 1: CD 0 is no longer reachable through the STE; clear it.
            KJ_IF_MAYBE(old, ridDomain(m)) {
              if (old->kind == rpc::DomainKind::STAGE1 && d.kind != rpc::DomainKind::STAGE1) {
                return s_->writeCd(m, 0, Cd{});
              }
            }
            return kj::READY_NOW;
          })
          .then([&m, &d, cap = kj::mv(cap)]() mutable {
            KJ_IF_MAYBE(old, m.domain) { old->server->detach(m, nullptr); }
            m.domain = Hold(kj::mv(cap), &d);  // drops the old hold: the old domain may end here
            d.attachments.add(DomainServer::Attachment{&m, nullptr});
            return Result{};
          });
    });
  }

  kj::Promise<Result> setDevicePasid(Master& m, uint32_t pasid, DomainServer& d,
                                     rpc::Domain::Client cap) {
    if (d.kind == rpc::DomainKind::BLOCKED) {
      // Detach: the CD cleared; with no PASID left the STE returns to its plain form.
      if (m.pasids.find(pasid) == nullptr) return Result{};
      return s_->writeCd(m, pasid, Cd{})
          .then([this, &m, pasid]() {
            KJ_IF_MAYBE(old, m.pasids.find(pasid)) { old->server->detach(m, pasid); }
            m.pasids.erase(pasid);
            return s_->writeSte(m, targetSte(m, ridDomain(m)));
          })
          .then([]() { return Result{}; });
    }
    if (d.kind != rpc::DomainKind::STAGE1) {
      return fail(Errno::E_INVAL,
                  kj::str("a PASID takes a stage-1 domain, not ", kindName(d.kind)));
    }
    if (d.smmu != m.smmu) {
      return fail(Errno::E_INVAL, kj::str("domain ", d.id, " was finalised for ", d.smmu->name,
                                          "; ", m.bdf, " is behind ", m.smmu->name));
    }
    if (pasid == 0 || m.ssidBits == 0 || pasid >= (uint64_t(1) << m.ssidBits)) {
      return fail(Errno::E_INVAL, kj::str("pasid ", pasid, " outside 1..",
                                          (uint64_t(1) << m.ssidBits) - 1, " for ", m.bdf));
    }
    KJ_IF_MAYBE(rid, ridDomain(m)) {
      if (rid->kind == rpc::DomainKind::STAGE2 || rid->kind == rpc::DomainKind::NESTED) {
        return fail(Errno::E_INVAL, kj::str(m.bdf, "'s RID domain is ", kindName(rid->kind),
                                            ": no CD table for PASIDs"));
      }
    }
    KJ_IF_MAYBE(current, m.pasids.find(pasid)) {
      if (current->server == &d) return Result{};
    }
    return s_->ensureCdTable(m)
        .then([this, &m, &d, pasid]() { return s_->writeCd(m, pasid, d.cd()); })
        .then([this, &m, &d, pasid, cap = kj::mv(cap)]() mutable {
          KJ_IF_MAYBE(old, m.pasids.find(pasid)) { old->server->detach(m, pasid); }
          m.pasids.upsert(pasid, Hold(kj::mv(cap), &d), [](Hold& a, Hold&& b) { a = kj::mv(b); });
          d.attachments.add(DomainServer::Attachment{&m, pasid});
          // The STE now points at the CD table (S1DSS by the RID domain), if it did not yet.
          return s_->writeSte(m, targetSte(m, ridDomain(m)));
        })
        .then([]() { return Result{}; });
  }

  template <typename Context>
  kj::Promise<void> refuse(Context& context, Result r) {
    s_->counters.allocErrors++;
    done(context, kj::mv(r));
    return kj::READY_NOW;
  }

  template <typename Context>
  kj::Promise<void> failed(Context& context, Result r, uint64_t& counter) {
    counter++;
    done(context, kj::mv(r));
    return kj::READY_NOW;
  }

  template <typename Context>
  static void done(Context& context, Result r) {
    auto results = context.getResults();
    results.setErrno(r.errno_);
    if (r.message.size() > 0) results.setMessage(r.message);
  }

  kj::Own<Shared> s_;
};

// ======================================================================================
// Start

const kj::StringPtr GRANULES[] = {"4K", "16K", "64K"};
const kj::StringPtr KERNELS[] = {"6.12", "6.18", "7.1"};
const kj::StringPtr DOMAIN_TYPES[] = {"dma", "dma_fq"};

void checkPasidBits(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && (*v < 0 || *v > 20)) errors.error(value, "", kj::str("must be between 0 and 20"));
}

kj::Own<Smmu> smmuFrom(rpc::SmmuQueue::Client queue, rpc::QueueInfo::Reader info) {
  auto f = info.getFeatures();
  auto smmu = kj::heap<Smmu>(kj::heapString(info.getSmmu()), kj::mv(queue),
                             f.getAsid16() ? 0xffff : 0xff, f.getVmid16() ? 0xffff : 0xff);
  smmu->stage1 = f.getStage1();
  smmu->stage2 = f.getStage2();
  smmu->nesting = f.getNesting();
  smmu->ril = f.getRil();
  smmu->httuDirty = f.getHttu() == rpc::Httu::ACCESS_DIRTY;
  smmu->attrTypesOvr = f.getAttrTypesOvr();
  smmu->cd2l = f.getCd2l();
  smmu->gran4k = f.getGran4k();
  smmu->gran16k = f.getGran16k();
  smmu->gran64k = f.getGran64k();
  smmu->ssidBits = f.getSsidBits();
  smmu->oas = f.getOas();
  auto st = info.getStreamTable();
  smmu->strtab = st.getPa();
  smmu->log2Size = st.getLog2Size();
  smmu->twoLevel = st.getTwoLevel();
  smmu->split = st.getSplit();
  return smmu;
}

}  // namespace

kj::Promise<rpc::Component::Client> makeDomainAllocator(ComponentContext& ctx, rpc::Policy policy) {
  auto granuleName = ctx.settings.string("granule", "4K");
  auto granule = granuleName == "64K"   ? rpc::Granule::SIZE64K
                 : granuleName == "16K" ? rpc::Granule::SIZE16K
                                        : rpc::Granule::SIZE4K;
  auto kernelName = ctx.settings.string("kernel", "6.18");
  KernelEra kernel = kernelName == "6.12"  ? KernelEra::K6_12
                     : kernelName == "7.1" ? KernelEra::K7_1
                                           : KernelEra::K6_18;
  auto shared =
      kj::refcounted<Shared>(ctx.mem, ctx.frames, ctx.use<rpc::PageTableEngine>("page_table"),
                             policy, granule, uint8_t(ctx.settings.integer("pasid_bits", 20)),
                             kernel, ctx.settings.string("default_domain_type", "dma") == "dma_fq",
                             ctx.clock);
  kj::StringPtr typeName = ctx.type.name;

  using Info = capnp::Response<rpc::SmmuQueue::InfoResults>;
  using Devices = capnp::Response<rpc::PciTopology::DevicesResults>;
  auto queues = ctx.useList<rpc::SmmuQueue>("queues");
  auto infos = KJ_MAP(q, queues)->kj::Promise<Info> { return q.infoRequest().send(); };
  auto topologies = ctx.useList<rpc::PciTopology>("pci");
  auto devices = KJ_MAP(t, topologies)->kj::Promise<Devices> { return t.devicesRequest().send(); };

  auto& s = *shared;
  return kj::joinPromises(kj::mv(infos))
      .then([&s, queues = kj::mv(queues),
             devices = kj::mv(devices)](kj::Array<Info> infos) mutable {
        for (auto i : kj::indices(infos)) {
          auto name = infos[i].getInfo().getSmmu();
          KJ_REQUIRE(s.findSmmu(name) == nullptr, "two smmu_queue instances drive one SMMU", name);
          s.smmus.add(smmuFrom(queues[i], infos[i].getInfo()));
        }
        return kj::joinPromises(kj::mv(devices));
      })
      .then([&s](kj::Array<Devices> lists) {
        // Masters: every function, with every StreamID its DMA can carry (Linux's fwspec IDs
        // from pci_for_each_dma_alias). A StreamID two functions share is written by the first.
        kj::HashMap<kj::String, bool> taken;
        for (auto& list : lists) {
          for (auto d : list.getDevices()) {
            auto m = kj::heap<Master>();
            m->bdf = kj::heapString(d.getBdf());
            m->segment = d.getSegment();
            m->rid = d.getRid();
            m->endpoint = d.getKind() == rpc::PciKind::ENDPOINT;
            KJ_IF_MAYBE(smmu, s.findSmmu(d.getSmmuName())) {
              m->smmu = &*smmu;
            } else {
              KJ_FAIL_REQUIRE("no smmu_queue wired to `queues` drives this device's SMMU", m->bdf,
                              d.getSmmuName());
            }
            auto add = [&](uint32_t sid) {
              for (auto x : m->sids)
                if (x == sid) return;
              m->sids.add(sid);
              auto key = kj::str(m->smmu->name, "/", sid);
              if (taken.find(key) != nullptr) {
                s.counters.sharedStreamIds++;
                return;
              }
              taken.insert(kj::mv(key), true);
              m->owned.add(sid);
            };
            add(d.getStreamId());
            add(d.getDmaStreamId());
            for (auto a : d.getAliases()) add(a.getStreamId());
            uint8_t bits = kj::min(m->smmu->ssidBits, s.pasidBits);
            if (!m->smmu->cd2l) bits = kj::min(bits, uint8_t(cdl::CTXDESC_LINEAR_CDMAX));
            m->ssidBits = m->endpoint ? bits : 0;
            s.masters.add(kj::mv(m));
          }
        }
        kj::Promise<void> chain = kj::READY_NOW;
        for (auto& smmu : s.smmus) {
          chain = chain.then([&s, &smmu = *smmu]() { return s.setUpStreamTable(smmu); });
        }
        return chain;
      })
      .then([shared = kj::mv(shared), typeName]() mutable {
        auto& s = *shared;
        s.identity = s.domains.add(
            kj::heap<DomainServer>(kj::addRef(s), rpc::DomainKind::IDENTITY, nullptr));
        s.blocked =
            s.domains.add(kj::heap<DomainServer>(kj::addRef(s), rpc::DomainKind::BLOCKED, nullptr));
        auto server = kj::heap<AllocatorServer>(kj::mv(shared));
        auto& core = *server;
        rpc::DomainAllocator::Client main = kj::mv(server);
        return makeComponent(typeName, capnp::typeId<rpc::DomainAllocator>(), kj::mv(main), core);
      });
}

ComponentType domainAllocatorType(
    kj::StringPtr name, kj::StringPtr doc,
    kj::Promise<rpc::Component::Client> (*factory)(ComponentContext&)) {
  return ComponentType{
      name,
      doc,
      capnp::Schema::from<rpc::DomainAllocator>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"granule", SettingType::CHOICE, false, GRANULES,
                      "paging domains' translation granule: \"4K\" (default), \"16K\", \"64K\" "
                      "(the smallest the SMMU has when it lacks it)"},
          SettingSpec{"pasid_bits", SettingType::INTEGER, false, nullptr,
                      "PASID width of the endpoints, 0..20 (default 20; SSIDs = min(SSIDSIZE, "
                      "pasid_bits))",
                      checkPasidBits},
          SettingSpec{"kernel", SettingType::CHOICE, false, KERNELS,
                      "whose invalidation rules: \"6.18\" (default: 6.13 .. 7.0, no threshold), "
                      "\"6.12\" (no nest-parent TLBI_NH_ALL; pair with page_table partial_unmap "
                      "= \"split\") or \"7.1\" (without RIL, a large range becomes a "
                      "whole-ASID/VMID flush)"},
          SettingSpec{"default_domain_type", SettingType::CHOICE, false, DOMAIN_TYPES,
                      "paging domains' invalidation when allocation does not say: \"dma\" "
                      "(strict, arm64's Kconfig default, iommu.strict=1) or \"dma_fq\" (lazy, "
                      "a flush queue of 256, iommu.strict=0)"},
      }),
      kj::heapArray<RoleSpec>({
          RoleSpec{"queues", capnp::Schema::from<rpc::SmmuQueue>(), true,
                   "the smmu_queue of every SMMU instance, one each", true},
          RoleSpec{"pci", capnp::Schema::from<rpc::PciTopology>(), true,
                   "the PCIe topologies (hw/pci) whose devices it installs domains on", true},
          RoleSpec{"page_table", capnp::Schema::from<rpc::PageTableEngine>(), true,
                   "the io page table engine"},
      }),
      factory};
}

}  // namespace nb::domains
