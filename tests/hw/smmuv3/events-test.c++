// tests/hw/smmuv3: one test per event type the model raises, each asserting the whole 4-qword
// record (facts 3.1, 3.2) as returned by translate() and as written to the EVTQ.

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

// Checks the record translate() returned and the single record in the EVTQ.
void requireEvent(Harness& h, const TranslateResult& r, const EventRecord& expected) {
  NB_REQUIRE_RECORD(expectFault(r), expected);
  auto events = h.drainEvents();
  REQUIRE(events.size() == 1);
  NB_REQUIRE_RECORD(events[0], expected);
}

// SID 9, SSID 0x12345 (20 bits), stage-1 context with 16 CDs at `cdTable`.
struct Fixture {
  Fixture() {
    h.setUp();
    cdTable = h.alloc(16 * 64, 1024);
  }
  Words8 context(uint64_t pa, uint64_t va) {
    tables = kj::heap<Tables>(h, 12, 48, 0);
    tables->map(va, pa, 3, S1_RW);
    CdParams p;
    p.ttb0 = tables->root();
    return cdS1(p);
  }
  Harness h;
  uint64_t cdTable;
  kj::Own<Tables> tables;
};

TEST_CASE("Smmuv3: C_BAD_STREAMID record", "[smmuv3][events]") {
  Fixture f;
  requireEvent(f.h, f.h.translate(0x300, 0x1000, true, 0x12345),
               Rec{0x02, 0x300, uint32_t(0x12345)}.make());
}

TEST_CASE("Smmuv3: F_STE_FETCH record", "[smmuv3][events]") {
  Harness h;
  h.write64(off::STRTAB_BASE, 0x50'0000'0000);
  h.write32(off::STRTAB_BASE_CFG, 8);
  h.setUpQueues();
  h.enable();
  Rec r{0x03, 0x21};  // SID and fetch address only
  r.dw3 = fetchField(0x50'0000'0000 + 0x21 * 64);
  requireEvent(h, h.translate(0x21, 0x1000, true, 5), r.make());
}

TEST_CASE("Smmuv3: C_BAD_STE record", "[smmuv3][events]") {
  Fixture f;
  requireEvent(f.h, f.h.translate(9, 0x1000, false, 7), Rec{0x04, 9, uint32_t(7)}.make());
}

TEST_CASE("Smmuv3: F_STREAM_DISABLED record", "[smmuv3][events]") {
  Fixture f;
  f.h.writeSte(9, steS1(f.cdTable, 4, 0, 0));  // S1DSS = TERMINATE
  requireEvent(f.h, f.h.translate(9, 0x1000, true), Rec{0x06, 9}.make());
}

TEST_CASE("Smmuv3: C_BAD_SUBSTREAMID record", "[smmuv3][events]") {
  Fixture f;
  f.h.writeSte(9, steS1(f.cdTable, 4, 0, 0));
  requireEvent(f.h, f.h.translate(9, 0x1000, true, 0x12345),
               Rec{0x08, 9, uint32_t(0x12345)}.make());
}

TEST_CASE("Smmuv3: F_CD_FETCH record", "[smmuv3][events]") {
  Fixture f;
  f.h.writeSte(9, steS1(0x66'0000'0000, 4, 0, 0));
  Rec r{0x09, 9, uint32_t(3)};
  r.dw3 = fetchField(0x66'0000'0000 + 3 * 64);
  requireEvent(f.h, f.h.translate(9, 0x1000, true, 3), r.make());
}

TEST_CASE("Smmuv3: C_BAD_CD record", "[smmuv3][events]") {
  Fixture f;
  f.h.writeSte(9, steS1(f.cdTable, 4, 0, 0));  // CD 3 is all zeros: V = 0
  requireEvent(f.h, f.h.translate(9, 0x1000, true, 3), Rec{0x0a, 9, uint32_t(3)}.make());
}

TEST_CASE("Smmuv3: F_WALK_EABT record", "[smmuv3][events]") {
  Fixture f;
  CdParams p;
  p.ttb0 = 0x7f'0000'0000;  // the level-0 table is outside memory
  f.h.writeWords(f.cdTable + 64, cdS1(p));
  f.h.writeSte(9, steS1(f.cdTable, 4, 0, 0));
  const uint64_t va = 0x0000'8000'0000'1000;
  Rec r{0x0b, 9, uint32_t(1)};
  r.pnu = true;
  r.ind = true;
  r.rnw = true;
  r.cls = 1;  // TT: a stage-1 table fetch aborted (IHI 0070 §7.3.11)
  r.input = va;
  r.dw3 = fetchField(0x7f'0000'0000 + 256 * 8);  // L0 index = VA[47:39] = 256
  requireEvent(f.h, f.h.translate(9, va, false, 1, true, true), r.make());
}

TEST_CASE("Smmuv3: F_TRANSLATION record", "[smmuv3][events]") {
  Fixture f;
  f.h.writeWords(f.cdTable + 2 * 64, f.context(f.h.alloc(4096), 0x5000));
  f.h.writeSte(9, steS1(f.cdTable, 4, 0, 0));
  Rec r{0x10, 9, uint32_t(2)};
  r.rnw = false;
  r.cls = 2;
  r.input = 0x6000;
  requireEvent(f.h, f.h.translate(9, 0x6000, true, 2), r.make());
}

