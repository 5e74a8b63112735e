// The allocator's memory side: frames, level-2 stream tables, CD tables, and writing STEs and
// CDs by the planned hitless sequence with an invalidation and a CMD_SYNC after every step.

#include "components/domain_allocator/common/state.h"

#include "util/bdf.h"

#include <kj/debug.h>

namespace nb::domains {

namespace ste = smmuv3::ste;
namespace cdl = smmuv3::cd;

// ---- IdSpace

kj::Maybe<uint32_t> IdSpace::alloc() {
  // The lowest free ID, as Linux's IDA hands them out.
  for (uint32_t id = 1; id < used_.size(); id++) {
    if (!used_[id]) {
      used_[id] = true;
      live_++;
      return id;
    }
  }
  return nullptr;
}

void IdSpace::free(uint32_t id) {
  KJ_REQUIRE(id > 0 && id < used_.size() && used_[id], "freeing an ID that is not allocated", id);
  used_[id] = false;
  live_--;
}

// ---- Shared: lookups

void Shared::taskFailed(kj::Exception&& e) {
  counters.taskFailures++;
  KJ_LOG(ERROR, "domain_allocator: background work failed", e);
}

kj::Maybe<Smmu&> Shared::findSmmu(kj::StringPtr name) {
  for (auto& s : smmus) {
    if (s->name == name) return *s;
  }
  return nullptr;
}

kj::Maybe<Master&> Shared::findMaster(kj::StringPtr text) {
  KJ_IF_MAYBE(name, parseBdfName(text)) {
    kj::Maybe<Master&> found;
    for (auto& m : masters) {
      if (m->rid != name->rid) continue;
      KJ_IF_MAYBE(seg, name->segment) {
        if (*seg != m->segment) continue;
      }
      if (found != nullptr) return nullptr;  // ambiguous without a segment
      found = *m;
    }
    return found;
  }
  return nullptr;
}

bool Shared::ambiguous(kj::StringPtr text) {
  KJ_IF_MAYBE(name, parseBdfName(text)) {
    if (name->segment != nullptr) return false;
    size_t n = 0;
    for (auto& m : masters) n += m->rid == name->rid;
    return n > 1;
  }
  return false;
}

void Shared::shutdown() {
  for (auto& m : masters) {
    m->domain = nullptr;
    m->pasids.clear();
  }
  identity = nullptr;
  blocked = nullptr;
}

// ---- frames

kj::Promise<uint64_t> Shared::allocFrames(uint64_t bytes, uint64_t align) {
  uint64_t size = alignUp(bytes, 4096);
  auto req = frames.allocRequest();
  req.setBytes(size);
  req.setAlign(kj::max(align, uint64_t(4096)));
  return req.send().then([this, size](auto r) {
    KJ_REQUIRE(r.getErrno() == Errno::OK, "domain_allocator: out of physical memory", size);
    uint64_t pa = r.getRuns()[0].getPa();
    mem.zero(pa, size);  // frames can come back dirty from an earlier user
    counters.framesBytes += size;
    return pa;
  });
}

void Shared::freeFrames(uint64_t pa, uint64_t bytes) {
  uint64_t size = alignUp(bytes, 4096);
  auto req = frames.freeRequest();
  auto runs = req.initRuns(1);
  runs[0].setPa(pa);
  runs[0].setBytes(size);
  counters.framesBytes -= size;
  tasks.add(req.send().ignoreResult());
}

// ---- stream table

uint64_t Shared::stePa(const Smmu& smmu, uint32_t sid) const {
  KJ_REQUIRE(smmu.log2Size >= 32 || sid < (uint64_t(1) << smmu.log2Size),
             "StreamID beyond the stream table", smmu.name, sid);
  if (!smmu.twoLevel) return smmu.strtab + uint64_t(sid) * ste::STE_BYTES;
  auto& l2 = KJ_ASSERT_NONNULL(smmu.l2Tables.find(sid >> smmu.split), "no level-2 table", sid);
  return l2 + uint64_t(sid & ((1u << smmu.split) - 1)) * ste::STE_BYTES;
}

kj::Promise<void> Shared::setUpStreamTable(Smmu& smmu) {
  kj::Vector<uint32_t> sids;
  for (auto& m : masters) {
    if (m->smmu != &smmu) continue;
    for (auto sid : m->owned) {
      KJ_REQUIRE(smmu.log2Size >= 32 || sid < (uint64_t(1) << smmu.log2Size),
                 "a device's StreamID is beyond the SMMU's stream table", m->bdf, sid, smmu.name);
      sids.add(sid);
    }
  }
  if (!smmu.twoLevel) {
    // Linear: smmu_queue zeroed the table (V = 0: C_BAD_STE).
    for (auto& m : masters) {
      if (m->smmu != &smmu || m->owned.empty()) continue;
      uint64_t pa = stePa(smmu, m->owned[0]);
      for (unsigned i = 0; i < 8; i++) m->ste.dw[i] = mem.load64(pa + i * 8);
    }
    return kj::READY_NOW;
  }
  // Two-level: a level-2 table for every span holding a device's SID, every STE abort (Linux's
  // arm_smmu_init_initial_stes with disable_bypass), then its level-1 descriptor.
  kj::Vector<uint32_t> spans;
  for (auto sid : sids) {
    uint32_t l1 = sid >> smmu.split;
    bool seen = false;
    for (auto s : spans) seen = seen || s == l1;
    if (!seen && smmu.l2Tables.find(l1) == nullptr) spans.add(l1);
  }
  kj::Promise<void> chain = kj::READY_NOW;
  for (auto l1 : spans) {
    chain = chain.then([this, &smmu, l1]() {
      uint64_t bytes = uint64_t(ste::STE_BYTES) << smmu.split;
      return allocFrames(bytes, bytes).then([this, &smmu, l1, bytes](uint64_t l2) {
        auto abort = makeAbortSte();
        for (uint64_t off = 0; off < bytes; off += ste::STE_BYTES) {
          for (unsigned i = 0; i < 8; i++) mem.store64(l2 + off + i * 8, abort.dw[i]);
        }
        mem.store64(smmu.strtab + uint64_t(l1) * ste::L1STD_BYTES,
                    makeL1StreamDescriptor(l2, smmu.split));
        smmu.l2Tables.insert(l1, l2);
        counters.l2StreamTables++;
      });
    });
  }
  return chain.then([this, &smmu, sids = kj::mv(sids)]() mutable {
    for (auto& m : masters) {
      if (m->smmu == &smmu && !m->owned.empty()) m->ste = makeAbortSte();
    }
    kj::Vector<Inv> ops;
    for (auto sid : sids) ops.add(Inv{rpc::HostOp::CFGI_STE, sid});
    counters.cfgiSte += ops.size();
    if (ops.empty()) return kj::Promise<void>(kj::READY_NOW);
    return invalidate(smmu, kj::mv(ops)).ignoreResult();
  });
}

// ---- invalidation

kj::Promise<uint32_t> Shared::invalidate(Smmu& smmu, kj::Vector<Inv> ops) {
  counters.invalidateCalls++;
  auto req = smmu.queue.invalidateRequest(capnp::MessageSize{8 + ops.size() * 10, 0});
  auto list = req.initOps(ops.size());
  for (auto i : kj::indices(ops)) {
    auto& o = ops[i];
    auto out = list[i];
    out.setOp(o.op);
    out.setSid(o.sid);
    out.setSsid(o.ssid);
    out.setAsid(o.asid);
    out.setVmid(o.vmid);
    out.setAddr(o.addr);
    out.setSize(o.size);
    out.setGranule(o.granule);
    out.setPageSize(o.pageSize);
    out.setLeaf(o.leaf);
  }
  return req.send().then([this, &smmu](auto r) {
    auto result = r.getResult();
    counters.syncs += result.getSyncs();
    KJ_REQUIRE(result.getErrno() == Errno::OK, "the SMMU did not complete an invalidation",
               smmu.name, result.getErrno(), result.getMessage());
    return result.getExecuted();
  });
}

// ---- STEs

kj::Promise<void> Shared::writeSte(Master& m, Ste target) {
  auto plan = planUpdate(m.ste, target, steUsed);
  counters.updates[uint(plan.kind)]++;
  if (m.owned.empty()) {
    m.ste = target;  // every SID it has is written by the function that owns it
    return kj::READY_NOW;
  }
  auto steps = kj::heap(kj::mv(plan.steps));
  kj::Promise<void> chain = kj::READY_NOW;
  for (auto& step : *steps) {
    chain = chain.then([this, &m, &step]() {
      for (auto sid : m.owned) {
        uint64_t pa = stePa(*m.smmu, sid);
        for (unsigned i = 0; i < 8; i++) {
          if (step.qwords & (1u << i)) {
            mem.store64(pa + i * 8, step.image.dw[i]);
            counters.qwordStores++;
            clock.charge(Cost::DESCRIPTOR_STORE);
          }
        }
      }
      m.ste = step.image;
      kj::Vector<Inv> ops;
      for (auto sid : m.owned) ops.add(Inv{rpc::HostOp::CFGI_STE, sid});
      counters.cfgiSte += ops.size();
      return invalidate(*m.smmu, kj::mv(ops)).ignoreResult();
    });
  }
  return chain.attach(kj::mv(steps)).then([&m, target]() { m.ste = target; });
}

// ---- CD tables

kj::Promise<void> Shared::ensureCdTable(Master& m) {
  if (m.cdTable != nullptr) return kj::READY_NOW;
  CdTable table;
  table.s1CdMax = m.ssidBits;
  // Linear when it fits one 64 KiB leaf (CTXDESC_LINEAR_CDMAX) or the SMMU has no CD2L; else
  // two-level with 64 KiB leaves allocated as SSIDs are used (facts 2.5).
  if (m.ssidBits > cdl::CTXDESC_LINEAR_CDMAX && m.smmu->cd2l) {
    table.format = CdTableFormat::TWO_LEVEL_64K;
    table.bytes = uint64_t(cdl::L1CD_BYTES) << (m.ssidBits - cdl::CTXDESC_LINEAR_CDMAX);
  } else {
    table.format = CdTableFormat::LINEAR;
    table.bytes = uint64_t(cdl::CD_BYTES) << m.ssidBits;
  }
  uint64_t bytes = table.bytes;
  return allocFrames(bytes, 4096).then([this, &m, table = kj::mv(table)](uint64_t pa) mutable {
    table.pa = pa;
    counters.cdTables++;
    m.cdTable = kj::mv(table);
  });
}

kj::Promise<uint64_t> Shared::cdPa(Master& m, uint32_t ssid) {
  auto& table = KJ_ASSERT_NONNULL(m.cdTable);
  KJ_REQUIRE(ssid < (uint64_t(1) << table.s1CdMax) || (table.s1CdMax == 0 && ssid == 0),
             "SSID beyond the CD table", m.bdf, ssid);
  if (table.format == CdTableFormat::LINEAR) return table.pa + uint64_t(ssid) * cdl::CD_BYTES;
  uint32_t l1 = ssid / cdl::CTXDESC_L2_ENTRIES;
  uint64_t offset = uint64_t(ssid % cdl::CTXDESC_L2_ENTRIES) * cdl::CD_BYTES;
  KJ_IF_MAYBE(leaf, table.leaves.find(l1)) { return *leaf + offset; }
  uint64_t leafBytes = uint64_t(cdl::CD_BYTES) * cdl::CTXDESC_L2_ENTRIES;
  return allocFrames(leafBytes, leafBytes).then([this, &m, l1, ssid, offset](uint64_t leaf) {
    auto& table = KJ_ASSERT_NONNULL(m.cdTable);
    table.leaves.insert(l1, leaf);
    counters.cdLeaves++;
    mem.store64(table.pa + uint64_t(l1) * cdl::L1CD_BYTES, makeL1CdDescriptor(leaf));
    // An invalid level-1 descriptor may have been cached (Linux: arm_smmu_sync_cd, leaf = 0).
    kj::Vector<Inv> ops;
    for (auto sid : m.owned) ops.add(Inv{rpc::HostOp::CFGI_CD, sid, ssid, 0, 0, 0, 0, 0, 0, false});
    counters.cfgiCd += ops.size();
    if (ops.empty()) return kj::Promise<uint64_t>(leaf + offset);
    return invalidate(*m.smmu, kj::mv(ops)).then([leaf, offset](uint32_t) {
      return leaf + offset;
    });
  });
}

Cd Shared::readCd(uint64_t pa) const {
  Cd c;
  for (unsigned i = 0; i < 8; i++) c.dw[i] = mem.load64(pa + i * 8);
  return c;
}

kj::Promise<void> Shared::writeCd(Master& m, uint32_t ssid, Cd target) {
  return cdPa(m, ssid).then([this, &m, ssid, target](uint64_t pa) {
    auto plan = planUpdate(readCd(pa), target, cdUsed);
    counters.updates[uint(plan.kind)]++;
    auto steps = kj::heap(kj::mv(plan.steps));
    kj::Promise<void> chain = kj::READY_NOW;
    for (auto& step : *steps) {
      chain = chain.then([this, &m, &step, pa, ssid]() {
        for (unsigned i = 0; i < 8; i++) {
          if (step.qwords & (1u << i)) {
            mem.store64(pa + i * 8, step.image.dw[i]);
            counters.qwordStores++;
            clock.charge(Cost::DESCRIPTOR_STORE);
          }
        }
        kj::Vector<Inv> ops;
        for (auto sid : m.owned) ops.add(Inv{rpc::HostOp::CFGI_CD, sid, ssid});
        counters.cfgiCd += ops.size();
        if (ops.empty()) return kj::Promise<void>(kj::READY_NOW);
        return invalidate(*m.smmu, kj::mv(ops)).ignoreResult();
      });
    }
    return chain.attach(kj::mv(steps));
  });
}

}  // namespace nb::domains
