// tests/hw/smmuv3: stream table fetch (linear, two-level) and STE validity (facts 2.1, 3.1).

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

EventId faultId(const TranslateResult& r) { return expectFault(r).id(); }

TEST_CASE("Smmuv3: linear stream table", "[smmuv3][ste]") {
  Harness h;
  h.setUp(4);  // 16 STEs
  h.writeSte(3, steBypass());
  h.writeSte(4, steAbort());
  CHECK(expectPa(h.translate(3, 0xdead000)) == 0xdead000);
  auto aborted = h.translate(4, 0x1000);
  REQUIRE(aborted.is<TranslateAbort>());
  CHECK(aborted.get<TranslateAbort>().cause == AbortCause::STE_ABORT);
  CHECK(h.drainEvents().size() == 0);  // an abort STE aborts silently

  SECTION("a SID beyond the table is C_BAD_STREAMID") {
    NB_REQUIRE_RECORD(expectFault(h.translate(16, 0x1000)), (Rec{0x02, 16}.make()));
    NB_REQUIRE_RECORD(expectFault(h.translate(0xffffffff, 0x1000)),
                      (Rec{0x02, 0xffffffff}.make()));
  }
  SECTION("Config values with bit 2 clear abort") {
    for (uint64_t config : {1, 2, 3}) {
      Words8 s;
      s.w[0] = 1 | (config << 1);
      h.writeSte(5, s);
      h.invalidateAll();
      CHECK(h.translate(5, 0x1000).is<TranslateAbort>());
    }
  }
}

TEST_CASE("Smmuv3: two-level stream table", "[smmuv3][ste]") {
  Harness h;
  // Facts 2.1: FMT=1, SPLIT=8, LOG2SIZE=16 -> 256 L1 descriptors of 256 STEs each.
  uint64_t l1 = h.alloc(256 * 8, 4096);
  h.write64(off::STRTAB_BASE, l1);
  h.write32(off::STRTAB_BASE_CFG, (1u << 16) | (8u << 6) | 16);
  h.setUpQueues();
  h.enable();
  uint64_t l2a = h.alloc(256 * 64, 4096);
  uint64_t l2b = h.alloc(2 * 64, 64);
  h.mem().store64(l1 + 1 * 8, l2a | 9);  // SPAN = 9: 256 STEs
  h.mem().store64(l1 + 3 * 8, l2b | 2);  // SPAN = 2: 2 STEs
  h.writeWords(l2a + 0x05 * 64, steBypass());
  h.writeWords(l2b + 0x01 * 64, steBypass());

  CHECK(expectPa(h.translate(0x105, 0x4000)) == 0x4000);
  CHECK(expectPa(h.translate(0x301, 0x4000)) == 0x4000);
  CHECK(faultId(h.translate(0x106, 0x4000)) == EventId::C_BAD_STE);        // V = 0
  NB_REQUIRE_RECORD(expectFault(h.translate(0x205, 0x4000)), (Rec{0x02, 0x205}.make()));
  NB_REQUIRE_RECORD(expectFault(h.translate(0x302, 0x4000)), (Rec{0x02, 0x302}.make()));
  NB_REQUIRE_RECORD(expectFault(h.translate(0x10000, 0x4000)), (Rec{0x02, 0x10000}.make()));
  SECTION("an L2 table outside memory is F_STE_FETCH") {
    h.mem().store64(l1 + 4 * 8, 0x10'0000'0000 | 9);
    Rec r{0x03, 0x407};
    r.dw3 = fetchField(0x10'0000'0000 + 7 * 64);
    NB_REQUIRE_RECORD(expectFault(h.translate(0x407, 0)), r.make());
  }
  SECTION("an L1 table outside memory is F_STE_FETCH") {
    h.write32(off::CR0, 0);
    h.write64(off::STRTAB_BASE, 0x20'0000'0000);
    h.enable();
    h.invalidateAll();  // disabling the SMMU does not empty its caches
    Rec r{0x03, 0x105};
    r.dw3 = fetchField(0x20'0000'0000 + 8);
    NB_REQUIRE_RECORD(expectFault(h.translate(0x105, 0)), r.make());
  }
}

