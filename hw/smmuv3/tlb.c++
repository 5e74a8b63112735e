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

Iotlb::Iotlb(uint32_t entries, uint32_t ways) {
  if (entries == 0) return;
  KJ_REQUIRE(ways > 0, "an IOTLB has at least one way");
  ways_ = kj::min(ways, entries);
  KJ_REQUIRE(entries % ways_ == 0, "IOTLB entries must be a multiple of its ways", entries, ways_);
  sets_ = entries / ways_;
  setsArePow2 = (sets_ & (sets_ - 1)) == 0;
  inBases = kj::heapArray<uint64_t>(entries);
  contexts = kj::heapArray<uint64_t>(entries);
  lastUse = kj::heapArray<uint64_t>(entries);
  values = kj::heapArray<IotlbEntry>(entries);
  for (auto& c : contexts) c = 0;
  for (auto& u : lastUse) u = 0;
}

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

IotlbKey Iotlb::unpack(uint64_t inBase, uint64_t context) {
  IotlbKey k;
  k.inBase = inBase;
  k.vmid = uint16_t(context);
  k.asid = uint16_t(context >> 16);
  k.sizeLog2 = uint8_t(context >> 32);
  k.flags = uint8_t(context >> 40);
  return k;
}

const IotlbEntry* Iotlb::lookup(const IotlbTag& tag, uint64_t inputAddr, uint8_t* sizeLog2Out) {
  for (uint64_t sizes = sizesPresent; sizes != 0; sizes &= sizes - 1) {
    const uint8_t sizeLog2 = uint8_t(__builtin_ctzll(sizes));
    const IotlbKey own = makeKey(tag, inputAddr, sizeLog2, false);
    const uint64_t inBase = own.inBase;
    const uint64_t ownContext = packContext(own);
    // A global entry is looked for in VA space only; in IPA space `globalContext` matches no
    // way (VALID clear).
    const uint64_t globalContext =
        tag.ipaSpace ? 0 : packContext(makeKey(tag, inputAddr, sizeLog2, true));
    const size_t first = size_t(setOf(inputAddr, sizeLog2)) * ways_;
    size_t global = SIZE_MAX;
    for (size_t i = first; i < first + ways_; i++) {
      if (inBases[i] != inBase) continue;
      if (contexts[i] == ownContext) {
        lastUse[i] = ++clock;
        *sizeLog2Out = sizeLog2;
        return &values[i];
      }
      if (contexts[i] == globalContext && globalContext != 0) global = i;
    }
    if (global != SIZE_MAX) {
      lastUse[global] = ++clock;
      *sizeLog2Out = sizeLog2;
      return &values[global];
    }
  }
  return nullptr;
}

void Iotlb::insert(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global,
                   const IotlbEntry& entry) {
  if (sets_ == 0) return;
  const IotlbKey key = makeKey(tag, inputAddr, sizeLog2, global && !tag.ipaSpace);
  const uint64_t context = packContext(key);
  const size_t first = size_t(setOf(inputAddr, sizeLog2)) * ways_;
  size_t invalid = SIZE_MAX, oldest = first;
  for (size_t i = first; i < first + ways_; i++) {
    if (contexts[i] == 0) {
      if (invalid == SIZE_MAX) invalid = i;
      continue;
    }
    if (inBases[i] == key.inBase && contexts[i] == context) {
      values[i] = entry;
      lastUse[i] = ++clock;
      return;
    }
    if (lastUse[i] < lastUse[oldest] || contexts[oldest] == 0) oldest = i;
  }
  size_t way = invalid;
  if (way == SIZE_MAX) {
    way = oldest;
    eraseWay(way);
    evictions++;
  }
  inBases[way] = key.inBase;
  contexts[way] = context;
  lastUse[way] = ++clock;
  values[way] = entry;
  count++;
  if (sizeCounts[sizeLog2]++ == 0) sizesPresent |= uint64_t(1) << sizeLog2;
}

void Iotlb::eraseWay(size_t i) {
  const uint8_t sizeLog2 = uint8_t(contexts[i] >> 32);
  contexts[i] = 0;
  count--;
  if (--sizeCounts[sizeLog2] == 0) sizesPresent &= ~(uint64_t(1) << sizeLog2);
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
  if (count == 0) return 0;
  size_t n = 0;
  auto consider = [&](size_t i) {
    if (contexts[i] == 0) return;
    if (!inScope(scope, unpack(inBases[i], contexts[i]), values[i])) return;
    eraseWay(i);
    n++;
  };

  // A small range visits only the sets its blocks index, per present entry size: each block of
  // size 2^s overlapping the range has one set. Otherwise every way is visited.
  if (scope.ranged) {
    constexpr uint64_t MAX_BLOCKS = 64;
    const uint64_t last = lastAddress(scope);
    uint64_t blocks = 0;
    for (uint64_t sizes = sizesPresent; sizes != 0 && blocks <= MAX_BLOCKS; sizes &= sizes - 1) {
      unsigned s = __builtin_ctzll(sizes);
      blocks += (last >> s) - (scope.addr >> s) + 1;
    }
    if (blocks <= MAX_BLOCKS) {
      for (uint64_t sizes = sizesPresent; sizes != 0; sizes &= sizes - 1) {
        const uint8_t s = uint8_t(__builtin_ctzll(sizes));
        for (uint64_t block = scope.addr >> s; block <= (last >> s); block++) {
          const size_t first = size_t(setOf(block << s, s)) * ways_;
          for (size_t i = first; i < first + ways_; i++) {
            // Only this size's entries for this block live here by this probe's account;
            // others in the set are found by their own probes (or are out of range).
            if (contexts[i] != 0 && uint8_t(contexts[i] >> 32) == s &&
                inBases[i] == block << s) {
              consider(i);
            }
          }
        }
      }
      return n;
    }
  }

  for (size_t i = 0; i < contexts.size(); i++) consider(i);
  return n;
}

size_t Iotlb::invalidateAll() {
  for (auto& c : sizeCounts) c = 0;
  sizesPresent = 0;
  for (auto& c : contexts) c = 0;
  size_t n = count;
  count = 0;
  return n;
}

}  // namespace nb::smmu
