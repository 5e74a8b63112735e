// hw/smmuv3: the VMSAv8-64 walker (facts 4.1, 4.3, 4.4, 4.9).

#include "hw/smmuv3/walk.h"

namespace nb::smmu {

namespace {

bool blockAllowed(Granule g, unsigned level, bool lpa) {
  // Facts 4.3: 4K blocks at L1 (1G) and L2 (2M); 16K at L2 (32M); 64K at L2 (512M) and, with a
  // 52-bit OA, at L1 (4T). Level-0 blocks need FEAT_LPA2, which is not modelled.
  switch (g) {
    case Granule::G4K: return level == 1 || level == 2;
    case Granule::G16K: return level == 2;
    case Granule::G64K: return level == 2 || (level == 1 && lpa);
  }
  return false;
}

constexpr uint64_t S1_TABLE_ATTRS = pte::PXN_TABLE.mask() | pte::UXN_TABLE.mask() |
                                    pte::AP_TABLE_NO_EL0.mask() | pte::AP_TABLE_NO_WRITE.mask();

}  // namespace

uint64_t descriptorOutputAddress(uint64_t desc, Granule granule, unsigned shift, bool lpa) {
  uint64_t oa = desc & genmask(47, shift);
  if (granule == Granule::G64K && lpa) oa |= pte::OA_51_48.get(desc) << 48;
  return oa;
}

Permissions s1Permissions(uint64_t desc, uint64_t tableAttrs, bool singlePrivilege) {
  using P = Permissions;
  bool readOnly = pte::AP2_RDONLY.test(desc) || pte::AP_TABLE_NO_WRITE.test(tableAttrs);
  if (singlePrivilege) {
    // EL2 regime without E2H: one privilege, AP[1] ignored, a single XN in bit 54.
    bool xn = pte::UXN.test(desc) || pte::UXN_TABLE.test(tableAttrs);
    uint8_t p = P::R_PRIV | P::R_USER;
    if (!readOnly) p |= P::W_PRIV | P::W_USER;
    if (!xn) p |= P::X_PRIV | P::X_USER;
    return P(p);
  }
  bool user = pte::AP1_UNPRIV.test(desc) && !pte::AP_TABLE_NO_EL0.test(tableAttrs);
  bool pxn = pte::PXN.test(desc) || pte::PXN_TABLE.test(tableAttrs);
  bool uxn = pte::UXN.test(desc) || pte::UXN_TABLE.test(tableAttrs);
  bool userWritable = user && !readOnly;
  uint8_t p = P::R_PRIV;
  if (!readOnly) p |= P::W_PRIV;
  if (!pxn && !userWritable) p |= P::X_PRIV;  // EL0-writable implies PXN
  if (user) p |= P::R_USER;
  if (userWritable) p |= P::W_USER;
  if (!uxn) p |= P::X_USER;                   // EL0 execute-only is allowed (AP[1] = 0)
  return P(p);
}

Permissions s2Permissions(uint64_t desc) {
  using P = Permissions;
  uint8_t p = 0;
  if (pte::S2AP_READ.test(desc)) p |= P::R_PRIV | P::R_USER;
  if (pte::S2AP_WRITE.test(desc)) p |= P::W_PRIV | P::W_USER;
  if (!pte::S2_XN.test(desc)) p |= P::X_PRIV | P::X_USER;
  return P(p);
}

kj::OneOf<uint64_t, Event> Walker::translateIpa(const StageConfig& s2, uint64_t ipa,
                                                Access access, FaultClass cls) {
  auto outcome = walk(s2, ipa, access, cls);
  KJ_SWITCH_ONEOF(outcome) {
    KJ_CASE_ONEOF(leaf, Leaf) { return leaf.outputAddr; }
    KJ_CASE_ONEOF(event, Event) { return event; }
  }
  KJ_UNREACHABLE;
}

WalkOutcome Walker::walk(const StageConfig& cfg, uint64_t ia, Access access, FaultClass cls,
                         const StageConfig* tableStage2) {
  counters.stageWalks++;
  const bool isS2 = cfg.stage == Stage::S2;
  const Granule g = cfg.granule;

  auto fault = [&](EventId id) {
    Event e;
    e.id = id;
    e.s2 = isS2;
    // Stage 1: an external abort fetching a table is CLASS = TT (the access was a table
    // fetch, IHI 0070 §7.3.11 F_WALK_EABT); every other stage-1 fault is on the input (IN).
    e.cls = isS2 ? cls : id == EventId::F_WALK_EABT ? FaultClass::TT : FaultClass::IN;
    if (isS2) e.ipa = ia;
    // TTRnW describes the table access of a stage-2 walk done for a stage-1 table (facts 3.2).
    e.ttRnW = isS2 && cls == FaultClass::TT && !access.write;
    return e;
  };

  if (cfg.inputBits < 64 && (ia >> cfg.inputBits) != 0) return fault(EventId::F_TRANSLATION);
  if ((cfg.ttb >> cfg.outputBits) != 0) return fault(EventId::F_ADDR_SIZE);

  unsigned level = cfg.startLevel;
  unsigned indexBits = cfg.startIndexBits();
  uint64_t table = cfg.ttb;
  uint64_t tableAttrs = 0;  // S1 hierarchical attributes accumulated on the way down

  for (;;) {
    const unsigned shift = levelShift(g, level);
    const uint64_t index = (ia >> shift) & ((uint64_t(1) << indexBits) - 1);
    const uint64_t descAddr = table + index * 8;  // in this stage's output space
    uint64_t descPa = descAddr;
    if (tableStage2 != nullptr) {
      // Nested: the descriptor's address is an IPA (facts: CLASS=TT faults).
      auto pa = translateIpa(*tableStage2, descAddr, Access{}, FaultClass::TT);
      KJ_IF_MAYBE(e, pa.tryGet<Event>()) return *e;
      descPa = pa.get<uint64_t>();
    }
    counters.descriptorReads++;
    uint64_t desc;
    KJ_IF_MAYBE(v, mem.tryLoad64(descPa)) {
      desc = *v;
    } else {
      Event e = fault(EventId::F_WALK_EABT);
      e.fetchAddr = descPa;
      return e;
    }

    // Evaluate the descriptor; re-evaluated if an HTTU compare-and-swap loses a race.
    for (;;) {
      const uint64_t type = pte::TYPE.get(desc);
      if ((type & 1) == 0) return fault(EventId::F_TRANSLATION);
      if (level < 3 && type == pte::TYPE_TABLE) break;  // descend
      if (level == 3 ? type != pte::TYPE_PAGE : !blockAllowed(g, level, cfg.lpa)) {
        return fault(EventId::F_TRANSLATION);
      }

      // ---- leaf
      const uint64_t oa = descriptorOutputAddress(desc, g, shift, cfg.lpa);
      if ((oa >> cfg.outputBits) != 0) return fault(EventId::F_ADDR_SIZE);

      // Access flag: fault unless hardware manages it or AF faults are disabled. An access
      // fault takes priority over a permission fault (DDI0487 fault prioritization).
      const bool af = pte::AF.test(desc);
      if (!af && !cfg.ha && !cfg.affd) return fault(EventId::F_ACCESS);

      auto permsOf = [&](uint64_t d) {
        return isS2 ? s2Permissions(d) : s1Permissions(d, tableAttrs, cfg.singlePrivilege);
      };
      Permissions perms = permsOf(desc);
      uint64_t updated = desc;
      if (!af && cfg.ha) updated |= pte::AF.mask();

      // Dirty state (facts 4.9): a DBM=1 leaf that is writable-clean (S1 AP[2]=1, S2
      // S2AP[1]=0) permits a write, which the SMMU makes dirty by clearing AP[2] / setting
      // S2AP[1]. APTable write protection is not overridden by DBM.
      if (access.write && cfg.hd && pte::DBM.test(desc)) {
        bool clean = isS2 ? !pte::S2AP_WRITE.test(desc)
                          : pte::AP2_RDONLY.test(desc) &&
                                !pte::AP_TABLE_NO_WRITE.test(tableAttrs);
        if (clean) {
          uint64_t dirty = isS2 ? desc | pte::S2AP_WRITE.mask() : desc & ~pte::AP2_RDONLY.mask();
          if (permsOf(dirty).allows(access)) {
            updated = isS2 ? updated | pte::S2AP_WRITE.mask()
                           : updated & ~pte::AP2_RDONLY.mask();
            perms = permsOf(dirty);
          }
        }
      }
      if (!perms.allows(access)) return fault(EventId::F_PERMISSION);

      if (updated != desc) {
        if (tableStage2 != nullptr) {
          // The update writes the stage-1 table: stage 2 must allow a write there (a
          // permission fault reports TTRnW = 0).
          Access w;
          w.write = true;
          auto pa = translateIpa(*tableStage2, descAddr, w, FaultClass::TT);
          KJ_IF_MAYBE(e, pa.tryGet<Event>()) return *e;
        }
        uint64_t expected = desc;
        if (!mem.compareExchange64(descPa, expected, updated)) {
          desc = expected;  // someone changed the descriptor: evaluate what is there now
          continue;
        }
        counters.httuUpdates++;
        desc = updated;
        perms = permsOf(desc);
      }

      Leaf leaf;
      leaf.outputAddr = oa | (ia & ((uint64_t(1) << shift) - 1));
      leaf.level = uint8_t(level);
      leaf.sizeLog2 = uint8_t(shift);
      leaf.perms = perms;
      leaf.global = !isS2 && !pte::NG.test(desc);
      return leaf;
    }

    // ---- table descriptor: descend
    const uint64_t next = descriptorOutputAddress(desc, g, pageShift(g), cfg.lpa);
    if ((next >> cfg.outputBits) != 0) return fault(EventId::F_ADDR_SIZE);
    if (!isS2) tableAttrs |= desc & S1_TABLE_ATTRS;
    table = next;
    level++;
    indexBits = bitsPerLevel(g);
  }
}

}  // namespace nb::smmu