TEST_CASE("Smmuv3: a two-level L1 descriptor's SPAN decides which SIDs exist",
          "[smmuv3][ste][conformance]") {
  // IHI 0070 §3.3.2 (L1STD: SPAN[4:0], L2Ptr[51:6]; the L2 table holds 2^(SPAN-1) STEs; SPAN 0
  // is invalid) and §6.3.25 (STRTAB_BASE_CFG.SPLIT): a SPAN above SPLIT + 1 is out of range,
  // and 12..31 are reserved (SPLIT is at most 10 here, so those are above SPLIT + 1 too). An
  // invalid or out-of-range descriptor makes every SID under it C_BAD_STREAMID (§7.3.2).
  struct Row {
    const char* name;
    unsigned split;
    uint64_t span;
    uint32_t l2Index;   // the SID's index within its L2 table
    bool valid;
  };
  auto row = GENERATE(values<Row>({
      {"SPAN 0: invalid descriptor", 8, 0, 0, false},
      {"SPAN 1: one STE, index 0", 8, 1, 0, true},
      {"SPAN 1: one STE, index 1 beyond it", 8, 1, 1, false},
      {"SPAN 3: four STEs, index 3", 8, 3, 3, true},
      {"SPAN 3: four STEs, index 4 beyond it", 8, 3, 4, false},
      {"SPAN 9 = SPLIT+1: index 255", 8, 9, 255, true},
      {"SPAN 10 > SPLIT+1: out of range", 8, 10, 0, false},
      {"SPAN 11 > SPLIT+1: out of range", 8, 11, 0, false},
      {"SPAN 12 reserved", 8, 12, 0, false},
      {"SPAN 31 reserved", 8, 31, 0, false},
      {"SPLIT 6: SPAN 7 = SPLIT+1, index 63", 6, 7, 63, true},
      {"SPLIT 6: SPAN 8 > SPLIT+1", 6, 8, 0, false},
      {"SPLIT 10: SPAN 11 = SPLIT+1, index 1023", 10, 11, 1023, true},
      {"SPLIT 10: SPAN 12 reserved", 10, 12, 0, false},
  }));
  DYNAMIC_SECTION(row.name) {
    Harness h;
    h.write32(off::CR2, CR2_PTM | CR2_RECINVSID);
    uint64_t l1 = h.alloc(16 * 8, 4096);
    h.write64(off::STRTAB_BASE, l1);
    // FMT = 2-level, SPLIT, LOG2SIZE = SPLIT + 4: sixteen L1 descriptors.
    h.write32(off::STRTAB_BASE_CFG, (1u << 16) | (row.split << 6) | (row.split + 4));
    h.setUpQueues();
    h.enable();
    uint64_t l2 = h.alloc(64ull << row.split, 64ull << row.split);
    for (uint32_t i = 0; i < (1u << row.split); i++) h.writeWords(l2 + i * 64ull, steBypass());
    h.mem().store64(l1 + 2 * 8, l2 | row.span);
    const uint32_t sid = (2u << row.split) | row.l2Index;
    auto result = h.translate(sid, 0x4000);
    if (row.valid) {
      CHECK(expectPa(result) == 0x4000);
    } else {
      NB_REQUIRE_RECORD(expectFault(result), (Rec{0x02, sid}.make()));
      auto events = h.drainEvents();
      REQUIRE(events.size() == 1);
      NB_REQUIRE_RECORD(events[0], (Rec{0x02, sid}.make()));
    }
  }
}

