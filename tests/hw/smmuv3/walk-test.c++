// tests/hw/smmuv3: stage-1, stage-2 and nested walks for every granule, permissions, faults
// and hardware access-flag/dirty updates (facts 4.1, 4.3, 4.4, 4.9, 3.2).

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

constexpr uint64_t IPA_DELTA = 0x40'0000'0000;  // nested: IPA = PA + IPA_DELTA

EventId faultId(const TranslateResult& r) { return expectFault(r).id(); }
uint64_t leafSize(const TranslateResult& r) { return r.get<TranslateOk>().leafSize; }

// A stage-1 stream: STE (S1_TRANS) -> CD -> tables.
struct S1Stream {
  S1Stream(Harness& h, uint32_t sid, unsigned pageShift, unsigned ias, CdParams p = CdParams())
      : tables(h, pageShift, ias, s1StartLevelFor(pageShift, ias)) {
    cd = h.alloc(64, 64);
    p.pageShift = pageShift;
    p.ias = ias;
    p.ttb0 = tables.root();
    h.writeWords(cd, cdS1(p));
    h.writeSte(sid, steS1(cd));
  }
  Tables tables;
  uint64_t cd;
};

// A nested stream: stage 2 maps the CD, every stage-1 table and the data pages.
struct NestedStream {
  NestedStream(Harness& h, uint32_t sid, unsigned s1Shift, unsigned s1Ias, unsigned s2Shift,
               unsigned s2Ias, unsigned sl0, CdParams cp = CdParams(), S2Params sp = S2Params())
      : h(h), s2(h, s2Shift, s2Ias, startLevelFor(s2Shift, sl0)),
        s1(h, s1Shift, s1Ias, s1StartLevelFor(s1Shift, s1Ias), &s2, IPA_DELTA) {
    cd = h.alloc(64, 64);
    s2.map(cd + IPA_DELTA, cd, 3, S2_RW);
    cp.pageShift = s1Shift;
    cp.ias = s1Ias;
    cp.ttb0 = s1.root();
    h.writeWords(cd, cdS1(cp));
    sp.pageShift = s2Shift;
    sp.ias = s2Ias;
    sp.sl0 = sl0;
    sp.ttb = s2.root();
    h.writeSte(sid, steNested(cd + IPA_DELTA, sp));
  }
  static unsigned startLevelFor(unsigned shift, unsigned sl0) {
    return shift == 12 ? 2 - sl0 : 3 - sl0;  // facts 4.5
  }
  // Maps va -> pa through both stages with leaves at the given levels.
  void map(uint64_t va, uint64_t pa, unsigned s1Level, unsigned s2Level,
           uint64_t s1Attrs = S1_RW, uint64_t s2Attrs = S2_RW) {
    s1.map(va, pa + IPA_DELTA, s1Level, s1Attrs);
    s2.map(pa + IPA_DELTA, pa, s2Level, s2Attrs);
  }
  Harness& h;
  Tables s2, s1;
  uint64_t cd;
};

// ---- stage 1 ------------------------------------------------------------------------------

TEST_CASE("Smmuv3: stage-1 translation for every granule", "[smmuv3][walk]") {
  struct Row {
    unsigned pageShift, ias, level;
  };
  auto row = GENERATE(values<Row>({{12, 48, 3}, {12, 48, 2}, {12, 48, 1}, {12, 39, 3},
                                   {12, 32, 2}, {12, 25, 3}, {14, 48, 3}, {14, 48, 2},
                                   {14, 47, 3}, {14, 36, 2}, {16, 48, 3}, {16, 48, 2},
                                   {16, 42, 3}, {16, 36, 2}, {16, 29, 3}}));
  DYNAMIC_SECTION("shift " << row.pageShift << " ias=" << row.ias << " L" << row.level) {
    Harness h;
    h.setUp();
    S1Stream s(h, 1, row.pageShift, row.ias);
    const uint64_t size = 1ull << levelShift(row.pageShift, row.level);
    const uint64_t va = (0x5a5a5a5a5a5aull & ((1ull << row.ias) - 1)) & ~(size - 1);
    // A block's output must be aligned to its size: give it an aligned frame when it fits in
    // memory, otherwise an aligned address outside (never accessed by the translation).
    const uint64_t pa = size <= (16ull << 20) ? h.alloc(size, size) : 0x1000'0000'0000;
    s.tables.map(va, pa, row.level, S1_RW);
    const uint64_t offset = (size - 1) & 0x123456789;
    auto r = h.translate(1, va + offset);
    CHECK(expectPa(r) == pa + offset);
    CHECK(leafSize(r) == size);
    CHECK(faultId(h.translate(1, va ^ size)) == EventId::F_TRANSLATION);
  }
}

