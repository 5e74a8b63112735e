// tests/hw/smmuv3: cache storage and capacity — SetCache (the configuration cache's storage)
// against a reference map and in LRU order, the IOTLB's
// organisation (sets x ways, per-set LRU, invalidation freeing ways; expected contents derived
// by hand from set = page number mod sets), and the model with its caches turned off.

#include "smmu-testing.h"
#include "hw/smmuv3/set-cache.h"
#include <map>
#include <random>
#include <vector>

namespace nb::smmu::testing {
namespace {

struct BadHash {
  // Few distinct hashes: most sets stay empty and the rest overflow.
  size_t operator()(uint32_t k) const { return k % 7; }
};

struct Identity {
  size_t operator()(uint32_t k) const { return k; }
};

TEST_CASE("SetCache: agrees with a reference map under random operations", "[smmuv3][tlb]") {
  auto capacity = GENERATE(1u, 5u, 12u, 64u);
  DYNAMIC_SECTION("capacity " << capacity) {
    SetCache<uint32_t, uint32_t, BadHash> cache(capacity);
    std::map<uint32_t, uint32_t> ref;
    std::mt19937 rng(capacity);
    for (unsigned step = 0; step < 20000; step++) {
      uint32_t key = rng() % 100;
      switch (rng() % 4) {
        case 0:
        case 1: {
          uint32_t evicted = 0;
          bool wasEvicted = false;
          cache.insert(key, step, &evicted, &wasEvicted);
          if (wasEvicted) {
            REQUIRE(ref.count(evicted) == 1);
            ref.erase(evicted);
          }
          ref[key] = step;
          break;
        }
        case 2:
          REQUIRE(cache.erase(key) == (ref.erase(key) == 1));
          break;
        case 3:
          cache.eraseIf([&](uint32_t k, uint32_t) { return k % 13 == key % 13; });
          for (auto it = ref.begin(); it != ref.end();) {
            it = it->first % 13 == key % 13 ? ref.erase(it) : std::next(it);
          }
          break;
      }
      REQUIRE(cache.size() == ref.size());
      REQUIRE(cache.size() <= capacity);
      for (uint32_t k = 0; k < 100; k++) {
        uint32_t* v = cache.find(k);
        auto it = ref.find(k);
        REQUIRE((v != nullptr) == (it != ref.end()));
        if (v != nullptr) REQUIRE(*v == it->second);
      }
    }
  }
}

TEST_CASE("SetCache: ways are the largest of 8, 4, 2, 1 dividing the capacity; LRU per set",
          "[smmuv3][tlb]") {
  CHECK(SetCache<uint32_t, uint32_t, Identity>(1024).ways() == 8);
  CHECK(SetCache<uint32_t, uint32_t, Identity>(12).ways() == 4);
  CHECK(SetCache<uint32_t, uint32_t, Identity>(6).ways() == 2);
  CHECK(SetCache<uint32_t, uint32_t, Identity>(5).ways() == 1);
  // 12 entries: 3 sets x 4 ways, key k in set k mod 3; 0, 3, 6, 9 fill set 0.
  SetCache<uint32_t, uint32_t, Identity> cache(12);
  for (uint32_t k : {0u, 3u, 6u, 9u, 1u, 2u}) cache.insert(k, k + 100);
  REQUIRE(cache.find(0) != nullptr);   // 0 is now set 0's most recent; 3 its least
  uint32_t victim = 0;
  bool evicted = false;
  cache.insert(12, 112, &victim, &evicted);
  CHECK(evicted);
  CHECK(victim == 3);
  CHECK(cache.find(3) == nullptr);
  CHECK(*cache.find(0) == 100);
  CHECK(*cache.find(12) == 112);
  CHECK(cache.size() == 6);
  // An erased way is the next fill's: no eviction.
  CHECK(cache.erase(6));
  evicted = false;
  cache.insert(15, 115, &victim, &evicted);
  CHECK(!evicted);
  CHECK(*cache.find(9) == 109);
  CHECK(*cache.find(1) == 101);
}

// ---- The IOTLB's organisation, on the class itself: 4K pages of one context unless noted.

IotlbTag ctx(uint16_t asid = 1, uint16_t vmid = 0) {
  IotlbTag t;
  t.asid = asid;
  t.vmid = vmid;
  return t;
}

IotlbEntry leafTo(uint64_t pa) {
  IotlbEntry e;
  e.outBase = pa;
  e.s1Level = 3;
  return e;
}

void put(Iotlb& tlb, uint64_t page, IotlbTag tag = ctx()) {
  tlb.insert(tag, page << 12, 12, false, leafTo(0x8000'0000 + (page << 12)));
}

bool has(Iotlb& tlb, uint64_t page, IotlbTag tag = ctx()) {
  uint8_t sizeLog2 = 0;
  const IotlbEntry* e = tlb.lookup(tag, (page << 12) + 0x123, &sizeLog2);
  if (e == nullptr) return false;
  CHECK(sizeLog2 == 12);
  CHECK(e->outBase == 0x8000'0000 + (page << 12));
  return true;
}

TEST_CASE("Iotlb: entries = sets x ways; the ways are capped at the entries",
          "[smmuv3][tlb]") {
  struct Row {
    uint32_t entries, ways, sets, effectiveWays;
  };
  auto row = GENERATE(Row{4096, 8, 512, 8}, Row{256, 4, 64, 4}, Row{16, 16, 1, 16},
                      Row{24, 8, 3, 8}, Row{1, 8, 1, 1}, Row{4, 8, 1, 4}, Row{0, 8, 0, 0});
  Iotlb tlb(row.entries, row.ways);
  CHECK(tlb.capacity() == row.entries);
  CHECK(tlb.sets() == row.sets);
  CHECK(tlb.ways() == row.effectiveWays);
  CHECK_THROWS(Iotlb(12, 8));   // 12 is no multiple of 8
  CHECK_THROWS(Iotlb(64, 32));  // at most 16 ways
}

TEST_CASE("Iotlb: a working set of exactly the capacity fits when it fills every set evenly",
          "[smmuv3][tlb]") {
  Iotlb tlb(16, 4);  // 4 sets x 4 ways; page p -> set p mod 4
  for (uint64_t p = 0; p < 16; p++) put(tlb, p);
  CHECK(tlb.size() == 16);
  CHECK(tlb.evictions == 0);
  for (uint64_t p = 0; p < 16; p++) CHECK(has(tlb, p));
  // Page 16 is set 0's fifth: set 0 holds 0, 4, 8, 12, last used in that order (the lookups
  // above went 0..15), so page 0 goes; the other sets are untouched.
  put(tlb, 16);
  CHECK(tlb.size() == 16);
  CHECK(tlb.evictions == 1);
  CHECK(!has(tlb, 0));
  for (uint64_t p = 1; p <= 16; p++) CHECK(has(tlb, p));
}

TEST_CASE("Iotlb: pages that share a set evict each other in LRU order", "[smmuv3][tlb]") {
  Iotlb tlb(8, 2);  // 4 sets x 2 ways; pages 0, 4, 8, 12 share set 0
  put(tlb, 1);
  put(tlb, 2);
  put(tlb, 3);
  put(tlb, 0);
  put(tlb, 4);
  CHECK(has(tlb, 0));  // 0 is now more recent than 4
  put(tlb, 8);         // evicts 4
  CHECK(tlb.evictions == 1);
  CHECK(!has(tlb, 4));
  CHECK(has(tlb, 8));
  CHECK(has(tlb, 0));  // order of use: 8, then 0
  put(tlb, 12);        // evicts 8
  CHECK(tlb.evictions == 2);
  CHECK(!has(tlb, 8));
  CHECK(has(tlb, 0));
  CHECK(has(tlb, 12));
  // Re-inserting a present key replaces it in place: no eviction, it becomes most recent.
  put(tlb, 0);
  put(tlb, 4);         // evicts 12, not 0
  CHECK(tlb.evictions == 3);
  CHECK(!has(tlb, 12));
  CHECK(has(tlb, 0));
  // The other sets never lost anything.
  CHECK(has(tlb, 1));
  CHECK(has(tlb, 2));
  CHECK(has(tlb, 3));
  CHECK(tlb.size() == 5);
}

TEST_CASE("Iotlb: the set comes from the input address alone, so contexts and sizes compete",
          "[smmuv3][tlb]") {
  Iotlb tlb(8, 2);  // 4 sets x 2 ways
  put(tlb, 4, ctx(1));
  put(tlb, 4, ctx(2));
  CHECK(has(tlb, 4, ctx(1)));
  put(tlb, 4, ctx(3));  // same page, third ASID: set 0 is full, ASID 2 was least recent
  CHECK(tlb.evictions == 1);
  CHECK(!has(tlb, 4, ctx(2)));
  CHECK(has(tlb, 4, ctx(1)));
  CHECK(has(tlb, 4, ctx(3)));
  // A 2M block at 0x4020'0000: block number 0x201 -> set 1; it evicts nothing.
  tlb.insert(ctx(1), 0x4020'0000, 21, false, leafTo(0x1'0000'0000));
  CHECK(tlb.evictions == 1);
  uint8_t sizeLog2 = 0;
  const IotlbEntry* e = tlb.lookup(ctx(1), 0x4020'0000 + 0x1234'5, &sizeLog2);
  REQUIRE(e != nullptr);
  CHECK(sizeLog2 == 21);
  CHECK(e->outBase == 0x1'0000'0000);
  // A global entry is found from any ASID, in the set its page indexes (page 5 -> set 1).
  tlb.insert(ctx(9), 5 << 12, 12, true, leafTo(0x9000'0000));
  e = tlb.lookup(ctx(7), (5 << 12) + 8, &sizeLog2);
  REQUIRE(e != nullptr);
  CHECK(e->outBase == 0x9000'0000);
  // Set 1 now holds the block and the global page: a third entry there evicts the block, the
  // least recently used.
  put(tlb, 1);
  CHECK(tlb.evictions == 2);
  CHECK(tlb.lookup(ctx(1), 0x4020'0000, &sizeLog2) == nullptr);
}

TEST_CASE("Iotlb: invalidation frees ways, and a set with a free way evicts nothing",
          "[smmuv3][tlb]") {
  Iotlb tlb(8, 2);  // 4 sets x 2 ways
  put(tlb, 0);
  put(tlb, 4);
  put(tlb, 1, ctx(2));
  put(tlb, 5, ctx(2));
  IotlbScope one;
  one.kinds = uint8_t(TranslationKind::S1_ONLY);
  one.vmid = uint16_t(0);
  one.asidMatch = IotlbScope::Asid::MATCH_OR_GLOBAL;
  one.asid = 1;
  one.ranged = true;
  one.addr = 0x0;  // page 0 of ASID 1
  CHECK(tlb.invalidate(one) == 1);
  CHECK(tlb.size() == 3);
  put(tlb, 8);  // set 0 had a free way
  CHECK(tlb.evictions == 0);
  CHECK(has(tlb, 4));
  CHECK(has(tlb, 8));
  CHECK(!has(tlb, 0));
  // ASID 2's entries, wherever they are (a scan of every way): pages 1 and 5.
  IotlbScope asid2;
  asid2.kinds = uint8_t(TranslationKind::S1_ONLY);
  asid2.vmid = uint16_t(0);
  asid2.asidMatch = IotlbScope::Asid::NON_GLOBAL;
  asid2.asid = 2;
  CHECK(tlb.invalidate(asid2) == 2);
  CHECK(tlb.size() == 2);
  put(tlb, 9);
  put(tlb, 13);  // set 1 is empty again: two inserts, no eviction
  CHECK(tlb.evictions == 0);
  CHECK(tlb.invalidateAll() == 4);
  CHECK(tlb.size() == 0);
  CHECK(!has(tlb, 4));
}

TEST_CASE("Iotlb: a fill uses what the last miss learned only for that miss's key",
          "[smmuv3][tlb]") {
  // A miss remembers its set for the fill after the walk. A fill of another context's key for
  // the same page, or of a global key, or one after hits and a walk that filled nothing, must
  // still be stored under its own key and evict nothing while the set has room.
  Iotlb tlb(64, 8);  // 8 sets: pages 1, 9, 17 and 25 share set 1
  put(tlb, 1);       // one size present, no global entries: the fast paths
  CHECK_FALSE(has(tlb, 9));           // miss: asid 1, page 9
  put(tlb, 9, ctx(2));                // fill asid 2's page 9 instead
  CHECK(has(tlb, 9, ctx(2)));
  CHECK_FALSE(has(tlb, 9));           // asid 1's page 9 was never filled
  CHECK(has(tlb, 1));                 // a hit between the miss and its fill
  put(tlb, 9);
  CHECK(has(tlb, 9));
  CHECK(has(tlb, 9, ctx(2)));
  CHECK_FALSE(has(tlb, 17));          // miss, then a global fill of the same page
  tlb.insert(ctx(), 17 << 12, 12, true, leafTo(0x8000'0000 + (17 << 12)));
  CHECK(has(tlb, 17, ctx(3)));        // global: any ASID
  CHECK_FALSE(has(tlb, 25, ctx(1, 4)));  // miss in VMID 4, then a fill in VMID 5
  put(tlb, 25, ctx(1, 5));
  CHECK(has(tlb, 25, ctx(1, 5)));
  CHECK_FALSE(has(tlb, 25, ctx(1, 4)));
  CHECK(tlb.size() == 5);
  CHECK(tlb.evictions == 0);
}

TEST_CASE("Iotlb: a set count that is no power of two indexes by the remainder",
          "[smmuv3][tlb]") {
  Iotlb tlb(24, 8);  // 3 sets x 8 ways; pages 0, 3, 6, ... share set 0
  for (uint64_t i = 0; i < 9; i++) put(tlb, 3 * i);
  CHECK(tlb.evictions == 1);  // the ninth page of set 0 evicted the first
  CHECK(!has(tlb, 0));
  for (uint64_t i = 1; i < 9; i++) CHECK(has(tlb, 3 * i));
  for (uint64_t p : {1, 2, 4, 5, 7, 8}) put(tlb, p);
  CHECK(tlb.evictions == 1);
}

// A reference IOTLB for the random test: per set, the keys most recent first (what set-
// associative LRU keeps, without way numbers), filled and probed as Iotlb's contract says.
struct ReferenceIotlb {
  struct Key {
    uint64_t inBase;
    uint16_t asid;  // 0 for a global entry
    uint8_t sizeLog2;
    bool global;
    bool operator==(const Key& o) const {
      return inBase == o.inBase && asid == o.asid && sizeLog2 == o.sizeLog2 && global == o.global;
    }
  };
  struct Way {
    Key key;
    uint64_t outBase;
  };
  uint32_t sets, ways;
  std::vector<std::vector<Way>> order;  // [set], most recent first
  uint64_t evictions = 0;

  ReferenceIotlb(uint32_t entries, uint32_t ways)
      : sets(entries / ways), ways(ways), order(entries / ways) {}
  uint32_t setOf(uint64_t addr, uint8_t sizeLog2) const {
    return uint32_t((addr >> sizeLog2) % sets);
  }
  size_t size() const {
    size_t n = 0;
    for (auto& s : order) n += s.size();
    return n;
  }
  bool hasSize(uint8_t sizeLog2) const {
    for (auto& s : order) {
      for (auto& w : s) {
        if (w.key.sizeLog2 == sizeLog2) return true;
      }
    }
    return false;
  }
  const Way* lookup(uint16_t asid, uint64_t addr) {
    for (uint8_t sizeLog2 : {12, 21}) {
      if (!hasSize(sizeLog2)) continue;
      const uint64_t inBase = addr & ~((uint64_t(1) << sizeLog2) - 1);
      auto& set = order[setOf(addr, sizeLog2)];
      for (const Key& want : {Key{inBase, asid, sizeLog2, false}, Key{inBase, 0, sizeLog2, true}}) {
        for (size_t i = 0; i < set.size(); i++) {
          if (set[i].key == want) {
            Way w = set[i];
            set.erase(set.begin() + i);
            set.insert(set.begin(), w);
            return &set.front();
          }
        }
      }
    }
    return nullptr;
  }
  void insert(uint16_t asid, uint64_t addr, uint8_t sizeLog2, bool global, uint64_t outBase) {
    const Key key{addr & ~((uint64_t(1) << sizeLog2) - 1), global ? uint16_t(0) : asid,
                  sizeLog2, global};
    auto& set = order[setOf(addr, sizeLog2)];
    for (size_t i = 0; i < set.size(); i++) {
      if (set[i].key == key) set.erase(set.begin() + i);  // replaced in place
    }
    if (set.size() == ways) {
      set.pop_back();
      evictions++;
    }
    set.insert(set.begin(), Way{key, outBase});
  }
  size_t invalidatePage(uint64_t addr) {
    // Every entry, any ASID, whose block contains addr.
    size_t n = 0;
    for (auto& set : order) {
      for (size_t i = 0; i < set.size();) {
        const Key& k = set[i].key;
        if (k.inBase == (addr & ~((uint64_t(1) << k.sizeLog2) - 1))) {
          set.erase(set.begin() + i);
          n++;
        } else {
          i++;
        }
      }
    }
    return n;
  }
};

TEST_CASE("Iotlb: agrees with a reference LRU under random lookups, fills and invalidations",
          "[smmuv3][tlb]") {
  // Organisations with one and two fingerprint words, power-of-two and other set counts; pages
  // in a small range so that sets overflow; 4K pages only (the one-size paths) or with 2M
  // blocks and global entries mixed in (the general paths).
  struct Org {
    uint32_t entries, ways;
    bool mixed;
  };
  auto org = GENERATE(Org{64, 8, false}, Org{64, 8, true}, Org{32, 4, false}, Org{64, 16, false},
                      Org{64, 16, true}, Org{24, 8, false}, Org{24, 8, true}, Org{8, 1, false},
                      Org{8, 2, true});
  INFO("entries " << org.entries << " ways " << org.ways << (org.mixed ? " mixed" : ""));
  Iotlb tlb(org.entries, org.ways);
  ReferenceIotlb ref(org.entries, org.ways);
  std::mt19937_64 rng(org.entries * 131 + org.ways * 7 + org.mixed);
  for (int step = 0; step < 20000; step++) {
    const uint16_t asid = uint16_t(1 + rng() % 2);
    const bool block = org.mixed && rng() % 8 == 0;
    const uint8_t sizeLog2 = block ? 21 : 12;
    const uint64_t addr = block ? (rng() % 4) << 21 : (rng() % 256) << 12 | (rng() & 0xff8);
    const bool global = org.mixed && rng() % 4 == 0;
    const uint64_t outBase = 0x1'0000'0000 + (rng() % 1024 << 21);
    const unsigned op = unsigned(rng() % 10);
    if (op < 7) {
      // What the SMMU does: a lookup, and on a miss a fill of the walk's leaf.
      uint8_t got = 0;
      const IotlbEntry* e = tlb.lookup(ctx(asid), addr, &got);
      const ReferenceIotlb::Way* w = ref.lookup(asid, addr);
      REQUIRE((e != nullptr) == (w != nullptr));
      if (e != nullptr) {
        CHECK(e->outBase == w->outBase);
        CHECK(got == w->key.sizeLog2);
      } else if (rng() % 8 != 0) {
        tlb.insert(ctx(asid), addr, sizeLog2, global, leafTo(outBase));
        ref.insert(asid, addr, sizeLog2, global, outBase);
      }
      // Else the walk faulted: nothing is filled, and what the miss learned must not mislead
      // a later fill after hits in between.
    } else if (op < 9) {
      // A fill without a lookup before it (may replace a present key).
      tlb.insert(ctx(asid), addr, sizeLog2, global, leafTo(outBase));
      ref.insert(asid, addr, sizeLog2, global, outBase);
    } else {
      IotlbScope page;
      page.kinds = uint8_t(TranslationKind::S1_ONLY);
      page.ranged = true;
      page.addr = addr;
      CHECK(tlb.invalidate(page) == ref.invalidatePage(addr));
    }
    REQUIRE(tlb.size() == ref.size());
    REQUIRE(tlb.evictions == ref.evictions);
  }
}

// SID 1: S1, 4K pages 0x1000.. (count pages), each VA -> data + VA.
struct Pages {
  Pages(Harness& h, unsigned count) : t(h, 12, 48, 0) {
    data = h.alloc(uint64_t(count) * 4096);
    for (unsigned i = 0; i < count; i++) t.map(0x1000 + i * 4096ull, data + i * 4096ull, 3, S1_RW);
    uint64_t cd = h.alloc(64, 64);
    CdParams p;
    p.ttb0 = t.root();
    h.writeWords(cd, cdS1(p));
    h.writeSte(1, steS1(cd));
  }
  Tables t;
  uint64_t data;
};

TEST_CASE("Smmuv3: the IOTLB replaces entries when full", "[smmuv3][tlb]") {
  Features f;
  f.iotlbEntries = 8;
  Harness h(f);
  h.setUp();
  Pages p(h, 64);
  for (unsigned round = 0; round < 3; round++) {
    for (unsigned i = 0; i < 64; i++) {
      CHECK(expectPa(h.translate(1, 0x1000 + i * 4096ull + 4)) == p.data + i * 4096ull + 4);
    }
  }
  CHECK(h.stat("iotlb.entries") == 8);
  // 8 entries, 8 ways: one fully associative LRU set. Cycling 64 pages through it, every access
  // misses and every insert after the first 8 evicts.
  CHECK(h.stat("iotlb.hits") == 0);
  CHECK(h.stat("iotlb.evictions") == 64 * 3 - 8);
  // Invalidation still finds whatever is cached.
  h.submit({cmdTlbi(0x11, 0, 1), cmdSync()});
  CHECK(h.stat("iotlb.entries") == 0);
}

TEST_CASE("Smmuv3: without caches every translation fetches and walks", "[smmuv3][tlb]") {
  Features f;
  f.iotlbEntries = 0;
  f.configCacheEntries = 0;
  Harness h(f);
  h.setUp();
  Pages p(h, 4);
  for (unsigned i = 0; i < 10; i++) CHECK(expectPa(h.translate(1, 0x2008)) == p.data + 0x1008);
  CHECK(h.stat("walks") == 10);
  CHECK(h.stat("iotlb.hits") == 0);
  CHECK(h.stat("cfg.ste_misses") == 10);
  CHECK(h.stat("cfg.cd_misses") == 10);
  // Commands still work on empty caches.
  h.submit({cmdCfgiSte(1), cmdTlbi(0x30), cmdSync()});
  CHECK((h.read32(off::CMDQ_CONS) >> 24) == 0);
}

TEST_CASE("Smmuv3: an IOTLB hit needs the access to be permitted", "[smmuv3][tlb]") {
  Harness h;
  h.setUp();
  Tables t(h, 12, 48, 0);
  uint64_t pa = h.alloc(4096);
  t.map(0x1000, pa, 3, S1_RW | PTE_AP_RDONLY);
  uint64_t cd = h.alloc(64, 64);
  CdParams p;
  p.ttb0 = t.root();
  h.writeWords(cd, cdS1(p));
  h.writeSte(1, steS1(cd));
  CHECK(expectPa(h.translate(1, 0x1000)) == pa);
  CHECK(h.stat("iotlb.hits") == 0);
  CHECK(expectPa(h.translate(1, 0x1000)) == pa);
  CHECK(h.stat("iotlb.hits") == 1);
  // A write is not served by the read-only entry: the walk decides (permission fault).
  CHECK(expectFault(h.translate(1, 0x1000, true)).id() == EventId::F_PERMISSION);
}

}  // namespace
}  // namespace nb::smmu::testing
