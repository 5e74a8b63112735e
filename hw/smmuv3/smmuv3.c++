// hw/smmuv3: the translation flow and the composition of the model's modules.

#include "hw/smmuv3/smmuv3.h"

namespace nb::smmu {

namespace {

constexpr uint64_t BYPASS_LEAF_SIZE = 4096;

bool isTranslationFault(EventId id) {
  // The faults CD.R / STE.S2R govern (IHI 0070 CD.R, STE.S2R): external aborts and configuration
  // errors are always recorded.
  return id == EventId::F_TRANSLATION || id == EventId::F_ADDR_SIZE ||
         id == EventId::F_ACCESS || id == EventId::F_PERMISSION;
}

uint64_t signExtend55(uint64_t va) { return uint64_t(int64_t(va << 8) >> 8); }

TranslateOk okFromEntry(const IotlbEntry& e, uint8_t sizeLog2, uint64_t ia) {
  const uint64_t size = uint64_t(1) << sizeLog2;
  return TranslateOk{e.outBase | (ia & (size - 1)), size};
}

}  // namespace

Smmuv3::Smmuv3(PhysMem& mem, Features features, kj::Function<void(Irq)> irq)
    : mem(mem),
      features_(features),
      irq(kj::mv(irq)),
      regs(features_, *this, this->irq),
      walker(mem, walkCounters),
      configs(features_.configCacheEntries),
      iotlb(features_.iotlbEntries),
      cmdq(mem, regs, features_, configs, iotlb),
      evtq(mem, regs) {}

// ---- programming interface -------------------------------------------------------------

uint64_t Smmuv3::mmioRead(uint32_t offset, unsigned size) { return regs.read(offset, size); }

void Smmuv3::mmioWrite(uint32_t offset, uint64_t value, unsigned size) {
  regs.write(offset, value, size);
}

void Smmuv3::reset() {
  counters.resets++;
  regs.reset();
  configs.invalidateAll();
  iotlb.invalidateAll();
}

void Smmuv3::cr0Written(uint32_t previous) {
  // CMDQEN 0 -> 1 with commands pending starts consumption.
  if (!CR0::CMDQEN.test(previous) && regs.cmdqEnabled()) cmdq.consume();
}

void Smmuv3::cmdqProdWritten() { cmdq.consume(); }

void Smmuv3::gerrorAcknowledged(uint32_t acked) {
  if (acked & GERROR::CMDQ_ERR.mask()) cmdq.acknowledged();
}

// ---- translation -----------------------------------------------------------------------

EventRecord Smmuv3::fault(const Transaction& t, Event e, bool recordable) {
  counters.faults++;
  e.sid = t.sid;
  KJ_IF_MAYBE(ssid, t.ssid) {
    e.ssv = true;
    e.ssid = *ssid;
  }
  e.rnw = !t.write;
  e.ind = t.exec && !t.write;
  e.pnu = t.priv;
  e.inputAddr = t.iova;
  EventRecord record = makeEventRecord(e);
  if (recordable) evtq.record(record);  // last: the EVTQ interrupt may re-enter the model
  return record;
}

bool Smmuv3::stage2Recordable(const Event& e, const SteConfig& ste) const {
  return !isTranslationFault(e.id) || ste.s2Record;
}

bool Smmuv3::stage1Recordable(const Event& e, const CdConfig& cd, const SteConfig& ste) const {
  if (e.s2) return stage2Recordable(e, ste);
  return !isTranslationFault(e.id) || cd.record;
}

TranslateResult Smmuv3::stage1Fault(const Transaction& t, const Event& e, const CdConfig& cd,
                                     const SteConfig& ste) {
  // IHI 0070 §3.12.2: a stage-1 translation-class fault (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS,
  // F_PERMISSION; not stage 2, not configuration errors or aborts) terminates the transaction
  // with RAZ/WI when IDR0.TERM_MODEL = 0 and CD.A = 0, and aborts it otherwise.
  EventRecord record = fault(t, e, stage1Recordable(e, cd, ste));
  if (!e.s2 && isTranslationFault(e.id) && !cd.abortFaults && !features_.termModelAbort) {
    counters.razWi++;
    return TranslateRazWi{record};
  }
  return record;
}

TranslateResult Smmuv3::addressSizeFault(const Transaction& t) {
  // A stage-1 F_ADDR_SIZE on the input (S2 = 0, CLASS = IN); no CD governs its recording.
  Event e;
  e.id = EventId::F_ADDR_SIZE;
  e.cls = FaultClass::IN;
  return fault(t, e, true);
}

TranslateResult Smmuv3::bypass(const Transaction& t) {
  // Bypass outputs the input address, which must fit the OAS: above it the transaction is
  // aborted with F_ADDR_SIZE (IHI 0070 §3.4.1, bypass address-size checks).
  if (features_.oas < 64 && (t.iova >> features_.oas) != 0) return addressSizeFault(t);
  counters.bypassed++;
  return TranslateOk{t.iova, BYPASS_LEAF_SIZE};
}

const SteConfig* Smmuv3::lookupSte(const Transaction& t, kj::Maybe<EventRecord>& failure) {
  if (const SteConfig* cached = configs.findSte(t.sid)) return cached;
  const RegisterState& s = regs.state();
  auto table = decodeStreamTableConfig(s.strtabBase, s.strtabBaseCfg, features_);
  auto raw = fetchSte(mem, table, t.sid);
  KJ_IF_MAYBE(e, raw.tryGet<Event>()) {
    // IHI 0070 §6.3.12 SMMU_CR2.RECINVSID: C_BAD_STREAMID is recorded only when it is 1 (the
    // transaction is terminated either way).
    const bool recorded = e->id != EventId::C_BAD_STREAMID || CR2::RECINVSID.test(s.cr2);
    failure = fault(t, *e, recorded);
    return nullptr;
  }
  auto decoded = decodeSte(raw.get<Ste>(), features_, CR2::E2H.test(s.cr2));
  KJ_IF_MAYBE(e, decoded.tryGet<Event>()) {
    failure = fault(t, *e, true);
    return nullptr;
  }
  if (const SteConfig* cached = configs.insertSte(t.sid, decoded.get<SteConfig>())) {
    return cached;
  }
  // No configuration cache: keep the decoded STE for this translation only.
  uncachedSte = decoded.get<SteConfig>();
  return &uncachedSte;
}

TranslateResult Smmuv3::translate(const Transaction& t) {
  KJ_IF_MAYBE(ssid, t.ssid) {
    KJ_REQUIRE(*ssid < (1u << 20), "SubstreamIDs are 20 bits (PCIe PASID)", *ssid);
  }
  counters.transactions++;
  if (!regs.smmuEnabled()) {
    // Facts 1.8: with SMMUEN = 0, GBPA decides: abort, or bypass.
    if (GBPA::ABORT.test(regs.state().gbpa)) {
      counters.aborted++;
      return TranslateAbort{AbortCause::GBPA_ABORT};
    }
    counters.bypassed++;
    return TranslateOk{t.iova, BYPASS_LEAF_SIZE};
  }

  kj::Maybe<EventRecord> failure;
  const SteConfig* ste = lookupSte(t, failure);
  if (ste == nullptr) return KJ_ASSERT_NONNULL(failure, "STE lookup failed without an event");

  switch (ste->config) {
    case StreamConfig::ABORT:
      // An abort STE terminates the transaction without recording an event.
      counters.aborted++;
      return TranslateAbort{AbortCause::STE_ABORT};
    case StreamConfig::BYPASS:
      // Substreams are ignored when stage 1 is not enabled (CONSTRAINED choice).
      return bypass(t);
    case StreamConfig::S2_TRANS:
      return translateStage2Only(t, *ste);
    case StreamConfig::S1_TRANS:
    case StreamConfig::NESTED:
      return translateStage1(t, *ste);
  }
  KJ_UNREACHABLE;
}

TranslateResult Smmuv3::translateStage2Only(const Transaction& t, const SteConfig& ste) {
  Access access{t.write, t.priv, t.exec && !t.write};
  IotlbTag tag;
  tag.regime = Regime::NS_EL1;
  tag.ipaSpace = true;
  tag.vmid = ste.vmid;
  uint8_t sizeLog2;
  if (const IotlbEntry* e = iotlb.lookup(tag, t.iova, &sizeLog2)) {
    if (e->kind == TranslationKind::S2_ONLY && e->perms.allows(access)) {
      counters.iotlbHits++;
      return okFromEntry(*e, sizeLog2, t.iova);
    }
  }
  // Input beyond the SMMU's IAS (its OAS: AArch64 tables only, IHI 0070 §3.4) is an address
  // size fault of the (absent) stage 1, before stage 2 looks at S2T0SZ (§3.4.1).
  if (features_.oas < 64 && (t.iova >> features_.oas) != 0) return addressSizeFault(t);
  counters.iotlbMisses++;
  counters.walks++;
  auto outcome = walker.walk(ste.s2, t.iova, access, FaultClass::IN);
  KJ_IF_MAYBE(e, outcome.tryGet<Event>()) {
    return fault(t, *e, stage2Recordable(*e, ste));
  }
  const Leaf& leaf = outcome.get<Leaf>();
  IotlbEntry entry;
  entry.outBase = alignDown(leaf.outputAddr, uint64_t(1) << leaf.sizeLog2);
  entry.perms = leaf.perms;
  entry.kind = TranslationKind::S2_ONLY;
  entry.s2Level = leaf.level;
  iotlb.insert(tag, t.iova, leaf.sizeLog2, false, entry);
  return TranslateOk{leaf.outputAddr, uint64_t(1) << leaf.sizeLog2};
}

TranslateResult Smmuv3::translateStage1(const Transaction& t, const SteConfig& ste) {
  const bool nested = ste.config == StreamConfig::NESTED;

  // ---- which CD (facts 2.1 S1CDMax/S1DSS)
  auto selected = selectCd(ste, t.ssid);
  KJ_IF_MAYBE(e, selected.tryGet<Event>()) return fault(t, *e, true);
  if (selected.is<StageOneBypass>()) {
    if (nested) return translateStage2Only(t, ste);
    return bypass(t);
  }
  const uint32_t cdIndex = selected.get<uint32_t>();

  const CdConfig* cd = configs.findCd(t.sid, cdIndex);
  if (cd == nullptr) {
    auto raw = fetchCd(mem, walker, ste, cdIndex);
    KJ_IF_MAYBE(e, raw.tryGet<Event>()) {
      return fault(t, *e, e->s2 ? stage2Recordable(*e, ste) : true);
    }
    auto decoded = decodeCd(raw.get<Cd>(), ste, features_);
    KJ_IF_MAYBE(e, decoded.tryGet<Event>()) return fault(t, *e, true);
    cd = configs.insertCd(t.sid, cdIndex, decoded.get<CdConfig>());
    if (cd == nullptr) {
      uncachedCd = decoded.get<CdConfig>();
      cd = &uncachedCd;
    }
  }

  // ---- VA region (TTB0: VA[55] = 0, TTB1: VA[55] = 1) and top-byte-ignore
  const unsigned regionIndex = cd->singleRegion ? 0 : unsigned((t.iova >> 55) & 1);
  const TranslationRegion& region = cd->region[regionIndex];
  Access access{t.write, t.priv, t.exec && !t.write};
  Event translationFault;
  translationFault.id = EventId::F_TRANSLATION;
  if (!region.enabled) return stage1Fault(t, translationFault, *cd, ste);  // EPDx = 1
  const uint64_t va = region.tbi ? signExtend55(t.iova) : t.iova;
  const unsigned ias = region.stage.inputBits;
  const uint64_t upper = va >> ias;  // must be all zeros (TTB0) or all ones (TTB1)
  if (upper != (regionIndex == 0 ? 0 : (~uint64_t(0) >> ias))) {
    return stage1Fault(t, translationFault, *cd, ste);
  }

  // ---- IOTLB
  IotlbTag tag;
  const bool el2 = ste.strw == StreamWorld::EL2;
  tag.regime = el2 ? Regime::EL2 : Regime::NS_EL1;
  tag.vmid = ste.vmid;
  tag.asid = cd->asid;
  const TranslationKind kind = nested ? TranslationKind::NESTED : TranslationKind::S1_ONLY;
  uint8_t sizeLog2;
  if (const IotlbEntry* e = iotlb.lookup(tag, va, &sizeLog2)) {
    if (e->kind == kind && e->perms.allows(access)) {
      counters.iotlbHits++;
      return okFromEntry(*e, sizeLog2, va);
    }
  }
  counters.iotlbMisses++;
  counters.walks++;

  // ---- walk: stage 1 (nested: its table addresses through stage 2), then stage 2
  const uint64_t walkInput = va & ((uint64_t(1) << ias) - 1);
  auto s1 = walker.walk(region.stage, walkInput, access, FaultClass::IN,
                        nested ? &ste.s2 : nullptr);
  KJ_IF_MAYBE(e, s1.tryGet<Event>()) return stage1Fault(t, *e, *cd, ste);
  const Leaf& l1 = s1.get<Leaf>();

  IotlbEntry entry;
  entry.kind = kind;
  entry.s1Level = l1.level;
  uint64_t pa = l1.outputAddr;
  uint8_t leafLog2 = l1.sizeLog2;
  Permissions perms = l1.perms;
  if (nested) {
    auto s2 = walker.walk(ste.s2, l1.outputAddr, access, FaultClass::IN);
    KJ_IF_MAYBE(e, s2.tryGet<Event>()) return fault(t, *e, stage2Recordable(*e, ste));
    const Leaf& l2 = s2.get<Leaf>();
    pa = l2.outputAddr;
    leafLog2 = kj::min(l1.sizeLog2, l2.sizeLog2);  // one combined entry covers both leaves
    perms = perms & l2.perms;
    entry.s2Level = l2.level;
  }
  entry.outBase = alignDown(pa, uint64_t(1) << leafLog2);
  entry.perms = perms;
  // The EL2 regime without E2H has no ASIDs: every entry is global.
  const bool global = l1.global || (el2 && !ste.e2h);
  iotlb.insert(tag, va, leafLog2, global, entry);
  return TranslateOk{pa, uint64_t(1) << leafLog2};
}

// ---- introspection ---------------------------------------------------------------------

Smmuv3::Work Smmuv3::work() const {
  Work w;
  w.iotlbLookups = counters.iotlbHits + counters.iotlbMisses;
  w.configLookups = configs.steHits + configs.steMisses + configs.cdHits + configs.cdMisses;
  w.configFetches = configs.steMisses + configs.cdMisses;
  w.walkReads = walkCounters.descriptorReads;
  w.eventsWritten = evtq.stats().written;
  return w;
}

kj::Vector<Stat> Smmuv3::stats() const {
  kj::Vector<Stat> out;
  auto add = [&](kj::StringPtr name, uint64_t value) { out.add(Stat{kj::str(name), value}); };
  add("translations", counters.transactions);
  add("bypassed", counters.bypassed);
  add("aborted", counters.aborted);
  add("faults", counters.faults);
  add("raz_wi", counters.razWi);
  add("resets", counters.resets);
  add("iotlb.hits", counters.iotlbHits);
  add("iotlb.misses", counters.iotlbMisses);
  add("iotlb.entries", iotlb.size());
  add("iotlb.capacity", iotlb.capacity());
  add("iotlb.evictions", iotlb.evictions);
  add("walks", counters.walks);
  add("walk.stage_walks", walkCounters.stageWalks);
  add("walk.reads", walkCounters.descriptorReads);
  add("walk.httu_updates", walkCounters.httuUpdates);
  add("cfg.ste_hits", configs.steHits);
  add("cfg.ste_misses", configs.steMisses);
  add("cfg.cd_hits", configs.cdHits);
  add("cfg.cd_misses", configs.cdMisses);
  const CommandStats& c = cmdq.stats();
  add("cmdq.consumed", c.consumed);
  add("cmdq.illegal", c.illegal);
  add("cmdq.fetch_aborts", c.fetchAborts);
  add("cmdq.cfg_invalidated", c.configInvalidated);
  add("cmdq.tlb_invalidated", c.tlbInvalidated);
  add("cmdq.msi_writes", c.msiWrites);
  for (unsigned op = 0; op < 256; op++) {
    kj::StringPtr name = opcodeName(uint8_t(op));
    if (name != "UNKNOWN") out.add(Stat{kj::str("cmdq.op.", name), c.byOpcode[op]});
  }
  const EventQueueStats& e = evtq.stats();
  add("evtq.written", e.written);
  add("evtq.lost_full", e.lostFull);
  add("evtq.lost_abort", e.lostAbort);
  add("evtq.discarded", e.discarded);
  return out;
}

}  // namespace nb::smmu
