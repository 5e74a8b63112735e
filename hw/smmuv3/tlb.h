// hw/smmuv3: the SMMU's caches — configuration cache (STEs, CDs) and the IOTLB.
//
// Owns: what is cached, how entries are tagged, and the invalidation primitives that give each
// CMD_CFGI_* / CMD_TLBI_* command exactly its architected scope (the command-to-scope mapping is
// in cmdq.c++). Entries are decoded configs and leaf translations; walk caches (non-leaf
// entries) are not modelled, so LEAF=0 invalidations have nothing extra to remove.
// Does not own: fetching or walking (stream-table.h, context-descriptor.h, walk.h).

#pragma once

#include "hw/smmuv3/context-descriptor.h"
#include "hw/smmuv3/set-cache.h"
#include "hw/smmuv3/stream-table.h"
#include "hw/smmuv3/walk.h"
#include <cstdint>
#include <cstring>
#include <memory>

namespace nb::smmu {

// =============================================================================================
// Configuration cache

class ConfigCache {
public:
  explicit ConfigCache(uint32_t entries) : stes(entries), cds(entries) {}

  SteConfig* findSte(uint32_t sid);
  SteConfig* insertSte(uint32_t sid, const SteConfig& ste) { return stes.insert(sid, ste); }
  // Returns the cached copy, or null when the cache is disabled.
  CdConfig* findCd(uint32_t sid, uint32_t cdIndex);
  CdConfig* insertCd(uint32_t sid, uint32_t cdIndex, const CdConfig& cd) {
    return cds.insert(cdKey(sid, cdIndex), cd);
  }

  size_t invalidateSte(uint32_t sid);
  // CMD_CFGI_STE. Also drops the SID's cached CDs: they were located through the STE
  // (S1ContextPtr, S1Fmt, S1CDMax), so they are stale once it changes. IHI 0070 lets an STE
  // invalidation cover what was fetched through it; being conservative costs only refetches.
  size_t invalidateSteRange(uint32_t sid, uint8_t range);
  // CMD_CFGI_STE_RANGE: the 2^(RANGE+1) SIDs aligned at SID (facts 1.3); RANGE=31 is all.
  size_t invalidateCd(uint32_t sid, uint32_t ssid);   // CMD_CFGI_CD
  size_t invalidateCdAll(uint32_t sid);               // CMD_CFGI_CD_ALL
  size_t invalidateAll();                             // CFGI_STE_RANGE with RANGE=31

  uint64_t steHits = 0, steMisses = 0, cdHits = 0, cdMisses = 0;

private:
  static uint64_t cdKey(uint32_t sid, uint32_t index) { return (uint64_t(sid) << 32) | index; }
  struct SidHash {
    size_t operator()(uint32_t sid) const { return mixHash(sid); }
  };
  struct CdHash {
    size_t operator()(uint64_t key) const { return mixHash(key); }
  };
  SetCache<uint32_t, SteConfig, SidHash> stes;
  SetCache<uint64_t, CdConfig, CdHash> cds;
};

// =============================================================================================
// IOTLB

enum class TranslationKind : uint8_t {
  S1_ONLY = 1,
  S2_ONLY = 2,
  NESTED = 4,   // one combined S1+S2 entry
};

enum class Regime : uint8_t {
  NS_EL1 = 0,   // VMID-tagged (STRW = NSEL1)
  EL2 = 1,      // STRW = EL2 (ASID-tagged with E2H), no VMID
};

struct IotlbKey {
  uint64_t inBase = 0;   // input address aligned to the entry's size (VA, or IPA for S2_ONLY)
  uint16_t vmid = 0;
  uint16_t asid = 0;     // 0 for global and S2_ONLY entries
  uint8_t sizeLog2 = 0;
  uint8_t flags = 0;     // SPACE_IPA | REGIME_EL2 | GLOBAL

  static constexpr uint8_t SPACE_IPA = 1;
  static constexpr uint8_t REGIME_EL2 = 2;
  static constexpr uint8_t GLOBAL = 4;