TEST_CASE("Smmuv3: F_ADDR_SIZE record", "[smmuv3][events]") {
  Fixture f;
  // Stage 2 with a 32-bit PS: an output at 4 GB is out of range.
  Tables t(f.h, 12, 40, 1);
  S2Params p;
  p.ias = 40;
  p.sl0 = 1;
  p.ps = 0;
  p.ttb = t.root();
  p.vmid = 77;
  f.h.writeSte(10, steS2(p));
  t.map(0x4000, 0x1'0000'0000, 3, S2_RW);
  Rec r{0x11, 10};
  r.pnu = true;
  r.rnw = true;
  r.s2 = true;
  r.cls = 2;
  r.input = 0x4010;
  r.dw3 = ipaField(0x4010);
  requireEvent(f.h, f.h.translate(10, 0x4010, false, nullptr, true), r.make());
}

TEST_CASE("Smmuv3: F_ACCESS record", "[smmuv3][events]") {
  Fixture f;
  Tables t(f.h, 12, 48, 0);
  t.map(0x5000, f.h.alloc(4096), 3, S1_RW & ~PTE_AF);
  CdParams p;
  p.ttb0 = t.root();
  f.h.writeWords(f.cdTable, cdS1(p));
  f.h.writeSte(9, steS1(f.cdTable));  // S1CDMax = 0
  Rec r{0x12, 9};
  r.rnw = false;
  r.cls = 2;
  r.input = 0x5008;
  requireEvent(f.h, f.h.translate(9, 0x5008, true), r.make());
}

TEST_CASE("Smmuv3: F_PERMISSION record", "[smmuv3][events]") {
  Fixture f;
  Tables t(f.h, 12, 48, 0);
  t.map(0x5000, f.h.alloc(4096), 3, S1_RW | PTE_AP_RDONLY);
  CdParams p;
  p.ttb0 = t.root();
  f.h.writeWords(f.cdTable + 64, cdS1(p));
  f.h.writeSte(9, steS1(f.cdTable, 4, 0, 2));
  Rec r{0x13, 9, uint32_t(1)};
  r.pnu = true;
  r.cls = 2;
  r.input = 0x5008;
  requireEvent(f.h, f.h.translate(9, 0x5008, true, 1, true), r.make());
}

TEST_CASE("Smmuv3: event records pack exactly each type's fields", "[smmuv3][events]") {
  // Every field set in the decoded event; only the ones the type carries reach the record.
  Event all;
  all.sid = 0x89abcdef;
  all.ssv = true;
  all.ssid = 0xfedcb;
  all.stag = 0x1234;
  all.stall = true;
  all.pnu = all.ind = all.rnw = all.s2 = all.ttRnW = true;
  all.cls = FaultClass::TT;
  all.inputAddr = 0xffff'0000'1234'5678;
  all.ipa = 0x000f'ffff'ffff'f000;
  all.fetchAddr = 0x000a'bcde'f012'3458;
  const uint64_t dw0Sid = 0x89abcdefull << 32;
  const uint64_t dw0Ssid = (1ull << 11) | (0xfedcbull << 12);
  const uint64_t dw1Access = (1ull << 33) | (1ull << 34) | (1ull << 35);
  const uint64_t dw1Stall = (1ull << 31) | 0x1234;
  const uint64_t dw1Stage = (1ull << 39) | (1ull << 40);
  struct Row {
    uint8_t id;
    uint64_t dw0, dw1, dw2, dw3;
  };
  auto row = GENERATE_COPY(values<Row>({
      {0x01, dw0Ssid, dw1Access, all.inputAddr, 0},                           // F_UUT
      {0x02, dw0Ssid, 0, 0, 0},                                               // C_BAD_STREAMID
      {0x03, 0, 0, 0, all.fetchAddr},                                         // F_STE_FETCH
      {0x04, dw0Ssid, 0, 0, 0},                                               // C_BAD_STE
      {0x05, dw0Ssid, dw1Access, all.inputAddr, 0},                           // F_BAD_ATS_TREQ
      {0x06, 0, 0, 0, 0},                                                     // F_STREAM_DISABLED
      {0x07, 0, 1ull << 35, all.inputAddr, 0},                                // F_TRANSL_FORBIDDEN
      {0x08, dw0Ssid, 0, 0, 0},                                               // C_BAD_SUBSTREAMID
      {0x09, dw0Ssid, 0, 0, all.fetchAddr},                                   // F_CD_FETCH
      {0x0a, dw0Ssid, 0, 0, 0},                                               // C_BAD_CD
      {0x0b, dw0Ssid, dw1Access | dw1Stall | dw1Stage, all.inputAddr, all.fetchAddr},
      {0x10, dw0Ssid, dw1Access | dw1Stall | dw1Stage, all.inputAddr, all.ipa},
      {0x11, dw0Ssid, dw1Access | dw1Stall | dw1Stage, all.inputAddr, all.ipa},
      {0x12, dw0Ssid, dw1Access | dw1Stall | dw1Stage, all.inputAddr, all.ipa},
      {0x13, dw0Ssid, dw1Access | dw1Stall | dw1Stage | (1ull << 44), all.inputAddr, all.ipa},
      {0x25, 0, 0, 0, all.fetchAddr},                                         // F_VMS_FETCH
  }));
  DYNAMIC_SECTION(eventName(EventId(row.id)).cStr()) {
    Event e = all;
    e.id = EventId(row.id);
    EventRecord expected;
    expected.dw[0] = row.id | dw0Sid | row.dw0;
    expected.dw[1] = row.dw1;
    expected.dw[2] = row.dw2;
    expected.dw[3] = row.dw3;
    EventRecord r = makeEventRecord(e);
    NB_REQUIRE_RECORD(r, expected);
    // Decoding gives back the carried fields.
    Event d = decodeEventRecord(r);
    CHECK(d.id == e.id);
    CHECK(d.sid == e.sid);
    CHECK(makeEventRecord(d) == r);
  }
}

}  // namespace
}  // namespace nb::smmu::testing
