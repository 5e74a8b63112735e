// hw/smmuv3: configuration cache and IOTLB invalidation scopes.

#include "hw/smmuv3/tlb.h"

namespace nb::smmu {

// =============================================================================================
// ConfigCache

SteConfig* ConfigCache::findSte(uint32_t sid) {
  SteConfig* c = stes.find(sid);
  if (c != nullptr) steHits++; else steMisses++;
  return c;
}

CdConfig* ConfigCache::findCd(uint32_t sid, uint32_t cdIndex) {
  CdConfig* c = cds.find(cdKey(sid, cdIndex));
  if (c != nullptr) cdHits++; else cdMisses++;
  return c;
}

size_t ConfigCache::invalidateSte(uint32_t sid) {
  return (stes.erase(sid) ? 1 : 0) + invalidateCdAll(sid);
}

size_t ConfigCache::invalidateSteRange(uint32_t sid, uint8_t range) {
  // Facts 1.3: 2^(RANGE+1) SIDs aligned at SID; RANGE = 31 covers all 2^32.
  if (range >= 31) return invalidateAll();
  const uint64_t span = uint64_t(1) << (range + 1);
  const uint64_t first = alignDown(sid, span);
  auto inRange = [&](uint64_t s) { return s >= first && s - first < span; };
  return stes.eraseIf([&](uint32_t s, const SteConfig&) { return inRange(s); }) +
         cds.eraseIf([&](uint64_t key, const CdConfig&) { return inRange(key >> 32); });
}

size_t ConfigCache::invalidateCd(uint32_t sid, uint32_t ssid) {
  return cds.erase(cdKey(sid, ssid)) ? 1 : 0;
}

size_t ConfigCache::invalidateCdAll(uint32_t sid) {
  return cds.eraseIf([&](uint64_t key, const CdConfig&) { return (key >> 32) == sid; });
}

size_t ConfigCache::invalidateAll() { return stes.clear() + cds.clear(); }

// =============================================================================================
// Iotlb

namespace {
uint64_t lastAddress(const IotlbScope& scope) {
  // The range's last byte, saturating at the top of the address space (a TTB1 range may run
  // past 2^64).
  if (scope.length == 0) return scope.addr;
  uint64_t last = scope.addr + (scope.length - 1);
  return last < scope.addr ? ~uint64_t(0) : last;
}
}  // namespace

IotlbKey Iotlb::makeKey(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global) {
  IotlbKey k;
  k.inBase = inputAddr & ~((uint64_t(1) << sizeLog2) - 1);
  k.vmid = tag.regime == Regime::EL2 ? 0 : tag.vmid;
  k.sizeLog2 = sizeLog2;
  k.flags = uint8_t((tag.ipaSpace ? IotlbKey::SPACE_IPA : 0) |
                    (tag.regime == Regime::EL2 ? IotlbKey::REGIME_EL2 : 0) |
                    (global ? IotlbKey::GLOBAL : 0));
  k.asid = global || tag.ipaSpace ? 0 : tag.asid;
  return k;
}

void Iotlb::noteInserted(uint8_t sizeLog2) {
  if (sizeCounts[sizeLog2]++ == 0) sizesPresent |= uint64_t(1) << sizeLog2;
}

void Iotlb::noteRemoved(uint8_t sizeLog2) {
  if (--sizeCounts[sizeLog2] == 0) sizesPresent &= ~(uint64_t(1) << sizeLog2);
}

const IotlbEntry* Iotlb::lookup(const IotlbTag& tag, uint64_t inputAddr, uint8_t* sizeLog2Out) {
  for (uint64_t sizes = sizesPresent; sizes != 0; sizes &= sizes - 1) {
    uint8_t sizeLog2 = uint8_t(__builtin_ctzll(sizes));
    if (const IotlbEntry* e = table.find(makeKey(tag, inputAddr, sizeLog2, false))) {
      *sizeLog2Out = sizeLog2;
      return e;
    }
    if (!tag.ipaSpace) {
      if (const IotlbEntry* e = table.find(makeKey(tag, inputAddr, sizeLog2, true))) {
        *sizeLog2Out = sizeLog2;
        return e;
      }
    }
  }
  return nullptr;
}

void Iotlb::insert(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global,
                   const IotlbEntry& entry) {
  if (table.capacity() == 0) return;
  IotlbKey key = makeKey(tag, inputAddr, sizeLog2, global && !tag.ipaSpace);
  bool existed = table.find(key) != nullptr;
  IotlbKey victim;
  bool evicted = false;
  table.insert(key, entry, &victim, &evicted);
  if (evicted) {
    noteRemoved(victim.sizeLog2);
    evictions++;
  }
  if (!existed) noteInserted(sizeLog2);
}

size_t Iotlb::eraseKey(const IotlbKey& key) {
  if (!table.erase(key)) return 0;
  noteRemoved(key.sizeLog2);
  return 1;
}

bool Iotlb::inScope(const IotlbScope& scope, const IotlbKey& key, const IotlbEntry& e) const {
  if ((scope.kinds & uint8_t(e.kind)) == 0) return false;
  const bool el2 = (key.flags & IotlbKey::REGIME_EL2) != 0;
  if (el2 != (scope.regime == Regime::EL2)) return false;
  KJ_IF_MAYBE(v, scope.vmid) {
    if (key.vmid != *v) return false;
  }
  const bool global = (key.flags & IotlbKey::GLOBAL) != 0;
  switch (scope.asidMatch) {
    case IotlbScope::Asid::ANY: break;
    case IotlbScope::Asid::NON_GLOBAL:
      if (global || key.asid != scope.asid) return false;
      break;
    case IotlbScope::Asid::MATCH_OR_GLOBAL:
      if (!global && key.asid != scope.asid) return false;
      break;
  }
  if (scope.ranged) {
    const uint64_t size = uint64_t(1) << key.sizeLog2;
    const uint64_t last = lastAddress(scope);
    // Overlap of [inBase, inBase + size) with [addr, last].
    if (key.inBase > last || key.inBase + (size - 1) < scope.addr) return false;
  }
  if (scope.ttl != 0) {
    uint8_t level = e.kind == TranslationKind::S2_ONLY ? e.s2Level : e.s1Level;
    if (level != scope.ttl) return false;
  }
  return true;
}

size_t Iotlb::invalidate(const IotlbScope& scope) {
  if (table.size() == 0) return 0;

  // Point probes when the scope names one context and a small address range: each present
  // entry size contributes the aligned blocks overlapping the range. Otherwise scan.
  const bool s1Space = (scope.kinds & uint8_t(TranslationKind::S2_ONLY)) == 0;
  const bool s2Space = scope.kinds == uint8_t(TranslationKind::S2_ONLY);
  const bool oneContext = scope.vmid != nullptr || scope.regime == Regime::EL2;
  if (scope.ranged && oneContext && (s2Space || (s1Space && scope.asidMatch !=
                                                                IotlbScope::Asid::ANY))) {
    constexpr uint64_t MAX_PROBES = 64;
    const uint64_t last = lastAddress(scope);
    uint64_t probes = 0;
    for (uint64_t sizes = sizesPresent; sizes != 0 && probes <= MAX_PROBES; sizes &= sizes - 1) {
      unsigned s = __builtin_ctzll(sizes);
      probes += (s >= 64 ? 0 : (last >> s) - (scope.addr >> s)) + 1;
    }
    if (probes <= MAX_PROBES) {
      IotlbTag tag;
      tag.regime = scope.regime;
      tag.ipaSpace = s2Space;
      tag.vmid = scope.vmid.orDefault(0);
      tag.asid = scope.asid;
      size_t n = 0;
      for (uint64_t sizes = sizesPresent; sizes != 0; sizes &= sizes - 1) {
        uint8_t s = uint8_t(__builtin_ctzll(sizes));
        for (uint64_t block = scope.addr >> s; block <= (last >> s); block++) {
          for (bool global : {false, true}) {
            if (global && (s2Space || scope.asidMatch == IotlbScope::Asid::NON_GLOBAL)) continue;
            IotlbKey key = makeKey(tag, block << s, s, global);
            if (const IotlbEntry* e = table.find(key)) {
              if (inScope(scope, key, *e)) n += eraseKey(key);
            }
          }
        }
      }
      return n;
    }
  }

  return table.eraseIf([&](const IotlbKey& key, const IotlbEntry& e) {
    if (!inScope(scope, key, e)) return false;
    noteRemoved(key.sizeLog2);
    return true;
  });
}

size_t Iotlb::invalidateAll() {
  for (auto& c : sizeCounts) c = 0;
  sizesPresent = 0;
  return table.clear();
}

}  // namespace nb::smmu