  bool operator==(const IotlbKey& o) const {
    return inBase == o.inBase && vmid == o.vmid && asid == o.asid && sizeLog2 == o.sizeLog2 &&
           flags == o.flags;
  }
};

struct IotlbEntry {
  uint64_t outBase = 0;  // output (physical) address aligned to the entry's size
  Permissions perms;
  TranslationKind kind = TranslationKind::S1_ONLY;
  uint8_t s1Level = 0;   // leaf level of the S1 walk (TTL matching of NH/EL2 invalidations)
  uint8_t s2Level = 0;   // leaf level of the S2 walk (TTL matching of S2_IPA)
};

struct IotlbTag {
  // The context a lookup happens in.
  Regime regime = Regime::NS_EL1;
  bool ipaSpace = false;  // S2_ONLY translation: input is an IPA
  uint16_t vmid = 0;
  uint16_t asid = 0;
};

struct IotlbScope {
  // What one invalidation removes. Every field narrows the scope.
  Regime regime = Regime::NS_EL1;
  kj::Maybe<uint16_t> vmid;            // null: every VMID
  enum class Asid : uint8_t {
    ANY,              // every ASID, global or not
    NON_GLOBAL,       // non-global entries of `asid` (TLBI_*_ASID)
    MATCH_OR_GLOBAL,  // entries of `asid` and global ones (TLBI_*_VA)
  } asidMatch = Asid::ANY;
  uint16_t asid = 0;
  uint8_t kinds = 0;                    // TranslationKind bits
  bool ranged = false;                  // only entries overlapping [addr, addr + length)
  uint64_t addr = 0;
  uint64_t length = 0;                  // 0 with `ranged`: entries containing `addr`
  uint8_t ttl = 0;                      // nonzero: only leaves at this level (S1 level for S1
                                        // kinds, S2 level for S2_ONLY)
};

class Iotlb {
  // Organisation: `sets` x `ways` entries, set-associative. An entry of size 2^s for input
  // address A lives in set (A >> s) mod sets: the set is chosen by the input page (or block)
  // number alone, as a CPU TLB indexes by VA bits, so every context (VMID, ASID, global)
  // competes for the same sets. Replacement is per-set LRU: a new entry takes the set's
  // lowest-numbered invalid way if it has one, else the way least recently inserted or returned
  // by lookup(). Each set keeps its ways' recency order as a stack of 4-bit way numbers, so
  // finding the victim and promoting a way are a few bit operations, not a scan; and a byte of
  // each way's tag hash (0 = invalid), so a lookup compares every way in one word operation
  // and reads a way's full tag only when its byte matches. With one entry size present, no
  // global entries, up to 8 ways and a power-of-two set count (the usual case: 4K pages) lookup
  // and the fill after its miss take straight-line paths inlined into the caller (lookupFast,
  // fillAfterFastMiss): the set, tag and fingerprint are computed once, by the lookup, and the
  // fill reuses them; an empty or disabled IOTLB costs its caller one compare in each.
public:
  static constexpr uint32_t MAX_WAYS = 16;
  Iotlb(uint32_t entries, uint32_t ways);
  // `entries` 0 disables the IOTLB. Otherwise ways = min(ways, entries), at most MAX_WAYS, and
  // entries must be a multiple of it (sets = entries / ways; KJ_REQUIRE, checked by
  // validateFeatures too).

