// tests/hw/smmuv3: guest-controlled garbage never reaches an assert. Random STEs, CDs, table
// descriptors, commands, register writes and transactions must only ever produce data
// (translations, faults, aborts, command errors) — never an exception.

#include "smmu-testing.h"
#include <random>

namespace nb::smmu::testing {
namespace {

TEST_CASE("Smmuv3: random structures and commands never throw", "[smmuv3][fuzz]") {
  auto seed = GENERATE(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u);
  DYNAMIC_SECTION("seed " << seed) {
    Features f;
    f.hyp = seed % 2 == 0;
    f.ats = seed % 3 == 0;
    f.oas = seed % 4 == 0 ? 52 : 48;
    f.iotlbEntries = seed % 5 == 0 ? 0 : 64;
    Harness h(f);
    h.setUp(6);
    std::mt19937_64 rng(seed);
    // A pool of memory the random descriptors point into, so walks go deep sometimes.
    const uint64_t pool = h.alloc(1 << 20, 1 << 20);
    auto pointer = [&]() -> uint64_t {
      switch (rng() % 4) {
        case 0: return rng();                                       // anywhere
        case 1: return pool + (rng() % (1 << 20) & ~0xfffull);      // a pool page
        default: return pool + (rng() % (1 << 20) & ~7ull);        // a pool word
      }
    };
    auto word = [&]() -> uint64_t {
      // Mostly plausible descriptors (table/page/block into the pool, AF set), some noise.
      uint64_t w = rng();
      switch (rng() % 4) {
        case 0: return w;
        case 1: return (w & ~mask(51, 12)) | (pointer() & mask(51, 12));
        default:
          return (w & (mask(63, 52) | mask(11, 2))) | PTE_AF | (pointer() & mask(47, 12)) |
                 (rng() % 2 ? 3 : 1);
      }
    };
    for (uint64_t a = pool; a < pool + (1 << 20); a += 8) h.mem().store64(a, word());
    auto flipSomeBits = [&](Words8& w) {
      if (rng() % 3 != 0) return;
      for (unsigned n = 1 + rng() % 3; n > 0; n--) w.w[rng() % 4] ^= 1ull << (rng() % 64);
    };
    auto poolPage = [&]() { return pool + (rng() % 256) * 4096; };
    struct Geometry {
      unsigned shift, ias, sl0;
    };
    static const Geometry S2_GEOMETRIES[] = {{12, 48, 2}, {12, 40, 1}, {12, 32, 1}, {14, 40, 1},
                                             {14, 48, 2}, {16, 48, 2}, {16, 42, 1}};
    for (uint32_t sid = 0; sid < 64; sid++) {
      // CDs: valid ones with random geometry, some damaged.
      uint64_t cdTable = poolPage();
      for (unsigned i = 0; i < 4; i++) {
        CdParams cp;
        cp.pageShift = 12 + 2 * (rng() % 3);
        cp.ias = 25 + rng() % 24;
        cp.ttb0 = poolPage();
        cp.asid = uint16_t(rng());
        cp.ha = rng() % 2;
        cp.hd = rng() % 2;
        Words8 cd = cdS1(cp);
        flipSomeBits(cd);
        h.writeWords(cdTable + i * 64, cd);
      }
      const Geometry& g = S2_GEOMETRIES[rng() % kj::size(S2_GEOMETRIES)];
      S2Params sp;
      sp.pageShift = g.shift;
      sp.ias = g.ias;
      sp.sl0 = g.sl0;
      sp.ttb = poolPage();
      sp.vmid = uint16_t(rng());
      sp.ha = rng() % 2;
      sp.hd = rng() % 2;
      Words8 ste;
      switch (rng() % 4) {
        case 0: ste = steS1(cdTable, rng() % 3, 0, rng() % 3); break;
        case 1: ste = steS2(sp); break;
        case 2: ste = steNested(cdTable, sp, rng() % 3, 0, rng() % 3); break;
        default: ste = steBypass(); break;
      }
      flipSomeBits(ste);
      h.writeSte(sid, ste);
    }
    for (unsigned i = 0; i < 20000; i++) {
      switch (rng() % 16) {
        case 0: {
          // Random commands, legal opcodes mostly.
          static const uint8_t ops[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12,
                                        0x13, 0x20, 0x21, 0x22, 0x23, 0x28, 0x2a, 0x30, 0x40,
                                        0x44, 0x45, 0x46, 0x99};
          Cmd c{(rng() & ~0xffull & ~(1ull << 10)) | ops[rng() % sizeof(ops)], rng()};
          if (rng() % 2) c.dw1 &= mask(63, 12);
          h.submit({c});
          if (h.read32(off::GERROR) != h.read32(off::GERRORN)) {
            h.write32(off::GERRORN, h.read32(off::GERROR));  // acknowledge whatever it was
          }
          uint32_t c2 = h.read32(off::CMDQ_CONS);
          if ((c2 >> 24) != 0) {  // still stuck on the entry: skip it as Linux does
            uint64_t slot = h.cmdq + uint64_t(c2 & 0xff) * 16;
            h.mem().store64(slot, 0x46);
            h.mem().store64(slot + 8, 0);
            h.write32(off::GERRORN, h.read32(off::GERROR));
          }
          break;
        }
        case 1:
          h.smmu.mmioWrite(uint32_t(rng() % 0x20000) & ~3u,
                           rng() % 2 ? rng() : rng() & 0xffff, rng() % 2 ? 4 : 8);
          h.enable();
          break;
        case 2:
          h.mem().store64(pool + (rng() % (1 << 20) & ~7ull), word());
          break;
        default: {
          Transaction t;
          t.sid = rng() % 80;
          if (rng() % 3 == 0) t.ssid = uint32_t(rng() % (1 << 20));
          t.iova = rng() % 4 == 0 ? rng() : rng() & mask(47, 0);
          if (rng() % 2) t.iova &= mask(31, 0) | (pool & ~mask(31, 0));
          t.write = rng() % 2;
          t.priv = rng() % 2;
          t.exec = rng() % 2;
          REQUIRE_NOTHROW(h.smmu.translate(t));
        }
      }
      if (i % 64 == 0) h.drainEvents();
    }
    INFO("walks " << h.stat("walks") << " reads " << h.stat("walk.reads") << " faults "
                  << h.stat("faults") << " cmds " << h.stat("cmdq.consumed"));
    CHECK(h.stat("walk.reads") > 0);
    // The model is still sane afterwards: a fresh bypass STE translates.
    h.write32(off::CR0, 0);
    h.write64(off::STRTAB_BASE, h.strtab);
    h.write32(off::STRTAB_BASE_CFG, 6);
    h.write32(off::GERRORN, h.read32(off::GERROR));
    h.setUpQueues();
    h.enable();
    h.invalidateAll();
    h.writeSte(3, steBypass());
    h.submit({cmdCfgiSte(3), cmdSync()});
    CHECK(expectPa(h.translate(3, 0x1234)) == 0x1234);
  }
}

}  // namespace
}  // namespace nb::smmu::testing
