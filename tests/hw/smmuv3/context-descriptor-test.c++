// tests/hw/smmuv3: CD selection (S1CDMax, S1DSS), linear and two-level CD tables, CD validity
// and VA regions (facts 2.1, 2.5, 3.1).

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

constexpr uint64_t VA = 0x12'3456'7000;

EventId faultId(const TranslateResult& r) { return expectFault(r).id(); }

// One stage-1 context: 4K granule, 48-bit VA, VA -> `pa`.
Words8 makeContext(Harness& h, uint64_t pa, uint16_t asid, uint64_t va = VA) {
  Tables t(h, 12, 48, 0);
  t.map(va, pa, 3, S1_RW);
  CdParams p;
  p.ttb0 = t.root();
  p.asid = asid;
  return cdS1(p);
}

TEST_CASE("Smmuv3: a single CD serves non-substream traffic", "[smmuv3][cd]") {
  Harness h;
  h.setUp();
  uint64_t cd = h.alloc(64, 64);
  uint64_t pa = h.alloc(4096);
  h.writeWords(cd, makeContext(h, pa, 1));
  h.writeSte(2, steS1(cd));
  CHECK(expectPa(h.translate(2, VA + 0x123)) == pa + 0x123);
  SECTION("with S1CDMax = 0 a substream is C_BAD_SUBSTREAMID") {
    NB_REQUIRE_RECORD(expectFault(h.translate(2, VA, false, uint32_t(0))),
                      (Rec{0x08, 2, uint32_t(0)}.make()));
  }
}

TEST_CASE("Smmuv3: S1CDMax and S1DSS select the CD", "[smmuv3][cd]") {
  Harness h;
  h.setUp();
  uint64_t table = h.alloc(16 * 64, 1024);
  uint64_t pa[16];
  for (unsigned i = 0; i < 16; i++) {
    pa[i] = h.alloc(4096);
    h.writeWords(table + i * 64, makeContext(h, pa[i], uint16_t(i + 1)));
  }
  auto dss = GENERATE(0u, 1u, 2u);
  DYNAMIC_SECTION("S1DSS=" << dss) {
    h.writeSte(4, steS1(table, 4, 0, dss));  // 16 CDs, linear
    CHECK(expectPa(h.translate(4, VA, false, 3)) == pa[3]);
    CHECK(expectPa(h.translate(4, VA, false, 15)) == pa[15]);
    NB_REQUIRE_RECORD(expectFault(h.translate(4, VA, false, 16)),
                      (Rec{0x08, 4, uint32_t(16)}.make()));
    auto noSsid = h.translate(4, VA + 8);
    switch (dss) {
      case 0:  // TERMINATE
        NB_REQUIRE_RECORD(expectFault(noSsid), (Rec{0x06, 4}.make()));
        CHECK(expectPa(h.translate(4, VA, false, uint32_t(0))) == pa[0]);
        break;
      case 1:  // BYPASS
        CHECK(expectPa(noSsid) == VA + 8);
        CHECK(expectPa(h.translate(4, VA, false, uint32_t(0))) == pa[0]);
        break;
      case 2:  // SSID0: non-substream traffic uses CD 0, and SSID 0 itself is reserved
        CHECK(expectPa(noSsid) == pa[0] + 8);
        NB_REQUIRE_RECORD(expectFault(h.translate(4, VA, false, uint32_t(0))),
                          (Rec{0x08, 4, uint32_t(0)}.make()));
        break;
    }
  }
}

TEST_CASE("Smmuv3: two-level CD tables", "[smmuv3][cd]") {
  // S1Fmt=1: 4K leaves of 64 CDs; S1Fmt=2: 64K leaves of 1024 CDs (facts 2.1, 2.5).
  auto fmt = GENERATE(1u, 2u);
  DYNAMIC_SECTION("S1Fmt=" << fmt) {
    Harness h;
    h.setUp();
    const unsigned perLeaf = fmt == 1 ? 64 : 1024;
    uint64_t l1 = h.alloc(8 * 64, 64);
    uint64_t leaf = h.alloc(perLeaf * 64, 4096);
    const uint32_t ssid = 3 * perLeaf + 5;
    h.mem().store64(l1 + 3 * 8, leaf | 1);  // V | L2PTR
    uint64_t pa = h.alloc(4096);
    h.writeWords(leaf + 5 * 64, makeContext(h, pa, 9));
    h.writeSte(6, steS1(l1, 16, fmt, 0));
    CHECK(expectPa(h.translate(6, VA + 4, true, ssid)) == pa + 4);
    SECTION("an invalid L1 descriptor is C_BAD_SUBSTREAMID") {
      NB_REQUIRE_RECORD(expectFault(h.translate(6, VA, false, 2 * perLeaf)),
                        (Rec{0x08, 6, uint32_t(2 * perLeaf)}.make()));
    }
    SECTION("an L2 table outside memory is F_CD_FETCH") {
      h.mem().store64(l1 + 1 * 8, 0x77'0000'0000 | 1);
      Rec r{0x09, 6, uint32_t(perLeaf + 2)};
      r.dw3 = fetchField(0x77'0000'0000 + 2 * 64);
      NB_REQUIRE_RECORD(expectFault(h.translate(6, VA, false, perLeaf + 2)), r.make());
    }
  }
}