  [[gnu::always_inline]] const IotlbEntry* lookup(const IotlbTag& tag, uint64_t inputAddr,
                                                  uint8_t* sizeLog2Out) {
    if (sizesPresent == 0) {
      hint.state = MissHint::NONE;
      return nullptr;  // empty (or disabled): nothing to compute
    }
    if (fastLog2 != 0) return lookupFast(tag, inputAddr, sizeLog2Out);
    hint.state = MissHint::NONE;
    return lookupGeneral(tag, inputAddr, sizeLog2Out);
  }
  // The entry covering `inputAddr` in `tag`'s context (non-global first, then global for VA
  // space, smallest size first), or null; a returned entry becomes its set's most recently
  // used. Counts nothing: the caller decides whether the entry serves the access.
  [[gnu::always_inline]] void insert(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2,
                                     bool global, const IotlbEntry& entry) {
    if (sets_ == 0) return;
    if (sizeLog2 == hint.fastSizeLog2 && !global &&
        (inputAddr & ~((uint64_t(1) << sizeLog2) - 1)) == hint.inBase &&
        tagBits(tag) == hint.tagBits) {
      fillAfterFastMiss(entry);
      return;
    }
    insertGeneral(tag, inputAddr, sizeLog2, global, entry);
  }
  // Replaces the entry with the same key in place, else fills the set's first invalid way,
  // else evicts the set's least recently used way (`evictions` counts those).
  size_t invalidate(const IotlbScope& scope);
  // Removes exactly the entries in scope; returns how many.
  size_t invalidateAll();

  uint32_t capacity() const { return sets_ * ways_; }
  uint32_t sets() const { return sets_; }
  uint32_t ways() const { return ways_; }
  uint32_t size() const { return count; }
  uint64_t evictions = 0;

private:
  // A way's tag packed for a two-word compare: inBase, and a context word — vmid | asid << 16
  // | sizeLog2 << 32 | flags << 40 | VALID (set in every used way, so an invalid way, 0, never
  // matches).
  static constexpr uint64_t VALID = uint64_t(1) << 48;
  static uint64_t tagBits(const IotlbTag& tag) {
    // The tag's fields as one word (no padding): equal words, equal tags. Unequal tags may
    // still share a context word (an EL2 tag's VMID, an IPA-space tag's ASID are not part of
    // it); a fill then takes the general path, which compares contexts.
    static_assert(sizeof(IotlbTag) == 6, "IotlbTag is regime, ipaSpace, vmid, asid");
    uint64_t bits = 0;
    memcpy(&bits, &tag, sizeof tag);
    return bits;
  }
  static IotlbKey unpack(uint64_t inBase, uint64_t context);
  bool inScope(const IotlbScope& scope, const IotlbKey& key, const IotlbEntry& entry) const;
  uint32_t setOf(uint64_t inputAddr, uint8_t sizeLog2) const {
    uint64_t page = inputAddr >> sizeLog2;
    return uint32_t(setsArePow2 ? page & (sets_ - 1) : page % sets_);
  }
  // The context word of `tag`'s entries without the size (OR in sizeLog2 << 32).
  static uint64_t contextBase(const IotlbTag& tag, bool global) {
    const bool el2 = tag.regime == Regime::EL2;
    const uint64_t flags = (tag.ipaSpace ? IotlbKey::SPACE_IPA : 0) |
                           (el2 ? IotlbKey::REGIME_EL2 : 0) | (global ? IotlbKey::GLOBAL : 0);
    const uint64_t asid = global || tag.ipaSpace ? 0 : tag.asid;
    return uint64_t(el2 ? 0 : tag.vmid) | (asid << 16) | (flags << 40) | VALID;
  }
  const IotlbEntry* lookupGeneral(const IotlbTag& tag, uint64_t inputAddr, uint8_t* sizeLog2Out);
  void insertGeneral(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global,
                     const IotlbEntry& entry);
  [[gnu::always_inline]] inline const IotlbEntry* lookupFast(const IotlbTag& tag,
                                                             uint64_t inputAddr,
                                                             uint8_t* sizeLog2Out);
  [[gnu::always_inline]] inline void fillAfterFastMiss(const IotlbEntry& entry);
  void updateFast() {
    // The fast paths' conditions: one entry size present, no global entries, one fingerprint
    // word per set, a power-of-two set count.
    const bool oneSize = sizesPresent != 0 && (sizesPresent & (sizesPresent - 1)) == 0;
    fastLog2 = oneSize && globalCount == 0 && halves == 1 && setsArePow2
                   ? uint8_t(__builtin_ctzll(sizesPresent))
                   : 0;
  }
  [[gnu::always_inline]] inline uint32_t findWay(uint32_t set, uint64_t inBase,
                                                 uint64_t context) const;
  [[gnu::always_inline]] inline void eraseWay(uint32_t set, uint32_t way);
  static void promote(uint64_t& order, uint32_t way) {
    // `way` becomes the set's most recently used. Its nibble is the lowest zero nibble of
    // order ^ (way in every nibble): the classic zero-nibble test is exact for the lowest one,
    // and `way` occurs once among the first `ways_`.
    constexpr uint64_t ONES = 0x1111'1111'1111'1111ull, HIGHS = 0x8888'8888'8888'8888ull;
    const uint64_t x = order ^ (ONES * way);
    const unsigned pos = unsigned(__builtin_ctzll((x - ONES) & ~x & HIGHS)) >> 2;
    const uint64_t below = order & ((uint64_t(1) << (4 * pos)) - 1);
    const uint64_t above = order & ~((uint64_t(2) << (4 * pos + 3)) - 1);
    order = above | (below << 4) | way;
  }
  void promote(uint32_t set, uint32_t way) { promote(recency[set], way); }
  static uint64_t fingerprint(uint64_t inBase, uint64_t context) {
    return 0x80 | ((inBase ^ context) * 0x9e3779b97f4a7c15ull) >> 57;
  }
  // Bit 8w+7 set for each way w whose byte in `word` (ways 8*half..) may equal `fp`: every way
  // that does, and perhaps others (a borrow); callers compare the full tag.
  uint64_t candidates(uint32_t set, unsigned half, uint64_t fp) const {
    constexpr uint64_t ONES = 0x0101'0101'0101'0101ull;
    const uint64_t x = fingerprints[2 * size_t(set) + half] ^ (fp * ONES);
    return (x - ONES) & ~x & laneHighs[half];
  }