TEST_CASE("Smmuv3: CR2.RECINVSID decides whether C_BAD_STREAMID is recorded",
          "[smmuv3][ste][conformance]") {
  // IHI 0070 §6.3.12 SMMU_CR2.RECINVSID: 0 = C_BAD_STREAMID is not recorded, 1 = recorded;
  // the transaction is terminated either way (§7.3.2). Other configuration errors (C_BAD_STE)
  // are always recorded.
  struct Row {
    const char* name;
    uint32_t cr2;
    uint32_t sid;
    uint8_t event;
    bool recorded;
  };
  auto row = GENERATE(values<Row>({
      {"RECINVSID=0: SID beyond the table, not recorded", CR2_PTM, 16, 0x02, false},
      {"RECINVSID=1: SID beyond the table, recorded", CR2_PTM | CR2_RECINVSID, 16, 0x02, true},
      {"RECINVSID=0: C_BAD_STE still recorded", CR2_PTM, 5, 0x04, true},
  }));
  DYNAMIC_SECTION(row.name) {
    Harness h;
    h.setUp(4);  // 16 STEs; SID 5's STE is V = 0
    h.write32(off::CR0, 0);
    h.write32(off::CR2, row.cr2);
    h.enable();
    NB_REQUIRE_RECORD(expectFault(h.translate(row.sid, 0x1000)), (Rec{row.event, row.sid}.make()));
    CHECK(h.drainEvents().size() == (row.recorded ? 1u : 0u));
  }
}

TEST_CASE("Smmuv3: a linear table outside memory is F_STE_FETCH", "[smmuv3][ste]") {
  Harness h;
  h.write64(off::STRTAB_BASE, 0x40'0000'0000);
  h.write32(off::STRTAB_BASE_CFG, 8);
  h.setUpQueues();
  h.enable();
  Rec r{0x03, 9};
  r.dw3 = fetchField(0x40'0000'0000 + 9 * 64);
  NB_REQUIRE_RECORD(expectFault(h.translate(9, 0)), r.make());
  auto events = h.drainEvents();
  REQUIRE(events.size() == 1);
  NB_REQUIRE_RECORD(events[0], r.make());
}

TEST_CASE("Smmuv3: illegal STEs are C_BAD_STE", "[smmuv3][ste]") {
  struct Row {
    const char* name;
    Words8 ste;
    Features features;
  };
  S2Params good;
  Features def, noS1, noS2, no16k, noCd2l, smallSsid;
  noS1.stage1 = false;
  noS2.stage2 = false;
  no16k.gran16k = false;
  noCd2l.cd2l = false;
  smallSsid.ssidBits = 4;
  auto s2With = [&](auto change) {
    S2Params p = good;
    change(p);
    return steS2(p);
  };
  Words8 s2Aa32 = steS2(good);
  s2Aa32.w[2] &= ~(1ull << 51);
  Words8 s2Be = steS2(good);
  s2Be.w[2] |= 1ull << 52;
  Words8 s2Stall = steS2(good);
  s2Stall.w[2] |= 1ull << 57;
  Words8 s2Tg3 = steS2(good);
  s2Tg3.w[2] |= 3ull << 46;
  Words8 strw1 = steS1(0x1000);
  strw1.w[1] |= 1ull << 30;
  Words8 strwEl2 = steS1(0x1000);
  strwEl2.w[1] |= 2ull << 30;
  Words8 invalid = steBypass();
  invalid.w[0] &= ~1ull;

  auto row = GENERATE_COPY(values<Row>({
      {"V=0", invalid, def},
      {"S1 without stage 1", steS1(0x1000), noS1},
      {"S2 without stage 2", steS2(good), noS2},
      {"nested without stage 2", steNested(0x1000, good), noS2},
      {"S2AA64=0", s2Aa32, def},
      {"S2ENDI=1", s2Be, def},
      {"S2S=1 without stalls", s2Stall, def},
      {"S2TG reserved", s2Tg3, def},
      {"S2TG 16K unsupported", s2With([](S2Params& p) { p.pageShift = 14; p.ias = 40;
                                                        p.sl0 = 1; }), no16k},
      {"S2T0SZ above 48 bits", s2With([](S2Params& p) { p.ias = 49; }), def},
      {"S2T0SZ below 25 bits", s2With([](S2Params& p) { p.ias = 24; p.sl0 = 0; }), def},
      {"4K SL0=3", s2With([](S2Params& p) { p.sl0 = 3; }), def},
      {"64K SL0=3", s2With([](S2Params& p) { p.pageShift = 16; p.sl0 = 3; }), def},
      {"4K L2 start for 48 bits", s2With([](S2Params& p) { p.sl0 = 0; }), def},
      {"4K L0 start for 39 bits", s2With([](S2Params& p) { p.ias = 39; p.sl0 = 2; }), def},
      {"4K L1 start, 32 tables", s2With([](S2Params& p) { p.ias = 44; p.sl0 = 1; }), def},
      {"S1Fmt=3", steS1(0x1000, 4, 3), def},
      {"two-level CD without CD2L", steS1(0x1000, 4, 1), noCd2l},
      {"S1CDMax above SSIDSIZE", steS1(0x1000, 5), smallSsid},
      {"S1DSS=3", steS1(0x1000, 4, 0, 3), def},
      {"STRW reserved", strw1, def},
      {"STRW=EL2 without HYP", strwEl2, def},
  }));
  DYNAMIC_SECTION(row.name) {
    Harness h(row.features);
    h.setUp();
    h.writeSte(7, row.ste);
    NB_REQUIRE_RECORD(expectFault(h.translate(7, 0x1000)), (Rec{0x04, 7}.make()));
    NB_REQUIRE_RECORD(expectFault(h.translate(7, 0x1000, false, 1)),
                      (Rec{0x04, 7, uint32_t(1)}.make()));
    CHECK(h.drainEvents().size() == 2);
  }
}

