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
  KJ_REQUIRE(ways_ <= MAX_WAYS, "an IOTLB has at most 16 ways", ways_);
  KJ_REQUIRE(entries % ways_ == 0, "IOTLB entries must be a multiple of its ways", entries, ways_);
  sets_ = entries / ways_;
  setsArePow2 = (sets_ & (sets_ - 1)) == 0;
  slots.reset(new Slot[entries]);
  static_assert(sizeof(Slot) == 32);
  recency = kj::heapArray<uint64_t>(sets_);
  fingerprints = kj::heapArray<uint64_t>(2 * size_t(sets_));
  for (auto& f : fingerprints) f = 0;
  for (uint32_t w = 0; w < ways_; w++) laneHighs[w / 8] |= uint64_t(0x80) << (8 * (w % 8));
  halves = ways_ > 8 ? 2 : 1;
  // Initial order (most recent first): ways-1, ..., 1, 0. Any permutation would do: a set fills
  // its invalid ways, lowest first, before it evicts, and each fill promotes the way.
  uint64_t order = 0;
  for (uint32_t w = 0; w < ways_; w++) order |= uint64_t(w) << (4 * (ways_ - 1 - w));
  for (auto& r : recency) r = order;
  orderMask = ways_ == 16 ? ~uint64_t(0) : (uint64_t(1) << (4 * ways_)) - 1;
  lruShift = 4 * (ways_ - 1);
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

inline void Iotlb::eraseWay(uint32_t set, uint32_t way) {
  const size_t i = size_t(set) * ways_ + way;
  const uint8_t sizeLog2 = uint8_t(slots[i].context >> 32);
  if ((slots[i].context >> 40) & IotlbKey::GLOBAL) globalCount--;
  slots[i].context = 0;
  fingerprints[2 * size_t(set) + way / 8] &= ~(uint64_t(0xff) << (8 * (way % 8)));
  count--;
  if (--sizeCounts[sizeLog2] == 0) sizesPresent &= ~(uint64_t(1) << sizeLog2);
}

inline uint32_t Iotlb::findWay(uint32_t set, uint64_t inBase, uint64_t context) const {
  // The way holding exactly (inBase, context), by fingerprint bytes, full tags compared only for
  // candidates; MAX_WAYS when none does.
  const uint64_t fp = fingerprint(inBase, context);
  const size_t first = size_t(set) * ways_;
  for (unsigned half = 0; half < halves; half++) {
    for (uint64_t m = candidates(set, half, fp); m != 0; m &= m - 1) {
      const uint32_t way = 8 * half + (unsigned(__builtin_ctzll(m)) >> 3);
      if (slots[first + way].inBase == inBase && slots[first + way].context == context) {
        return way;
      }
    }
  }
  return MAX_WAYS;
}

const IotlbEntry* Iotlb::lookupGeneral(const IotlbTag& tag, uint64_t inputAddr,
                                       uint8_t* sizeLog2Out) {
  const uint64_t ownBase = contextBase(tag, false);
  // Global entries are VA-space only: in IPA space the global context is one no way carries.
  const uint64_t globalBase = tag.ipaSpace ? ~uint64_t(0) : contextBase(tag, true);
  // Own entries first, then global ones; a probe for a kind no entry has is skipped.
  const bool probeOwn = count != globalCount, probeGlobal = globalCount != 0;
  for (uint64_t sizes = sizesPresent; sizes != 0; sizes &= sizes - 1) {
    const uint8_t sizeLog2 = uint8_t(__builtin_ctzll(sizes));
    const uint64_t inBase = inputAddr & ~((uint64_t(1) << sizeLog2) - 1);
    const uint64_t ownContext = ownBase | (uint64_t(sizeLog2) << 32);
    const uint64_t globalContext = globalBase | (uint64_t(sizeLog2) << 32);
    const uint32_t set = setOf(inputAddr, sizeLog2);
    uint32_t way = probeOwn ? findWay(set, inBase, ownContext) : MAX_WAYS;
    if (way == MAX_WAYS && probeGlobal) way = findWay(set, inBase, globalContext);
    if (way != MAX_WAYS) {
      promote(set, way);
      *sizeLog2Out = sizeLog2;
      return &slots[size_t(set) * ways_ + way].value;
    }
    hint.state = MissHint::GENERAL;
    hint.sizeLog2 = sizeLog2;
    hint.set = set;
    hint.inBase = inBase;
    hint.ownContext = ownContext;
    hint.globalContext = globalContext;
  }
  return nullptr;
}