  uint32_t sets_ = 0, ways_ = 0;
  bool setsArePow2 = true;
  uint32_t count = 0;
  uint32_t globalCount = 0;           // entries with IotlbKey::GLOBAL: none, no global probe
  struct alignas(32) Slot {
    // One way: its tag and entry together (32 bytes, aligned to 32 so that no way straddles two
    // cache lines), so a lookup that compares the tag and reads the entry, or a fill, touches
    // one cache line rather than three arrays.
    uint64_t inBase = 0;
    uint64_t context = 0;             // 0 = invalid way
    IotlbEntry value;
  };
  std::unique_ptr<Slot[]> slots;      // [set * ways + way]; new[] honours the alignment
                                      // (kj::heapArray does not)
  kj::Array<uint64_t> recency;        // per set: nibble n = the way n-th most recently used
  kj::Array<uint64_t> fingerprints;   // per set two words: byte w = way (8 * word + w)'s
                                      // fingerprint(), 0 when invalid
  uint64_t laneHighs[2] = {0, 0};     // bit 8w+7 for each way the word holds
  unsigned halves = 0;                // fingerprint words in use: 1 up to 8 ways, else 2
  uint64_t orderMask = 0;             // the recency nibbles in use
  unsigned lruShift = 0;              // 4 * (ways - 1): the least recent way's nibble
  // What the last lookup() learned on a miss, for the insert() that follows it (after the
  // walk): this set holds neither the own nor the global key, so insert() need not look.
  // Cleared by every change to the contents (a hit, which only reorders, leaves it true).
  // lookupFast() records its misses by fastSizeLog2 (the size; NO_FAST otherwise), with state
  // NONE, sizeLog2 and globalContext unset (no global entries exist), and keeps the key's
  // fingerprint byte, its ways and its tag's bits for fillAfterFastMiss(). A lookup in any
  // other mode finds no fast miss pending: the mode changes only with the contents.
  struct MissHint {
    enum State : uint8_t { NONE, GENERAL };
    static constexpr uint8_t NO_FAST = 0xff;
    State state = NONE;
    uint8_t sizeLog2 = 0;
    uint8_t fastSizeLog2 = NO_FAST;
    uint8_t fingerprint = 0;
    uint32_t set = 0;
    uint64_t inBase = 0, ownContext = 0, globalContext = 0;
    uint64_t tagBits = 0;      // fast miss: the lookup's tag (tagBits())
    Slot* ways = nullptr;      // fast miss: the set's first way
  } hint;
  uint8_t fastLog2 = 0;        // the one entry size when the fast paths apply (updateFast), else 0
  uint32_t sizeCounts[64] = {};
  uint64_t sizesPresent = 0;   // bit n: some entry has sizeLog2 == n
};

// =============================================================================================
// The IOTLB's fast paths, inlined into the translation flow.

inline const IotlbEntry* Iotlb::lookupFast(const IotlbTag& tag, uint64_t inputAddr,
                                           uint8_t* sizeLog2Out) {
  // lookup() under updateFast()'s conditions: one probe of one set for the own key.
  const unsigned sizeLog2 = fastLog2;
  const uint64_t inBase = inputAddr & ~((uint64_t(1) << sizeLog2) - 1);
  const uint32_t set = uint32_t(inputAddr >> sizeLog2) & (sets_ - 1);
  const uint64_t context = contextBase(tag, false) | (uint64_t(sizeLog2) << 32);
  const uint64_t fp = fingerprint(inBase, context);
  constexpr uint64_t ONES = 0x0101'0101'0101'0101ull;
  const uint64_t x = fingerprints[2 * size_t(set)] ^ (fp * ONES);
  Slot* ways = &slots[size_t(set) * ways_];
  for (uint64_t m = (x - ONES) & ~x & laneHighs[0]; m != 0; m &= m - 1) {
    const uint32_t way = unsigned(__builtin_ctzll(m)) >> 3;
    if (ways[way].inBase == inBase && ways[way].context == context) {
      promote(recency[set], way);
      *sizeLog2Out = uint8_t(sizeLog2);
      return &ways[way].value;
    }
  }
  hint.fastSizeLog2 = uint8_t(sizeLog2);  // state stays NONE: nothing else is pending
  hint.ways = ways;
  hint.fingerprint = uint8_t(fp);
  hint.set = set;
  hint.inBase = inBase;
  hint.ownContext = context;
  hint.tagBits = tagBits(tag);
  return nullptr;
}

inline void Iotlb::fillAfterFastMiss(const IotlbEntry& entry) {
  // The fill after lookupFast() missed this non-global key (insert() checked that): the key is
  // not in its set, nothing has changed since, so the fast paths' conditions still hold. Fill
  // the lowest invalid way or evict the least recently used one; the size and global
  // accounting cannot change.
  hint.fastSizeLog2 = MissHint::NO_FAST;
  const uint32_t set = hint.set;
  uint64_t& word = fingerprints[2 * size_t(set)];
  uint64_t& order = recency[set];
  constexpr uint64_t ONES = 0x0101'0101'0101'0101ull;
  const uint64_t invalid = (word - ONES) & ~word & laneHighs[0];  // exact for the lowest
  uint32_t way;
  if (invalid == 0) {
    way = uint32_t(order >> lruShift) & 0xf;
    evictions++;
    order = ((order << 4) & orderMask) | way;  // the least recent becomes the most recent
  } else {
    way = unsigned(__builtin_ctzll(invalid)) >> 3;
    count++;
    sizeCounts[fastLog2]++;
    promote(order, way);
  }
  word = (word & ~(uint64_t(0xff) << (8 * way))) | (uint64_t(hint.fingerprint) << (8 * way));
  Slot& slot = hint.ways[way];
  slot.inBase = hint.inBase;
  slot.context = hint.ownContext;
  slot.value = entry;
}

}  // namespace nb::smmu