TEST_CASE("Smmuv3: stage-1 permissions", "[smmuv3][walk]") {
  struct Row {
    const char* name;
    uint64_t attrs;
    bool write, priv, exec;
    bool allowed;
  };
  const uint64_t base = PTE_AF | PTE_NG;
  auto row = GENERATE_COPY(values<Row>({
      {"RW user: user write", base | PTE_AP_UNPRIV, true, false, false, true},
      {"RO user: user write", base | PTE_AP_UNPRIV | PTE_AP_RDONLY, true, false, false, false},
      {"RO user: priv write", base | PTE_AP_UNPRIV | PTE_AP_RDONLY, true, true, false, false},
      {"RO user: user read", base | PTE_AP_UNPRIV | PTE_AP_RDONLY, false, false, false, true},
      {"priv only: user read", base, false, false, false, false},
      {"priv only: priv write", base, true, true, false, true},
      {"UXN: user exec", base | PTE_AP_UNPRIV | PTE_AP_RDONLY | PTE_UXN, false, false, true,
       false},
      {"UXN: priv exec", base | PTE_AP_RDONLY | PTE_UXN, false, true, true, true},
      {"PXN: priv exec", base | PTE_PXN, false, true, true, false},
      {"PXN: user exec", base | PTE_AP_UNPRIV | PTE_AP_RDONLY | PTE_PXN, false, false, true,
       true},
      {"EL0-writable implies PXN", base | PTE_AP_UNPRIV, false, true, true, false},
      {"EL0 execute-only", base, false, false, true, true},
      {"exec is ignored for writes", base | PTE_UXN | PTE_PXN, true, true, true, true},
  }));
  DYNAMIC_SECTION(row.name) {
    Harness h;
    h.setUp();
    S1Stream s(h, 1, 12, 48);
    uint64_t pa = h.alloc(4096);
    s.tables.map(0x1000, pa, 3, row.attrs);
    auto r = h.translate(1, 0x1008, row.write, nullptr, row.priv, row.exec);
    if (row.allowed) {
      CHECK(expectPa(r) == pa + 8);
    } else {
      Rec e{0x13, 1};
      e.pnu = row.priv;
      e.ind = row.exec && !row.write;
      e.rnw = !row.write;
      e.cls = 2;
      e.input = 0x1008;
      NB_REQUIRE_RECORD(expectFault(r), e.make());
    }
  }
}

TEST_CASE("Smmuv3: hierarchical table permissions restrict stage 1", "[smmuv3][walk]") {
  Harness h;
  h.setUp();
  S1Stream s(h, 1, 12, 48);
  uint64_t pa = h.alloc(4096);
  s.tables.map(0x1000, pa, 3, S1_RW);
  uint64_t l2 = s.tables.slotPa(0x1000, 2);
  SECTION("APTable[1]: no writes") {
    h.mem().store64(l2, h.mem().load64(l2) | (1ull << 62));
    CHECK(expectPa(h.translate(1, 0x1000)) == pa);
    CHECK(faultId(h.translate(1, 0x1000, true)) == EventId::F_PERMISSION);
  }
  SECTION("APTable[0]: no EL0 access") {
    h.mem().store64(l2, h.mem().load64(l2) | (1ull << 61));
    CHECK(faultId(h.translate(1, 0x1000)) == EventId::F_PERMISSION);
    CHECK(expectPa(h.translate(1, 0x1000, true, nullptr, true)) == pa);
  }
  SECTION("UXNTable") {
    h.mem().store64(l2, h.mem().load64(l2) | (1ull << 60));
    CHECK(faultId(h.translate(1, 0x1000, false, nullptr, false, true)) ==
          EventId::F_PERMISSION);
  }
}

// ---- stage 2 ------------------------------------------------------------------------------

