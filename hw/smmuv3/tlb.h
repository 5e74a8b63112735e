// hw/smmuv3: the SMMU's caches — configuration cache (STEs, CDs) and the IOTLB.
//
// Owns: what is cached, how entries are tagged, and the invalidation primitives that give each
// CMD_CFGI_* / CMD_TLBI_* command exactly its architected scope (the command-to-scope mapping is
// in cmdq.c++). Entries are decoded configs and leaf translations; walk caches (non-leaf
// entries) are not modelled, so LEAF=0 invalidations have nothing extra to remove.
// Does not own: fetching or walking (stream-table.h, context-descriptor.h, walk.h).

#pragma once

#include "hw/smmuv3/context-descriptor.h"
#include "hw/smmuv3/flat-cache.h"
#include "hw/smmuv3/stream-table.h"
#include "hw/smmuv3/walk.h"
#include <cstdint>

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
  FlatCache<uint32_t, SteConfig, SidHash> stes;
  FlatCache<uint64_t, CdConfig, CdHash> cds;
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
public:
  explicit Iotlb(uint32_t entries) : table(entries) {}

  const IotlbEntry* lookup(const IotlbTag& tag, uint64_t inputAddr, uint8_t* sizeLog2Out);
  // The entry covering `inputAddr` in `tag`'s context (non-global first, then global for VA
  // space), or null. Counts nothing: the caller decides whether the entry serves the access.
  void insert(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global,
              const IotlbEntry& entry);
  size_t invalidate(const IotlbScope& scope);
  // Removes exactly the entries in scope; returns how many.
  size_t invalidateAll();

  uint32_t capacity() const { return table.capacity(); }
  uint32_t size() const { return table.size(); }
  uint64_t evictions = 0;

private:
  struct KeyHash {
    size_t operator()(const IotlbKey& k) const {
      return mixHash(k.inBase ^ (uint64_t(k.vmid) << 48) ^ (uint64_t(k.asid) << 32) ^
                     (uint64_t(k.sizeLog2) << 8) ^ k.flags);
    }
  };
  static IotlbKey makeKey(const IotlbTag& tag, uint64_t inputAddr, uint8_t sizeLog2, bool global);
  bool inScope(const IotlbScope& scope, const IotlbKey& key, const IotlbEntry& entry) const;
  void noteInserted(uint8_t sizeLog2);
  void noteRemoved(uint8_t sizeLog2);
  size_t eraseKey(const IotlbKey& key);

  FlatCache<IotlbKey, IotlbEntry, KeyHash> table;
  uint32_t sizeCounts[64] = {};
  uint64_t sizesPresent = 0;   // bit n: some entry has sizeLog2 == n
};

}  // namespace nb::smmu