TEST_CASE("Smmuv3: legal stage-2 geometries are accepted", "[smmuv3][ste]") {
  // Facts 4.4/4.5: the start level from SL0, with up to 16 concatenated tables.
  struct Row {
    unsigned pageShift, ias, sl0;
  };
  auto row = GENERATE(values<Row>({{12, 48, 2}, {12, 40, 1}, {12, 42, 1}, {12, 32, 1},
                                   {12, 30, 0}, {16, 48, 2}, {16, 42, 1}, {16, 52, 2},
                                   {14, 48, 2}, {14, 47, 2}, {14, 40, 1}, {14, 36, 1}}));
  DYNAMIC_SECTION(row.pageShift << "/" << row.ias << "/SL0=" << row.sl0) {
    Features f;
    f.oas = 52;
    Harness h(f);
    h.setUp();
    S2Params p;
    p.pageShift = row.pageShift;
    p.ias = row.ias;
    p.sl0 = row.sl0;
    p.ps = 6;
    p.ttb = h.alloc(64 * 1024, 64 * 1024);
    h.writeSte(1, steS2(p));
    // Empty tables: the STE is legal, the walk finds nothing.
    CHECK(faultId(h.translate(1, 0)) == EventId::F_TRANSLATION);
  }
}

TEST_CASE("Smmuv3: STE legality — S2TTB, S2T0SZ, S2SL0 and S2HA/S2HD against the ID registers",
          "[smmuv3][ste][conformance]") {
  // IHI 0070 §5.2 (STE fields; an ILLEGAL STE is C_BAD_STE, §7.3.4) with §3.4 (IAS = OAS for
  // AArch64 tables), §3.13 (HTTU) and the VMSAv8-64 stage-2 start-level rules (DDI0487, facts
  // 4.4): a table base beyond the effective S2PS (capped at OAS) or >= 2^48 with 4K/16K, an IPA
  // size above the OAS, a start level the OAS does not allow (4K L0 < 44 bits, 16K L1 < 42,
  // 64K L1 < 44; 16K L0 needs IDR5.DS), S2HA without HTTU, S2HD without access+dirty.
  struct Row {
    const char* name;
    uint8_t oas;
    Httu httu;
    unsigned pageShift, ias, sl0, ps;
    uint64_t ttbOffset;  // added to a valid table address
    bool ha, hd;
    bool legal;
  };
  auto row = GENERATE(values<Row>({
      {"S2TTB below 2^S2PS", 48, Httu::NONE, 12, 40, 1, 2, 0, false, false, true},
      {"S2TTB at 2^40 with S2PS 40", 48, Httu::NONE, 12, 40, 1, 2, 1ull << 40, false, false,
       false},
      {"S2TTB at 2^44 with S2PS 48 but OAS 44", 44, Httu::NONE, 12, 40, 1, 5, 1ull << 44, false,
       false, false},
      {"S2TTB at 2^48 with 4K and OAS 52", 52, Httu::NONE, 12, 40, 1, 6, 1ull << 48, false,
       false, false},
      {"S2TTB at 2^48 with 16K and OAS 52", 52, Httu::NONE, 14, 40, 1, 6, 1ull << 48, false,
       false, false},
      {"S2TTB at 2^48 with 64K and OAS 52", 52, Httu::NONE, 16, 40, 1, 6, 1ull << 48, false,
       false, true},
      {"IPA 44 bits with OAS 44", 44, Httu::NONE, 12, 44, 2, 4, 0, false, false, true},
      {"IPA 48 bits with OAS 44", 44, Httu::NONE, 12, 48, 2, 4, 0, false, false, false},
      {"4K L0 start with OAS 44", 44, Httu::NONE, 12, 44, 2, 4, 0, false, false, true},
      {"4K L0 start with OAS 42", 42, Httu::NONE, 12, 42, 2, 3, 0, false, false, false},
      {"4K L1 start, IPA 42, OAS 42", 42, Httu::NONE, 12, 42, 1, 3, 0, false, false, true},
      {"16K L1 start with OAS 42", 42, Httu::NONE, 14, 42, 2, 3, 0, false, false, true},
      {"16K L1 start with OAS 40", 40, Httu::NONE, 14, 40, 2, 2, 0, false, false, false},
      {"16K L2 start, IPA 40, OAS 40", 40, Httu::NONE, 14, 40, 1, 2, 0, false, false, true},
      {"16K L0 start (SL0=3) without DS", 48, Httu::NONE, 14, 48, 3, 5, 0, false, false, false},
      {"64K L1 start with OAS 44", 44, Httu::NONE, 16, 44, 2, 4, 0, false, false, true},
      {"64K L1 start with OAS 42", 42, Httu::NONE, 16, 42, 2, 3, 0, false, false, false},
      {"S2HA without HTTU", 48, Httu::NONE, 12, 40, 1, 2, 0, true, false, false},
      {"S2HA with HTTU access", 48, Httu::ACCESS, 12, 40, 1, 2, 0, true, false, true},
      {"S2HD with HTTU access only", 48, Httu::ACCESS, 12, 40, 1, 2, 0, true, true, false},
      {"S2HD with HTTU access+dirty", 48, Httu::ACCESS_DIRTY, 12, 40, 1, 2, 0, true, true, true},
  }));
  DYNAMIC_SECTION(row.name) {
    Features f;
    f.oas = row.oas;
    f.httu = row.httu;
    Harness h(f);
    h.setUp();
    S2Params p;
    p.pageShift = row.pageShift;
    p.ias = row.ias;
    p.sl0 = row.sl0;
    p.ps = row.ps;
    p.ha = row.ha;
    p.hd = row.hd;
    p.ttb = h.alloc(64 * 1024, 64 * 1024) + row.ttbOffset;
    h.writeSte(1, steS2(p));
    if (row.legal) {
      CHECK(faultId(h.translate(1, 0)) != EventId::C_BAD_STE);
    } else {
      NB_REQUIRE_RECORD(expectFault(h.translate(1, 0)), (Rec{0x04, 1}.make()));
    }
  }
}