TEST_CASE("Smmuv3: stage-2 translation for every granule", "[smmuv3][walk]") {
  struct Row {
    unsigned pageShift, ias, sl0, level;
  };
  auto row = GENERATE(values<Row>({
      {12, 48, 2, 3}, {12, 40, 1, 3}, {12, 42, 1, 2}, {12, 32, 1, 1}, {12, 30, 0, 3},
      {14, 48, 2, 3}, {14, 40, 1, 2}, {14, 36, 1, 3}, {16, 48, 2, 3}, {16, 42, 1, 2},
      {16, 36, 1, 3}}));
  DYNAMIC_SECTION(row.pageShift << "-shift ias=" << row.ias << " SL0=" << row.sl0 << " L"
                                << row.level) {
    Harness h;
    h.setUp();
    unsigned start = row.pageShift == 12 ? 2 - row.sl0 : 3 - row.sl0;
    Tables t(h, row.pageShift, row.ias, start);
    S2Params p;
    p.pageShift = row.pageShift;
    p.ias = row.ias;
    p.sl0 = row.sl0;
    p.ttb = t.root();
    p.vmid = 3;
    h.writeSte(2, steS2(p));
    const uint64_t size = 1ull << levelShift(row.pageShift, row.level);
    // The top of the IPA space exercises the concatenated root tables' upper index bits.
    const uint64_t ipa = ((1ull << row.ias) - 1) & ~(size - 1);
    const uint64_t pa = size <= (16ull << 20) ? h.alloc(size, size) : 0x1000'0000'0000;
    t.map(ipa, pa, row.level, S2_RW);
    auto r = h.translate(2, ipa + 0x18, true);
    CHECK(expectPa(r) == pa + 0x18);
    CHECK(leafSize(r) == size);
    // An IPA beyond S2T0SZ is a stage-2 translation fault carrying the IPA, unless it is also
    // beyond the SMMU's IAS (= OAS, 48 here): then it is a stage-1 address-size fault on the
    // input, S2 = 0 (IHI 0070 §3.4, §3.4.1).
    Rec e{0x10, 2};
    e.s2 = true;
    e.cls = 2;
    e.rnw = true;
    e.input = 1ull << row.ias;
    e.dw3 = ipaField(1ull << row.ias);
    if (row.ias >= 48) {
      e.id = 0x11;
      e.s2 = false;
      e.dw3 = 0;
    }
    NB_REQUIRE_RECORD(expectFault(h.translate(2, 1ull << row.ias)), e.make());
  }
}

TEST_CASE("Smmuv3: stage-2 permissions", "[smmuv3][walk]") {
  Harness h;
  h.setUp();
  Tables t(h, 12, 40, 1);
  S2Params p;
  p.ias = 40;
  p.sl0 = 1;
  p.ttb = t.root();
  h.writeSte(2, steS2(p));
  uint64_t pa = h.alloc(3 * 4096);
  t.map(0x1000, pa, 3, PTE_AF | PTE_S2_READ);
  t.map(0x2000, pa + 0x1000, 3, PTE_AF | PTE_S2_WRITE);
  t.map(0x3000, pa + 0x2000, 3, PTE_AF | PTE_S2_READ | PTE_XN);
  CHECK(expectPa(h.translate(2, 0x1000)) == pa);
  CHECK(expectPa(h.translate(2, 0x2000, true)) == pa + 0x1000);
  CHECK(expectPa(h.translate(2, 0x3000)) == pa + 0x2000);
  Rec w{0x13, 2};
  w.s2 = true;
  w.cls = 2;
  w.input = 0x1000;
  w.dw3 = ipaField(0x1000);
  NB_REQUIRE_RECORD(expectFault(h.translate(2, 0x1000, true)), w.make());
  CHECK(faultId(h.translate(2, 0x2000)) == EventId::F_PERMISSION);
  CHECK(faultId(h.translate(2, 0x3000, false, nullptr, true, true)) == EventId::F_PERMISSION);
}

// ---- nested -------------------------------------------------------------------------------