void Iotlb::insertGeneral(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global,
                          const IotlbEntry& entry) {
  const uint64_t inBase = inputAddr & ~((uint64_t(1) << sizeLog2) - 1);
  const uint64_t context =
      contextBase(tag, global && !tag.ipaSpace) | (uint64_t(sizeLog2) << 32);
  uint32_t set, way = MAX_WAYS;
  bool evicted = false;
  // The last lookup missed exactly this key in this set (and nothing changed since): its set is
  // known and the search for the key can be skipped.
  // After lookupFast() no global entries exist, so the global key is not in the set either.
  if (hint.fastSizeLog2 != MissHint::NO_FAST) {
    hint.state = MissHint::GENERAL;
    hint.sizeLog2 = hint.fastSizeLog2;
    hint.globalContext = (hint.ownContext >> 40) & IotlbKey::SPACE_IPA
                             ? ~uint64_t(0)
                             : (hint.ownContext & ~(uint64_t(0xffff) << 16)) |
                                   (uint64_t(IotlbKey::GLOBAL) << 40);
  }
  if (hint.state != MissHint::NONE && hint.sizeLog2 == sizeLog2 && hint.inBase == inBase &&
      (hint.ownContext == context || hint.globalContext == context)) {
    set = hint.set;
  } else {
    set = setOf(inputAddr, sizeLog2);
    way = findWay(set, inBase, context);  // replaced in place if present
  }
  hint.state = MissHint::NONE;
  hint.fastSizeLog2 = MissHint::NO_FAST;
  const size_t first = size_t(set) * ways_;
  if (way == MAX_WAYS) {
    const uint64_t fp = fingerprint(inBase, context);
    for (unsigned half = 0; half < halves; half++) {
      const uint64_t invalid = candidates(set, half, 0);
      if (invalid != 0) {
        // The lowest flagged byte is exact (no borrow reaches it).
        way = 8 * half + (unsigned(__builtin_ctzll(invalid)) >> 3);
        break;
      }
    }
    const uint64_t global = (context >> 40) & IotlbKey::GLOBAL ? 1 : 0;
    if (way != MAX_WAYS) {
      count++;
      if (sizeCounts[sizeLog2]++ == 0) sizesPresent |= uint64_t(1) << sizeLog2;
    } else {
      // Evict the least recently used way, overwritten in place. With one entry size present
      // and no global entries, the victim's context need not be read.
      way = uint32_t(recency[set] >> lruShift) & 0xf;
      evictions++;
      evicted = true;
      if (sizesPresent != (uint64_t(1) << sizeLog2) || globalCount != 0) {
        const uint64_t victim = slots[first + way].context;
        const uint8_t victimLog2 = uint8_t(victim >> 32);
        if (victimLog2 != sizeLog2) {
          if (--sizeCounts[victimLog2] == 0) sizesPresent &= ~(uint64_t(1) << victimLog2);
          if (sizeCounts[sizeLog2]++ == 0) sizesPresent |= uint64_t(1) << sizeLog2;
        }
        if ((victim >> 40) & IotlbKey::GLOBAL) globalCount--;
      }
    }
    globalCount += global;
    uint64_t& word = fingerprints[2 * size_t(set) + way / 8];
    word = (word & ~(uint64_t(0xff) << (8 * (way % 8)))) | (fp << (8 * (way % 8)));
    slots[first + way].inBase = inBase;
    slots[first + way].context = context;
  }
  slots[first + way].value = entry;
  if (evicted) {
    // The victim was the least recent: promoting it is a shift of the whole order.
    recency[set] = ((recency[set] << 4) & orderMask) | way;
  } else {
    promote(set, way);
  }
  updateFast();
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
  hint.state = MissHint::NONE;
  hint.fastSizeLog2 = MissHint::NO_FAST;
  if (count == 0) return 0;
  size_t n = 0;
  KJ_DEFER(updateFast());
  auto consider = [&](uint32_t set, uint32_t way) {
    const size_t i = size_t(set) * ways_ + way;
    if (slots[i].context == 0) return;
    if (!inScope(scope, unpack(slots[i].inBase, slots[i].context), slots[i].value)) return;
    eraseWay(set, way);
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
          const uint32_t set = setOf(block << s, s);
          for (uint32_t way = 0; way < ways_; way++) {
            // Only this size's entries for this block live here by this probe's account;
            // others in the set are found by their own probes (or are out of range).
            const size_t i = size_t(set) * ways_ + way;
            if (slots[i].context != 0 && uint8_t(slots[i].context >> 32) == s &&
                slots[i].inBase == block << s) {
              consider(set, way);
            }
          }
        }
      }
      return n;
    }
  }

  for (uint32_t set = 0; set < sets_; set++) {
    for (uint32_t way = 0; way < ways_; way++) consider(set, way);
  }
  return n;
}

size_t Iotlb::invalidateAll() {
  hint.state = MissHint::NONE;
  hint.fastSizeLog2 = MissHint::NO_FAST;
  fastLog2 = 0;
  globalCount = 0;
  for (auto& c : sizeCounts) c = 0;
  sizesPresent = 0;
  for (size_t i = 0; i < capacity(); i++) slots[i].context = 0;
  for (auto& f : fingerprints) f = 0;
  size_t n = count;
  count = 0;
  return n;
}

}  // namespace nb::smmu
