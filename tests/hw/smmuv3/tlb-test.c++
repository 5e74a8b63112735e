// tests/hw/smmuv3: cache storage and capacity — FlatCache against a reference map, IOTLB
// replacement, and the model with its caches turned off.

#include "smmu-testing.h"
#include "hw/smmuv3/flat-cache.h"
#include <map>
#include <random>

namespace nb::smmu::testing {
namespace {

struct BadHash {
  // Few buckets: long probe chains exercise backward-shift deletion.
  size_t operator()(uint32_t k) const { return k % 7; }
};

TEST_CASE("FlatCache: agrees with a reference map under random operations", "[smmuv3][tlb]") {
  auto capacity = GENERATE(1u, 5u, 64u);
  DYNAMIC_SECTION("capacity " << capacity) {
    FlatCache<uint32_t, uint32_t, BadHash> cache(capacity);
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
  CHECK(h.stat("iotlb.evictions") >= 64 * 3 - 8);
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