TEST_CASE("Smmuv3: a CD table outside memory is F_CD_FETCH", "[smmuv3][cd]") {
  Harness h;
  h.setUp();
  h.writeSte(2, steS1(0x33'0000'0000, 2));
  Rec r{0x09, 2, uint32_t(3)};
  r.dw3 = fetchField(0x33'0000'0000 + 3 * 64);
  NB_REQUIRE_RECORD(expectFault(h.translate(2, VA, false, 3)), r.make());
}

TEST_CASE("Smmuv3: illegal CDs are C_BAD_CD", "[smmuv3][cd]") {
  struct Row {
    const char* name;
    uint64_t clear, set;  // dw0 changes
    Features features;
  };
  Features def, no64k;
  no64k.gran64k = false;
  auto row = GENERATE_COPY(values<Row>({
      {"V=0", 1ull << 31, 0, def},
      {"AA64=0", 1ull << 41, 0, def},
      {"ENDI=1", 0, 1ull << 15, def},
      {"S=1 without stalls", 0, 1ull << 44, def},
      {"TG0 reserved", 0, 3ull << 6, def},
      {"TG0 64K unsupported", 0, 1ull << 6, no64k},
      {"T0SZ below 16", 0x3f, 15, def},
      {"T0SZ above 39", 0x3f, 40, def},
      {"TG1 reserved with EPD1=0", 1ull << 30, 0, def},
  }));
  DYNAMIC_SECTION(row.name) {
    Harness h(row.features);
    h.setUp();
    uint64_t cd = h.alloc(64, 64);
    Words8 w = makeContext(h, h.alloc(4096), 1);
    w.w[0] = (w.w[0] & ~row.clear) | row.set;
    h.writeWords(cd, w);
    h.writeSte(2, steS1(cd, 1, 0, 2));
    NB_REQUIRE_RECORD(expectFault(h.translate(2, VA, true, 1)),
                      (Rec{0x0a, 2, uint32_t(1)}.make()));
    NB_REQUIRE_RECORD(expectFault(h.translate(2, VA, true)), (Rec{0x0a, 2}.make()));
  }
}

TEST_CASE("Smmuv3: stage-1 VA regions, EPDx and top-byte-ignore", "[smmuv3][cd]") {
  Harness h;
  h.setUp();
  uint64_t cdAddr = h.alloc(64, 64);
  const uint64_t HIGH_VA = 0xffff'ff80'0000'1000;  // TTB1 region, 39-bit
  Tables t0(h, 12, 48, 0), t1(h, 12, 39, 1);
  uint64_t pa0 = h.alloc(4096), pa1 = h.alloc(4096);
  t0.map(VA, pa0, 3, S1_RW);
  t1.map(HIGH_VA, pa1, 3, S1_RW);
  CdParams p;
  p.ttb0 = t0.root();
  Words8 cd = cdS1(p);
  cd.w[0] = (cd.w[0] & ~((1ull << 30) | mask(23, 16))) | (uint64_t(64 - 39) << 16) |
            (2ull << 22);  // EPD1 = 0, T1SZ = 25, TG1 = 4K
  cd.w[2] = t1.root();
  h.writeSte(2, steS1(cdAddr));

  SECTION("TTB0 and TTB1") {
    h.writeWords(cdAddr, cd);
    CHECK(expectPa(h.translate(2, VA)) == pa0);
    CHECK(expectPa(h.translate(2, HIGH_VA + 0x10)) == pa1 + 0x10);
    // Outside both regions: bits above the region's size are neither all 0 nor all 1.
    CHECK(faultId(h.translate(2, 0x0001'0000'0000'0000)) == EventId::F_TRANSLATION);
    CHECK(faultId(h.translate(2, 0xff00'0000'0000'1000)) == EventId::F_TRANSLATION);
    // Without TBI a tagged pointer is outside the region.
    CHECK(faultId(h.translate(2, VA | (0x5aull << 56))) == EventId::F_TRANSLATION);
  }
  SECTION("TBI0 ignores the top byte") {
    cd.w[0] |= 1ull << 38;
    h.writeWords(cdAddr, cd);
    CHECK(expectPa(h.translate(2, VA | (0x5aull << 56))) == pa0);
  }
  SECTION("EPD0 = 1 disables TTB0 walks") {
    cd.w[0] |= 1ull << 14;
    h.writeWords(cdAddr, cd);
    Rec r{0x10, 2};
    r.rnw = true;
    r.cls = 2;
    r.input = VA;
    NB_REQUIRE_RECORD(expectFault(h.translate(2, VA)), r.make());
    CHECK(expectPa(h.translate(2, HIGH_VA)) == pa1);
  }
}

}  // namespace
}  // namespace nb::smmu::testing