TEST_CASE("Smmuv3: CD legality — TTB against the effective IPS, HA/HD against HTTU, EPD0 at EL2",
          "[smmuv3][cd][conformance]") {
  // IHI 0070 §5.4 (CD fields; an ILLEGAL CD is C_BAD_CD, §7.3.10): TTB0 beyond the effective IPS
  // (IPS capped at the OAS) or >= 2^48 with 4K/16K is ILLEGAL, not an F_ADDR_SIZE at walk time;
  // HA needs HTTU, HD needs access+dirty (§3.13); EPD0 is ignored with STRW = EL2 without E2H
  // (TCR_EL2 has no EPD0), so TTB0 is walked.
  struct Row {
    const char* name;
    uint8_t oas;
    Httu httu;
    unsigned pageShift;
    unsigned ips;        // CD.IPS encoding
    uint64_t ttbOffset;  // added to a valid table address
    bool ha, hd, epd0, el2;
    const char* expect;  // "ok" (walks: F_TRANSLATION on empty tables), "bad_cd"
  };
  auto row = GENERATE(values<Row>({
      {"TTB0 below 2^IPS", 48, Httu::NONE, 12, 5, 0, false, false, false, false, "ok"},
      {"TTB0 at 2^40 with IPS 40", 48, Httu::NONE, 12, 2, 1ull << 40, false, false, false, false,
       "bad_cd"},
      {"TTB0 at 2^44 with IPS 48, OAS 44", 44, Httu::NONE, 12, 5, 1ull << 44, false, false,
       false, false, "bad_cd"},
      {"TTB0 at 2^48 with 4K, OAS 52", 52, Httu::NONE, 12, 6, 1ull << 48, false, false, false,
       false, "bad_cd"},
      {"TTB0 at 2^48 with 16K, OAS 52", 52, Httu::NONE, 14, 6, 1ull << 48, false, false, false,
       false, "bad_cd"},
      {"TTB0 at 2^48 with 64K, OAS 52", 52, Httu::NONE, 16, 6, 1ull << 48, false, false, false,
       false, "ok"},
      {"HA without HTTU", 48, Httu::NONE, 12, 5, 0, true, false, false, false, "bad_cd"},
      {"HA with HTTU access", 48, Httu::ACCESS, 12, 5, 0, true, false, false, false, "ok"},
      {"HD with HTTU access only", 48, Httu::ACCESS, 12, 5, 0, true, true, false, false,
       "bad_cd"},
      {"HD with HTTU access+dirty", 48, Httu::ACCESS_DIRTY, 12, 5, 0, true, true, false, false,
       "ok"},
      {"EPD0 at NS-EL1: TTB0 not walked", 48, Httu::NONE, 12, 5, 0, false, false, true, false,
       "epd"},
      {"EPD0 at EL2 (no E2H): no effect", 48, Httu::NONE, 12, 5, 0, false, false, true, true,
       "ok"},
  }));
  DYNAMIC_SECTION(row.name) {
    Features f;
    f.oas = row.oas;
    f.httu = row.httu;
    f.hyp = true;
    Harness h(f);
    h.setUp();
    CdParams p;
    p.pageShift = row.pageShift;
    p.ips = row.ips;
    p.ha = row.ha;
    p.hd = row.hd;
    p.epd0 = row.epd0;
    p.ttb0 = h.alloc(64 * 1024, 64 * 1024) + row.ttbOffset;
    uint64_t cd = h.alloc(64, 64);
    h.writeWords(cd, cdS1(p));
    Words8 ste = steS1(cd);
    if (row.el2) ste.w[1] |= 2ull << 30;  // STRW = EL2
    h.writeSte(1, ste);
    auto result = h.translate(1, 0x1000);
    kj::StringPtr expect = row.expect;
    if (expect == "bad_cd") {
      NB_REQUIRE_RECORD(expectFault(result), (Rec{0x0a, 1}.make()));
    } else {
      // Legal: the walk runs (on empty tables: F_TRANSLATION; on a table outside memory:
      // F_WALK_EABT); with EPD0 at NS-EL1 the region is disabled: F_TRANSLATION, no walk.
      CHECK(faultId(result) ==
            (row.ttbOffset == 0 ? EventId::F_TRANSLATION : EventId::F_WALK_EABT));
      CHECK((h.stat("walk.reads") > 0) == (expect == "ok"));
    }
  }
}

}  // namespace
}  // namespace nb::smmu::testing