TEST_CASE("Smmuv3: nested translation for every granule", "[smmuv3][walk][nested]") {
  struct Row {
    unsigned s1Shift, s1Ias, s1Level, s2Shift, s2Ias, sl0, s2Level;
  };
  auto row = GENERATE(values<Row>({
      {12, 48, 3, 12, 48, 2, 3},   // the full 4+4-level walk
      {12, 48, 2, 12, 40, 1, 3},   // S1 2M block over S2 4K pages
      {12, 39, 3, 12, 40, 1, 2},   // S2 2M block
      {14, 48, 3, 14, 48, 2, 3},
      {14, 47, 2, 16, 48, 2, 3},
      {16, 48, 3, 16, 48, 2, 3},
      {16, 42, 2, 12, 40, 1, 3},
      {12, 48, 3, 16, 42, 1, 3},
      {16, 48, 3, 14, 40, 1, 2},   // S2 32M block at a concatenated L2 root
  }));
  DYNAMIC_SECTION("S1 " << row.s1Shift << "/" << row.s1Ias << "/L" << row.s1Level << ", S2 "
                        << row.s2Shift << "/" << row.s2Ias << "/SL0=" << row.sl0 << "/L"
                        << row.s2Level) {
    Harness h;
    h.setUp();
    NestedStream n(h, 5, row.s1Shift, row.s1Ias, row.s2Shift, row.s2Ias, row.sl0);
    const uint64_t s1Size = 1ull << levelShift(row.s1Shift, row.s1Level);
    const uint64_t s2Size = 1ull << levelShift(row.s2Shift, row.s2Level);
    // Data IPAs live apart from the tables' IPAs (PA + IPA_DELTA), aligned for any S1 block.
    const uint64_t ipaBase = 0x60'0000'0000;
    const uint64_t va = (0x3c3c3c3c3c3cull & ((1ull << row.s1Ias) - 1)) & ~(s1Size - 1);
    const uint64_t offset = (s1Size - 1) & 0x1abcdef0;
    const uint64_t ipa = ipaBase + offset;
    const uint64_t pa = h.alloc(s2Size, s2Size);
    n.s1.map(va, ipaBase, row.s1Level, S1_RW);
    n.s2.map(ipa & ~(s2Size - 1), pa, row.s2Level, S2_RW);
    const uint64_t expected = pa + (ipa & (s2Size - 1));
    auto r = h.translate(5, va + offset, true);
    CHECK(expectPa(r) == expected);
    CHECK(leafSize(r) == std::min(s1Size, s2Size));  // one combined entry
    // Hits the combined IOTLB entry now.
    uint64_t walks = h.stat("walks");
    CHECK(expectPa(h.translate(5, va + offset)) == expected);
    CHECK(h.stat("walks") == walks);
  }
}

TEST_CASE("Smmuv3: nested stage-2 faults carry their class", "[smmuv3][walk][nested]") {
  Harness h;
  h.setUp();
  NestedStream n(h, 5, 12, 48, 12, 48, 2);
  const uint64_t va = 0x7000;
  const uint64_t pa = h.alloc(4096);

  SECTION("CLASS=CD: the CD's IPA is not mapped") {
    h.mem().store64(n.s2.slotPa(n.cd + IPA_DELTA, 3), 0);
    Rec e{0x10, 5};
    e.s2 = true;
    e.cls = 0;
    e.rnw = true;
    e.input = va;
    e.dw3 = ipaField(n.cd + IPA_DELTA);
    NB_REQUIRE_RECORD(expectFault(h.translate(5, va)), e.make());
  }
  SECTION("CLASS=TT: a stage-1 table's IPA is not readable") {
    n.map(va, pa, 3, 3);
    const uint64_t leafSlot = n.s1.slotPa(va, 3);     // PA of the S1 level-3 descriptor
    const uint64_t tableIpa = (leafSlot & ~0xfffull) + IPA_DELTA;
    uint64_t s2Slot = n.s2.slotPa(tableIpa, 3);
    h.mem().store64(s2Slot, h.mem().load64(s2Slot) & ~PTE_S2_READ);
    Rec e{0x13, 5};
    e.s2 = true;
    e.cls = 1;
    e.rnw = false;
    e.ttrnw = true;   // the table access was a read
    e.input = va;
    e.dw3 = ipaField(leafSlot + IPA_DELTA);
    NB_REQUIRE_RECORD(expectFault(h.translate(5, va, true)), e.make());
  }
  SECTION("CLASS=IN: the output IPA is not mapped") {
    n.s1.map(va, pa + IPA_DELTA, 3, S1_RW);
    Rec e{0x10, 5};
    e.s2 = true;
    e.cls = 2;
    e.rnw = true;
    e.input = va + 4;
    e.dw3 = ipaField(pa + IPA_DELTA);
    NB_REQUIRE_RECORD(expectFault(h.translate(5, va + 4)), e.make());
  }
  SECTION("a stage-1 fault in a nested stream is S2=0") {
    Rec e{0x10, 5};
    e.cls = 2;
    e.rnw = true;
    e.input = va;
    NB_REQUIRE_RECORD(expectFault(h.translate(5, va)), e.make());
  }
}

// ---- faults -------------------------------------------------------------------------------

TEST_CASE("Smmuv3: address-size, access and external-abort faults", "[smmuv3][walk]") {
  Harness h;
  h.setUp();
  CdParams cp;
  cp.ips = 0;  // 32-bit output
  S1Stream s(h, 1, 12, 48, cp);
  Rec e{0, 1};
  e.rnw = true;
  e.cls = 2;
  SECTION("output beyond IPS is F_ADDR_SIZE") {
    s.tables.map(0x1000, 0x1'0000'0000, 3, S1_RW);
    e.id = 0x11;
    e.input = 0x1000;
    NB_REQUIRE_RECORD(expectFault(h.translate(1, 0x1000)), e.make());
  }
  SECTION("AF = 0 without HTTU is F_ACCESS") {
    s.tables.map(0x1000, h.alloc(4096), 3, S1_RW & ~PTE_AF);
    e.id = 0x12;
    e.input = 0x1000;
    NB_REQUIRE_RECORD(expectFault(h.translate(1, 0x1000)), e.make());
  }
  SECTION("a table outside memory is F_WALK_EABT with the fetch address") {
    s.tables.map(0x1000, h.alloc(4096), 3, S1_RW);
    uint64_t l2 = s.tables.slotPa(0x1000, 2);
    h.mem().store64(l2, 0xf000'0000 | 3);  // below 4 GB, outside memory
    e.id = 0x0b;
    e.cls = 1;  // TT: the abort was on a stage-1 table fetch (IHI 0070 §7.3.11)
    e.input = 0x1000;
    e.dw3 = fetchField(0xf000'0000 + 8);
    NB_REQUIRE_RECORD(expectFault(h.translate(1, 0x1000)), e.make());
  }
}

TEST_CASE("Smmuv3: unrecorded faults terminate without an event", "[smmuv3][walk]") {
  Harness h;
  h.setUp();
  CdParams cp;
  cp.record = false;
  S1Stream s(h, 1, 12, 48, cp);
  Tables t(h, 12, 40, 1);
  S2Params sp;
  sp.ias = 40;
  sp.sl0 = 1;
  sp.ttb = t.root();
  sp.s2r = false;
  h.writeSte(2, steS2(sp));
  CHECK(faultId(h.translate(1, 0x1000)) == EventId::F_TRANSLATION);
  CHECK(faultId(h.translate(2, 0x1000)) == EventId::F_TRANSLATION);
  CHECK(h.drainEvents().size() == 0);
  // Configuration errors are always recorded.
  CHECK(faultId(h.translate(3, 0x1000)) == EventId::C_BAD_STE);
  CHECK(h.drainEvents().size() == 1);
}

TEST_CASE("Smmuv3: 52-bit output addresses with the 64K granule", "[smmuv3][walk]") {
  Features f;
  f.oas = 52;
  const uint64_t base = 0x000f'0000'0000'0000;  // memory above 48 bits
  Harness h(f, base);
  h.setUp();
  SECTION("stage 1") {
    Tables t(h, 16, 48, s1StartLevelFor(16, 48), nullptr, 0, true);
    uint64_t pa = h.alloc(64 * 1024, 64 * 1024);
    t.map(0x10000, pa, 3, S1_RW);
    uint64_t cd = h.alloc(64, 64);
    CdParams p;
    p.pageShift = 16;
    p.ips = 6;
    p.ttb0 = t.root();
    h.writeWords(cd, cdS1(p));
    h.writeSte(1, steS1(cd));
    CHECK(expectPa(h.translate(1, 0x10008)) == pa + 8);
  }
  SECTION("stage 2, 52-bit IPA") {
    Tables t(h, 16, 52, 1, nullptr, 0, true);
    S2Params p;
    p.pageShift = 16;
    p.ias = 52;
    p.sl0 = 2;
    p.ps = 6;
    p.ttb = t.root();
    h.writeSte(2, steS2(p));
    uint64_t pa = h.alloc(64 * 1024, 64 * 1024);
    t.map(0x000a'0000'0001'0000, pa, 3, S2_RW);
    CHECK(expectPa(h.translate(2, 0x000a'0000'0001'0010)) == pa + 0x10);
  }
}

// ---- HTTU ---------------------------------------------------------------------------------

TEST_CASE("Smmuv3: HTTU sets the access flag", "[smmuv3][walk][httu]") {
  Harness h;
  h.setUp();
  CdParams cp;
  cp.ha = true;
  S1Stream s(h, 1, 12, 48, cp);
  uint64_t pa = h.alloc(4096);
  uint64_t slot = s.tables.map(0x1000, pa, 3, S1_RW & ~PTE_AF);
  CHECK(expectPa(h.translate(1, 0x1000)) == pa);
  CHECK((h.mem().load64(slot) & PTE_AF) != 0);
  CHECK(h.stat("walk.httu_updates") == 1);
  SECTION("without IDR0.HTTU a CD with HA is illegal (IHI 0070 §5.4 CD.HA)") {
    Features f;
    f.httu = Httu::NONE;
    Harness h2(f);
    h2.setUp();
    S1Stream s2(h2, 1, 12, 48, cp);
    uint64_t slot2 = s2.tables.map(0x1000, h2.alloc(4096), 3, S1_RW & ~PTE_AF);
    CHECK(faultId(h2.translate(1, 0x1000)) == EventId::C_BAD_CD);
    CHECK((h2.mem().load64(slot2) & PTE_AF) == 0);
  }
}

TEST_CASE("Smmuv3: HTTU dirty state on stage 1", "[smmuv3][walk][httu]") {
  Harness h;
  h.setUp();
  CdParams cp;
  cp.ha = cp.hd = true;
  S1Stream s(h, 1, 12, 48, cp);
  uint64_t pa = h.alloc(2 * 4096);
  // Facts 4.9: writable-clean = DBM=1 with AP[2]=1.
  uint64_t clean = s.tables.map(0x1000, pa, 3, S1_RW | PTE_DBM | PTE_AP_RDONLY);
  uint64_t ro = s.tables.map(0x2000, pa + 4096, 3, S1_RW | PTE_AP_RDONLY);
  CHECK(expectPa(h.translate(1, 0x1000)) == pa);  // a read leaves it clean
  CHECK((h.mem().load64(clean) & PTE_AP_RDONLY) != 0);
  CHECK(expectPa(h.translate(1, 0x1000, true)) == pa);  // a write makes it dirty
  CHECK((h.mem().load64(clean) & PTE_AP_RDONLY) == 0);
  CHECK(faultId(h.translate(1, 0x2000, true)) == EventId::F_PERMISSION);  // no DBM
  CHECK((h.mem().load64(ro) & PTE_AP_RDONLY) != 0);
  // Software cleans it again (read_and_clear_dirty) and invalidates: the next write re-dirties.
  h.mem().store64(clean, h.mem().load64(clean) | PTE_AP_RDONLY);
  h.submit({cmdTlbi(0x12, 0, 1, 0x1000), cmdSync()});
  CHECK(expectPa(h.translate(1, 0x1000, true)) == pa);
  CHECK((h.mem().load64(clean) & PTE_AP_RDONLY) == 0);
}

TEST_CASE("Smmuv3: HTTU on stage 2", "[smmuv3][walk][httu]") {
  Harness h;
  h.setUp();
  Tables t(h, 12, 40, 1);
  S2Params p;
  p.ias = 40;
  p.sl0 = 1;
  p.ttb = t.root();
  p.ha = p.hd = true;
  h.writeSte(2, steS2(p));
  uint64_t pa = h.alloc(4096);
  uint64_t slot = t.map(0x1000, pa, 3, (S2_RW & ~PTE_AF & ~PTE_S2_WRITE) | PTE_DBM);
  CHECK(expectPa(h.translate(2, 0x1000)) == pa);
  CHECK((h.mem().load64(slot) & PTE_AF) != 0);
  CHECK((h.mem().load64(slot) & PTE_S2_WRITE) == 0);
  CHECK(expectPa(h.translate(2, 0x1000, true)) == pa);  // cached read entry: re-walked
  CHECK((h.mem().load64(slot) & PTE_S2_WRITE) != 0);
}

TEST_CASE("Smmuv3: nested HTTU writes stage-1 tables through stage 2",
          "[smmuv3][walk][httu][nested]") {
  Harness h;
  h.setUp();
  CdParams cp;
  cp.ha = true;
  NestedStream n(h, 5, 12, 48, 12, 48, 2, cp);
  uint64_t pa = h.alloc(4096);
  n.map(0x9000, pa, 3, 3, S1_RW & ~PTE_AF);
  uint64_t s1Slot = n.s1.slotPa(0x9000, 3);
  SECTION("stage 2 allows the write") {
    CHECK(expectPa(h.translate(5, 0x9000)) == pa);
    CHECK((h.mem().load64(s1Slot) & PTE_AF) != 0);
  }
  SECTION("a read-only stage-1 table page is a stage-2 permission fault, TTRnW = 0") {
    uint64_t s2Slot = n.s2.slotPa((s1Slot & ~0xfffull) + IPA_DELTA, 3);
    h.mem().store64(s2Slot, h.mem().load64(s2Slot) & ~PTE_S2_WRITE);
    Rec e{0x13, 5};
    e.s2 = true;
    e.cls = 1;
    e.rnw = true;
    e.ttrnw = false;
    e.input = 0x9000;
    e.dw3 = ipaField(s1Slot + IPA_DELTA);
    NB_REQUIRE_RECORD(expectFault(h.translate(5, 0x9000)), e.make());
    CHECK((h.mem().load64(s1Slot) & PTE_AF) == 0);
  }
}

// ---- termination: abort or RAZ/WI ----------------------------------------------------------

TEST_CASE("Smmuv3: IDR0.TERM_MODEL and CD.A decide abort or RAZ/WI for stage-1 faults",
          "[smmuv3][walk][conformance]") {
  // IHI 0070 §3.12.2 and §6.3.1 (SMMU_IDR0.TERM_MODEL): with TERM_MODEL = 0 a terminated
  // stage-1 translation-class fault completes as RAZ/WI when CD.A = 0 and aborts when CD.A = 1;
  // with TERM_MODEL = 1 it always aborts. Stage-2 faults and configuration errors abort either
  // way. The event is recorded per CD.R (set here) in every case.
  struct Row {
    const char* name;
    bool termModel;   // IDR0.TERM_MODEL
    bool cdA;         // CD.A
    const char* fault;  // "s1" (unmapped at stage 1), "s2" (nested, unmapped at stage 2)
    bool razWi;
  };
  auto row = GENERATE(values<Row>({
      {"TERM_MODEL=0 A=0 stage-1 fault: RAZ/WI", false, false, "s1", true},
      {"TERM_MODEL=0 A=1 stage-1 fault: abort", false, true, "s1", false},
      {"TERM_MODEL=1 A=0 stage-1 fault: abort", true, false, "s1", false},
      {"TERM_MODEL=0 A=0 stage-2 fault: abort", false, false, "s2", false},
  }));
  DYNAMIC_SECTION(row.name) {
    Features f;
    f.termModelAbort = row.termModel;
    Harness h(f);
    h.setUp();
    CHECK((h.read32(off::IDR0) >> 26 & 1) == uint32_t(row.termModel));
    CdParams cp;
    cp.abort = row.cdA;
    uint64_t data = h.alloc(4096);
    NestedStream n(h, 1, 12, 48, 12, 40, 1, cp,
                   [] { S2Params p; p.ps = 2; return p; }());
    n.map(0x1000, data, 3, 3);
    uint64_t iova = 0x1000;
    if (kj::StringPtr(row.fault) == "s1") {
      iova = 0x5000;  // nothing at stage 1
    } else {
      n.s1.map(0x6000, data + 0x10'0000 + IPA_DELTA, 3, S1_RW);  // IPA unmapped at stage 2
      iova = 0x6000;
    }
    auto result = h.translate(1, iova);
    EventRecord record;
    if (row.razWi) {
      REQUIRE(result.is<TranslateRazWi>());
      record = result.get<TranslateRazWi>().record;
    } else {
      record = expectFault(result);
    }
    CHECK(decodeEventRecord(record).id == (EventId::F_TRANSLATION));
    CHECK(h.drainEvents().size() == 1);
    CHECK(expectPa(h.translate(1, 0x1000)) == data);
  }
}

// ---- fault classes and address-size faults ---------------------------------------------------

TEST_CASE("Smmuv3: fault class and stage of walk aborts and input address-size faults",
          "[smmuv3][walk][conformance]") {
  // IHI 0070 §7.3.11 (F_WALK_EABT: CLASS = TT for a table fetch), §7.3.13 (F_ADDR_SIZE) and
  // §3.4/§3.4.1 (IAS = OAS for AArch64 tables; input above IAS with stage 1 absent is a stage-1
  // address-size fault; bypass output must fit the OAS). OAS = 44 bits here; S2T0SZ gives a
  // 40-bit IPA. Positions: facts 3.2 (S2 dw1[39], CLASS dw1[41:40]: 0 CD, 1 TT, 2 IN).
  struct Row {
    const char* name;
    const char* stream;  // "s1" (table outside memory), "s2", "bypass", "s1dss_bypass"
    uint64_t iova;
    uint8_t id;          // 0 = translates
    bool s2;
    unsigned cls;
  };
  auto row = GENERATE(values<Row>({
      {"stage-1 table fetch abort: TT", "s1", 0x1000, 0x0b, false, 1},
      {"stage-2 only, IPA beyond S2T0SZ below IAS: S2 F_TRANSLATION", "s2", 1ull << 40, 0x10,
       true, 2},
      {"stage-2 only, input at 2^IAS: stage-1 F_ADDR_SIZE", "s2", 1ull << 44, 0x11, false, 2},
      {"stage-2 only, input at 2^63: stage-1 F_ADDR_SIZE", "s2", 1ull << 63, 0x11, false, 2},
      {"bypass STE below 2^OAS: translates", "bypass", (1ull << 44) - 4096, 0, false, 0},
      {"bypass STE at 2^OAS: F_ADDR_SIZE", "bypass", 1ull << 44, 0x11, false, 2},
      {"S1DSS=BYPASS at 2^OAS: F_ADDR_SIZE", "s1dss_bypass", 1ull << 44, 0x11, false, 2},
  }));
  DYNAMIC_SECTION(row.name) {
    Features f;
    f.oas = 44;
    Harness h(f);
    h.setUp();
    kj::StringPtr stream = row.stream;
    kj::Maybe<kj::Own<Tables>> keep;
    uint64_t fetch = 0;
    if (stream == "s1") {
      CdParams cp;
      cp.ips = 4;  // 44 bits
      auto s1 = kj::heap<S1Stream>(h, 1, 12, 48, cp);
      s1->tables.map(0x1000, h.alloc(4096), 3, S1_RW);
      h.mem().store64(s1->tables.slotPa(0x1000, 2), 0xf000'0000 | 3);  // outside memory
      fetch = 0xf000'0000 + 8;
      keep = kj::heap<Tables>(kj::mv(s1->tables));
    } else if (stream == "s2") {
      auto t = kj::heap<Tables>(h, 12, 40, 1);
      S2Params p;
      p.ias = 40;
      p.sl0 = 1;
      p.ps = 4;
      p.ttb = t->root();
      h.writeSte(1, steS2(p));
      keep = kj::mv(t);
    } else if (stream == "bypass") {
      h.writeSte(1, steBypass());
    } else {
      Words8 ste = steS1(h.alloc(64 * 2, 64), 1, 0, 1);  // S1CDMax 1, S1DSS = BYPASS
      h.writeSte(1, ste);
    }
    auto result = h.translate(1, row.iova);
    if (row.id == 0) {
      CHECK(expectPa(result) == row.iova);
    } else {
      Rec e{row.id, 1};
      e.rnw = true;
      e.s2 = row.s2;
      e.cls = row.cls;
      e.input = row.iova;
      if (row.s2) e.dw3 = ipaField(row.iova);
      if (row.id == 0x0b) e.dw3 = fetchField(fetch);
      NB_REQUIRE_RECORD(expectFault(result), e.make());
      CHECK(h.drainEvents().size() == 1);
    }
  }
}

}  // namespace
}  // namespace nb::smmu::testing
