// tests/hw/smmuv3: command queue consumption, errors, CMD_SYNC, and the exact cache scope of
// every invalidation command (facts 1.1-1.6).

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

uint32_t cons(Harness& h) { return h.read32(off::CMDQ_CONS); }

// ---- a population of cached translations in different contexts ----------------------------

struct Probe {
  const char* name;
  uint32_t sid;
  uint64_t addr;
};

// SID 1: S1, VMID 0, ASID 1: 0x1000, 0x2000 (nG) and 0x3000 (global), and a 2M block at 2M.
// SID 2: S1, VMID 0, ASID 2: 0x1000.
// SID 3: S2, VMID 5: 0x1000, 0x2000.   SID 4: nested, VMID 6, ASID 1: 0x1000.
// SID 5: S2, VMID 7: 0x1000.
constexpr Probe PROBES[] = {
    {"s1 asid1 0x1000", 1, 0x1000},  {"s1 asid1 0x2000", 1, 0x2000},
    {"s1 global 0x3000", 1, 0x3000}, {"s1 asid1 2M block", 1, 0x200000},
    {"s1 asid2 0x1000", 2, 0x1000},  {"s2 vmid5 0x1000", 3, 0x1000},
    {"s2 vmid5 0x2000", 3, 0x2000},  {"nested vmid6", 4, 0x1000},
    {"s2 vmid7 0x1000", 5, 0x1000},
};
constexpr unsigned NPROBES = sizeof(PROBES) / sizeof(PROBES[0]);

struct Population {
  explicit Population(Features f = Features()) : h(f) {
    h.setUp();
    uint64_t data = h.alloc(4 << 20, 2 << 20);
    // SID 1 / SID 2: S1-only, VMID 0.
    for (unsigned asid = 1; asid <= 2; asid++) {
      auto t = kj::heap<Tables>(h, 12, 48, 0);
      t->map(0x1000, data, 3, S1_RW);
      t->map(0x2000, data + 0x1000, 3, S1_RW);
      t->map(0x3000, data + 0x2000, 3, S1_RW & ~PTE_NG);
      t->map(0x200000, data + (2 << 20), 2, S1_RW);
      uint64_t cd = h.alloc(64, 64);
      CdParams p;
      p.ttb0 = t->root();
      p.asid = uint16_t(asid);
      h.writeWords(cd, cdS1(p));
      h.writeSte(asid, steS1(cd));
      keep.add(kj::mv(t));
    }
    // SID 3 / SID 5: S2-only.
    for (auto [sid, vmid] : {std::pair<uint32_t, uint16_t>{3, 5}, {5, 7}}) {
      auto t = kj::heap<Tables>(h, 12, 40, 1);
      t->map(0x1000, data, 3, S2_RW);
      t->map(0x2000, data + 0x1000, 3, S2_RW);
      S2Params p;
      p.ias = 40;
      p.sl0 = 1;
      p.ttb = t->root();
      p.vmid = vmid;
      h.writeSte(sid, steS2(p));
      keep.add(kj::mv(t));
    }
    // SID 4: nested, VMID 6, ASID 1; S2 is identity for the CD, S1 tables and data.
    {
      auto s2 = kj::heap<Tables>(h, 12, 40, 1);
      auto s1 = kj::heap<Tables>(h, 12, 48, 0, s2.get(), 0);
      uint64_t cd = h.alloc(64, 64);
      s2->map(cd, cd, 3, S2_RW);
      s2->map(data, data, 3, S2_RW);
      s1->map(0x1000, data, 3, S1_RW);
      CdParams p;
      p.ttb0 = s1->root();
      h.writeWords(cd, cdS1(p));
      S2Params sp;
      sp.ias = 40;
      sp.sl0 = 1;
      sp.ttb = s2->root();
      sp.vmid = 6;
      h.writeSte(4, steNested(cd, sp));
      keep.add(kj::mv(s2));
      keep.add(kj::mv(s1));
    }
    warm();
  }

  void warm() {
    for (auto& p : PROBES) expectPa(h.translate(p.sid, p.addr));
  }

  // Which probes walk again (their IOTLB entry is gone).
  kj::Vector<kj::StringPtr> rewalked() {
    kj::Vector<kj::StringPtr> out;
    for (auto& p : PROBES) {
      uint64_t before = h.stat("walks");
      expectPa(h.translate(p.sid, p.addr));
      if (h.stat("walks") != before) out.add(p.name);
    }
    return out;
  }

  Harness h;
  kj::Vector<kj::Own<Tables>> keep;
};

std::string join(kj::ArrayPtr<const kj::StringPtr> names) {
  std::string s;
  for (auto& n : names) s += std::string(n.cStr()) + "; ";
  return s;
}

#define NB_REQUIRE_REWALKED(pop, ...)                                        \
  do {                                                                       \
    kj::StringPtr nbExpected[] = {__VA_ARGS__};                              \
    auto nbActual = (pop).rewalked();                                        \
    REQUIRE(join(nbActual) == join(kj::arrayPtr(nbExpected, kj::size(nbExpected)))); \
  } while (0)

TEST_CASE("Smmuv3: the population starts cached", "[smmuv3][cmdq][tlb]") {
  Population pop;
  CHECK(pop.rewalked().size() == 0);
  CHECK(pop.h.stat("iotlb.entries") == NPROBES);
}

TEST_CASE("Smmuv3: TLBI_NH_ALL drops stage-1 entries of one VMID", "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x10, 0), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "s1 asid1 0x1000", "s1 asid1 0x2000", "s1 global 0x3000",
                      "s1 asid1 2M block", "s1 asid2 0x1000");
  pop.h.submit({cmdTlbi(0x10, 6), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "nested vmid6");
  CHECK(pop.h.stat("cmdq.op.TLBI_NH_ALL") == 2);
}

TEST_CASE("Smmuv3: TLBI_NH_ASID keeps global entries and other ASIDs", "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x11, 0, 1), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "s1 asid1 0x1000", "s1 asid1 0x2000", "s1 asid1 2M block");
}

TEST_CASE("Smmuv3: TLBI_NH_VA drops one address of one ASID, and global entries",
          "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x12, 0, 1, 0x1000), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "s1 asid1 0x1000");
  pop.h.submit({cmdTlbi(0x12, 0, 2, 0x3000), cmdSync()});  // global: any ASID matches
  NB_REQUIRE_REWALKED(pop, "s1 global 0x3000");
  pop.h.submit({cmdTlbi(0x12, 0, 1, 0x3ff000), cmdSync()});  // inside the 2M block
  NB_REQUIRE_REWALKED(pop, "s1 asid1 2M block");
  pop.h.submit({cmdTlbi(0x12, 6, 1, 0x1000), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "nested vmid6");
}

TEST_CASE("Smmuv3: TLBI_NH_VAA drops one address of every ASID", "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x13, 0, 0, 0x1000), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "s1 asid1 0x1000", "s1 asid2 0x1000");
}

TEST_CASE("Smmuv3: TLBI_S12_VMALL drops everything of one VMID", "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x28, 5), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "s2 vmid5 0x1000", "s2 vmid5 0x2000");
  pop.h.submit({cmdTlbi(0x28, 6), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "nested vmid6");
}

TEST_CASE("Smmuv3: TLBI_S2_IPA drops an IPA's S2 entries and the VMID's nested entries",
          "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x2a, 5, 0, 0x2000), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "s2 vmid5 0x2000");
  // Combined nested entries go whatever the IPA (conservative, documented in cmdq.c++).
  pop.h.submit({cmdTlbi(0x2a, 6, 0, 0x7777000), cmdSync()});
  NB_REQUIRE_REWALKED(pop, "nested vmid6");
}

TEST_CASE("Smmuv3: TLBI_NSNH_ALL drops every non-hyp entry", "[smmuv3][cmdq][tlb]") {
  Population pop;
  pop.h.submit({cmdTlbi(0x30), cmdSync()});
  CHECK(pop.rewalked().size() == NPROBES);
  CHECK(pop.h.stat("cmdq.tlb_invalidated") == NPROBES);
}

TEST_CASE("Smmuv3: TLBI_EL2_* touch only the EL2 regime", "[smmuv3][cmdq][tlb]") {
  Features f;
  f.hyp = true;
  Population pop(f);
  Harness& h = pop.h;
  // SID 6: STRW = EL2 (no E2H: one regime-wide ASID-less space), pages 0x1000 and 0x2000.
  Tables t(h, 12, 48, 0);
  uint64_t pa = h.alloc(8192);
  t.map(0x1000, pa, 3, S1_RW);
  t.map(0x2000, pa + 4096, 3, S1_RW);
  uint64_t cd = h.alloc(64, 64);
  CdParams p;
  p.ttb0 = t.root();
  p.asid = 1;
  h.writeWords(cd, cdS1(p));
  Words8 ste = steS1(cd);
  ste.w[1] |= 2ull << 30;
  h.writeSte(6, ste);
  auto el2Walks = [&](uint64_t va) {
    uint64_t before = h.stat("walks");
    expectPa(h.translate(6, va));
    return h.stat("walks") - before;
  };
  CHECK(el2Walks(0x1000) == 1);
  CHECK(el2Walks(0x2000) == 1);
  // Non-hyp invalidations leave EL2 entries.
  h.submit({cmdTlbi(0x30), cmdTlbi(0x10, 0), cmdSync()});
  CHECK(el2Walks(0x1000) == 0);
  pop.warm();
  SECTION("EL2_ALL") {
    h.submit({cmdTlbi(0x20), cmdSync()});
    CHECK(pop.rewalked().size() == 0);
    CHECK(el2Walks(0x1000) == 1);
    CHECK(el2Walks(0x2000) == 1);
  }
  SECTION("EL2_VA") {
    h.submit({cmdTlbi(0x22, 0, 1, 0x2000), cmdSync()});
    CHECK(pop.rewalked().size() == 0);
    CHECK(el2Walks(0x1000) == 0);
    CHECK(el2Walks(0x2000) == 1);
  }
  SECTION("EL2_VAA") {
    h.submit({cmdTlbi(0x23, 0, 0, 0x1000), cmdSync()});
    CHECK(el2Walks(0x1000) == 1);
    CHECK(el2Walks(0x2000) == 0);
  }
  SECTION("EL2_ASID: entries without ASIDs are global and stay") {
    h.submit({cmdTlbi(0x21, 0, 1), cmdSync()});
    CHECK(el2Walks(0x1000) == 0);
  }
}

TEST_CASE("Smmuv3: range invalidation follows facts 1.4", "[smmuv3][cmdq][tlb][range]") {
  Harness h;
  h.setUp();
  Tables t(h, 12, 48, 0);
  uint64_t data = h.alloc(64 * 4096, 2 << 20);
  const uint64_t BASE = 0x4000'0000;
  for (unsigned i = 0; i < 40; i++) t.map(BASE + i * 4096, data + i * 4096, 3, S1_RW);
  t.map(BASE + (2 << 20), data, 2, S1_RW);  // a 2M block after the pages
  uint64_t cd = h.alloc(64, 64);
  CdParams p;
  p.ttb0 = t.root();
  h.writeWords(cd, cdS1(p));
  h.writeSte(1, steS1(cd));
  auto warm = [&]() {
    for (unsigned i = 0; i < 40; i++) expectPa(h.translate(1, BASE + i * 4096));
    expectPa(h.translate(1, BASE + (2 << 20)));
  };
  auto rewalked = [&]() {
    std::string s;
    for (unsigned i = 0; i < 40; i++) {
      uint64_t before = h.stat("walks");
      expectPa(h.translate(1, BASE + i * 4096));
      if (h.stat("walks") != before) s += std::to_string(i) + " ";
    }
    uint64_t before = h.stat("walks");
    expectPa(h.translate(1, BASE + (2 << 20)));
    if (h.stat("walks") != before) s += "block ";
    return s;
  };
  auto range = [](unsigned from, unsigned to) {
    std::string s;
    for (unsigned i = from; i < to; i++) s += std::to_string(i) + " ";
    return s;
  };
  warm();

  SECTION("18 pages: one command, NUM=8 SCALE=1 (scale = ctz(18), num = 18 >> 1)") {
    h.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 8, 1, 3), cmdSync()});
    CHECK(rewalked() == range(0, 18));
  }
  SECTION("33 pages: NUM=0 SCALE=0, then NUM=0 SCALE=5 from the next page") {
    h.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 0, 0, 3),
              cmdTlbi(0x12, 0, 1, BASE + 4096, 1, 0, 5, 3), cmdSync()});
    CHECK(rewalked() == range(0, 33));
  }
  SECTION("TTL names the leaf level: level-3 hint spares the 2M block") {
    h.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 31, 9, 3), cmdSync()});  // 32 x 512 pages
    CHECK(rewalked() == range(0, 40));
    warm();
    h.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 31, 9, 2), cmdSync()});
    CHECK(rewalked() == "block ");
    warm();
    h.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 31, 9, 0), cmdSync()});  // TTL 0: any level
    CHECK(rewalked() == range(0, 40) + "block ");
  }
  SECTION("TG=2 (16K) scales the range by the granule") {
    h.submit({cmdTlbi(0x13, 0, 0, BASE + 4 * 4096, 2, 1, 0, 0), cmdSync()});  // 2 x 16K
    CHECK(rewalked() == range(4, 12));
  }
  SECTION("TG=0 is a single address") {
    h.submit({cmdTlbi(0x12, 0, 1, BASE + 7 * 4096, 0, 0, 0, 0), cmdSync()});
    CHECK(rewalked() == range(7, 8));
  }
  SECTION("a reserved range encoding is CERROR_ILL and invalidates nothing (IHI 0070 §4.4.1)") {
    // TG = 4K with NUM = SCALE = TTL = 0: the encoding Linux's range builder must avoid.
    h.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 0, 0, 0), cmdSync()});
    CHECK((cons(h) >> 24 & 0x7f) == 1);
    CHECK(rewalked() == "");
  }
  SECTION("without IDR3.RIL the range fields are reserved") {
    Features f;
    f.ril = false;
    Harness h2(f);
    h2.setUp();
    h2.submit({cmdTlbi(0x12, 0, 1, BASE, 1, 8, 1, 3)});
    CHECK((cons(h2) >> 24 & 0x7f) == 1);
  }
}

// ---- configuration invalidation -----------------------------------------------------------

TEST_CASE("Smmuv3: configuration is cached until CFGI", "[smmuv3][cmdq][cfgi]") {
  Population pop;
  Harness& h = pop.h;
  auto steMisses = [&](uint32_t sid) {
    uint64_t before = h.stat("cfg.ste_misses");
    h.translate(sid, 0x1000);
    return h.stat("cfg.ste_misses") - before;
  };
  auto cdMisses = [&](uint32_t sid) {
    uint64_t before = h.stat("cfg.cd_misses");
    h.translate(sid, 0x1000);
    return h.stat("cfg.cd_misses") - before;
  };
  SECTION("a changed STE is not seen without CFGI_STE") {
    h.writeSte(3, steBypass());
    CHECK(expectPa(h.translate(3, 0x1000)) != 0x1000);
    h.submit({cmdCfgiSte(3), cmdSync()});
    CHECK(expectPa(h.translate(3, 0x1000)) == 0x1000);
  }
  SECTION("CFGI_STE: one SID, with its CDs") {
    h.submit({cmdCfgiSte(1), cmdSync()});
    CHECK(steMisses(2) == 0);
    CHECK(cdMisses(2) == 0);
    CHECK(cdMisses(1) == 1);   // refetched with the STE
    CHECK(steMisses(1) == 0);  // cached again
    CHECK(pop.rewalked().size() == 0);  // the IOTLB is untouched
  }
  SECTION("CFGI_STE_RANGE: 2^(RANGE+1) SIDs aligned at SID") {
    h.submit({cmdCfgiSteRange(5, 1), cmdSync()});  // SIDs 4..7
    CHECK(steMisses(3) == 0);
    CHECK(steMisses(4) == 1);
    CHECK(steMisses(5) == 1);
    h.submit({cmdCfgiSteRange(0, 31), cmdSync()});  // all (Linux's CFGI_ALL)
    for (uint32_t sid = 1; sid <= 5; sid++) CHECK(steMisses(sid) == 1);
  }
  SECTION("CFGI_CD: one CD") {
    h.submit({cmdCfgiCd(1, 0), cmdSync()});
    CHECK(cdMisses(2) == 0);
    CHECK(cdMisses(1) == 1);
    CHECK(steMisses(1) == 0);
  }
  SECTION("CFGI_CD with another SSID misses nothing") {
    h.submit({cmdCfgiCd(1, 3), cmdSync()});
    CHECK(cdMisses(1) == 0);
  }
  SECTION("CFGI_CD_ALL: every CD of one SID") {
    h.submit({cmdCfgiCdAll(2), cmdSync()});
    CHECK(cdMisses(1) == 0);
    CHECK(cdMisses(2) == 1);
  }
}

TEST_CASE("Smmuv3: hint and no-op commands are consumed without cache effects",
          "[smmuv3][cmdq]") {
  Features f;
  f.ats = true;
  Population pop(f);
  pop.h.submit({
      {0x01 | (1ull << 32), 0},                        // PREFETCH_CONFIG
      {0x02 | (1ull << 32), 0x1000 | 3},               // PREFETCH_ADDR
      {0x40 | (1ull << 32), (0x1000) | 52},            // ATC_INV (no ATC modelled)
      cmdSync(2),                                      // CS = SEV
  });
  // RESUME and STALL_TERM are not here: with IDR0.STALL_MODEL = 0b01 they are CERROR_ILL.
  CHECK((cons(pop.h) & 0x1ff) == 4);
  CHECK(pop.h.read32(off::GERROR) == 0);
  CHECK(pop.rewalked().size() == 0);
  CHECK(pop.h.stat("cmdq.op.ATC_INV") == 1);
  CHECK(pop.h.stat("cmdq.op.SYNC") == 1);
}

// ---- queue mechanics and errors -----------------------------------------------------------

TEST_CASE("Smmuv3: CMD_SYNC with CS=IRQ writes MSIDATA to MSIADDR", "[smmuv3][cmdq][sync]") {
  Harness h;
  h.setUp();
  uint64_t msi = h.alloc(64, 64);
  h.mem().store64(msi, 0xaaaa'aaaa'bbbb'bbbb);
  h.submit({cmdSync(1, msi + 4, 0x1234'5678)});
  CHECK(h.mem().load64(msi) == 0x1234'5678'bbbb'bbbb);  // only the addressed 32 bits
  REQUIRE(h.irqs.size() == 1);
  CHECK(h.irqs[0] == Irq::CMD_SYNC);
  SECTION("Linux's MSI polling: the SYNC's own slot is overwritten with 0") {
    uint32_t prod = h.read32(off::CMDQ_PROD);
    uint64_t slot = h.cmdq + uint64_t(prod & 0xff) * 16;
    h.submit({cmdSync(1, slot, 0)});
    CHECK((h.mem().load64(slot) & 0xffffffff) == 0);
  }
  SECTION("an MSI address outside memory is GERROR.MSI_CMDQ_ABT_ERR") {
    h.submit({cmdSync(1, 0x10'0000'0000, 1)});
    CHECK(h.read32(off::GERROR) == (1u << 4));
    CHECK((cons(h) & 0x1ff) == 2);  // the queue keeps going
  }
  SECTION("CS=SEV and CS=NONE signal nothing") {
    h.submit({cmdSync(2), cmdSync(0)});
    CHECK(h.irqs.size() == 1);
  }
}

TEST_CASE("Smmuv3: CERROR_ILL stops the queue until acknowledged", "[smmuv3][cmdq][error]") {
  Harness h;
  h.setUp();
  uint64_t msi = h.alloc(8, 8);
  h.submit({cmdSync(), {0xff, 0}, cmdSync(1, msi, 0x55)});
  // CONS points at the bad command with ERR = CERROR_ILL (facts 1.6), GERROR.CMDQ_ERR active.
  CHECK(cons(h) == ((1u << 24) | 1));
  CHECK(((h.read32(off::GERROR) ^ h.read32(off::GERRORN)) & 1) == 1);
  CHECK(h.mem().load64(msi) == 0);
  // Writing PROD again does not restart it.
  h.submit({cmdSync(1, msi, 0x66)});
  CHECK(cons(h) == ((1u << 24) | 1));
  CHECK(h.mem().load64(msi) == 0);
  // Linux: replace the bad entry with a CMD_SYNC, then acknowledge (GERRORN = GERROR).
  h.mem().store64(h.cmdq + 16, cmdSync().dw0);
  h.mem().store64(h.cmdq + 24, 0);
  h.write32(off::GERRORN, h.read32(off::GERROR));
  CHECK(cons(h) == 4);  // resumed at CONS and drained: ERR cleared
  CHECK(h.mem().load64(msi) == 0x66);
  CHECK(h.stat("cmdq.illegal") == 1);
}

TEST_CASE("Smmuv3: every reserved field and reserved encoding is CERROR_ILL",
          "[smmuv3][cmdq][error]") {
  // IHI 0070 §4.1.3: a command with an unknown opcode, a reserved field set or a reserved
  // encoding is CERROR_ILL; the SMMU stops with CONS at it (facts 1.6). Positions: facts 1.3.
  // Default features: S1P, S2P, RIL, 16-bit ASID/VMID, SSIDSIZE 20, no ATS/HYP/PRI/stall.
  struct Row {
    const char* name;
    Cmd cmd;
    bool illegal;
  };
  constexpr uint64_t VA = 0x4000'0000;
  auto row = GENERATE(values<Row>({
      // opcodes and the SSec bit
      {"unknown opcode 0x00", {0x00, 0}, true},
      {"unknown opcode 0x47", {0x47, 0}, true},
      {"unknown opcode 0x31", {0x31, 0}, true},
      {"SSec = 1 (dw0[10]), no Secure state", {0x03 | (1ull << 10), 1}, true},
      // §4.2 prefetch: SID, SSV, SSID; PREFETCH_ADDR adds SIZE and ADDR
      {"PREFETCH_CONFIG with SSV and SSID", {0x01 | (1ull << 11) | (5ull << 12), 0}, false},
      {"PREFETCH_CONFIG dw0[9] reserved", {0x01 | (1ull << 9), 0}, true},
      {"PREFETCH_CONFIG dw1 reserved", {0x01, 1}, true},
      {"PREFETCH_ADDR SIZE and ADDR", {0x02, 0x1000 | 3}, false},
      {"PREFETCH_ADDR dw1[11:5] reserved", {0x02, 1ull << 5}, true},
      // §4.3 configuration invalidation
      {"CFGI_STE SID + LEAF", {0x03 | (7ull << 32), 1}, false},
      {"CFGI_STE dw1[1] reserved", {0x03, 2}, true},
      {"CFGI_STE dw0[31:12] reserved (no SSID)", {0x03 | (1ull << 12), 1}, true},
      {"CFGI_STE_RANGE dw1[5] reserved", {0x04, 1ull << 5}, true},
      {"CFGI_CD SID + SSID + LEAF", {0x05 | (3ull << 12) | (1ull << 32), 1}, false},
      {"CFGI_CD SSV reserved (CFGI_CD has no SSV)", {0x05 | (1ull << 11), 1}, true},
      {"CFGI_CD dw1[1] reserved", {0x05, 2}, true},
      {"CFGI_CD_ALL dw0[31:12] reserved", {0x06 | (1ull << 20), 0}, true},
      {"CFGI_CD_ALL dw1 reserved", {0x06, 1}, true},
      {"CFGI_VMS_PIDM (no VMS)", {0x07, 0}, true},
      // §4.4 TLB invalidation: which of VMID/ASID/address each opcode has
      {"TLBI_NH_ALL with an ASID", {0x10 | (1ull << 48), 0}, true},
      {"TLBI_NH_ALL with NUM (not a range command)", {0x10 | (1ull << 12), 0}, true},
      {"TLBI_NH_ASID with VA bits", {0x11, 0x1000}, true},
      {"TLBI_NH_VAA with an ASID", {0x13 | (1ull << 48), VA}, true},
      {"TLBI_NH_VA dw0[19:17] reserved", {0x12 | (1ull << 17), VA}, true},
      {"TLBI_NH_VA dw1[7:1] reserved", {0x12, VA | 2}, true},
      {"TLBI_S2_IPA IPA bit 52 reserved", {0x2a, 1ull << 52}, true},
      {"TLBI_S12_VMALL with an ASID", {0x28 | (1ull << 48), 0}, true},
      {"TLBI_NSNH_ALL with a VMID", {0x30 | (1ull << 32), 0}, true},
      // §4.4.1 range encodings (IDR3.RIL = 1)
      {"TG=0 with NUM != 0 (RES0)", cmdTlbi(0x12, 0, 1, VA, 0, 1, 0, 0), true},
      {"TG=0 with SCALE != 0 (RES0)", cmdTlbi(0x12, 0, 1, VA, 0, 0, 1, 0), true},
      {"TG=0 with TTL != 0 (RES0)", cmdTlbi(0x12, 0, 1, VA, 0, 0, 0, 3), true},
      {"TG=4K NUM=SCALE=TTL=0 reserved", cmdTlbi(0x12, 0, 1, VA, 1, 0, 0, 0), true},
      {"TG=16K NUM=SCALE=TTL=0 reserved", cmdTlbi(0x13, 0, 0, VA, 2, 0, 0, 0), true},
      {"TG=64K NUM=SCALE=TTL=0 reserved", cmdTlbi(0x2a, 1, 0, VA, 3, 0, 0, 0), true},
      {"TG=4K NUM=SCALE=0 with TTL=3", cmdTlbi(0x12, 0, 1, VA, 1, 0, 0, 3), false},
      {"TG=4K NUM=1 TTL=0", cmdTlbi(0x12, 0, 1, VA, 1, 1, 0, 0), false},
      {"TG=4K SCALE=1 TTL=0", cmdTlbi(0x12, 0, 1, VA, 1, 0, 1, 0), false},
      {"TG=16K TTL=1 without IDR5.DS", cmdTlbi(0x12, 0, 1, VA, 2, 1, 0, 1), true},
      {"TG=64K TTL=1", cmdTlbi(0x12, 0, 1, VA, 3, 1, 0, 1), false},
      // §4.5 ATS (not implemented: every ATC_INV is illegal, see the feature table)
      {"ATC_INV without ATS", {0x40, 0}, true},
      // §4.6 PRI, §4.7 stall
      {"PRI_RESP without PRI", {0x41, 0}, true},
      {"RESUME with STALL_MODEL=0b01", {0x44 | (1ull << 32), 0}, true},
      {"STALL_TERM with STALL_MODEL=0b01", {0x45 | (1ull << 32), 0}, true},
      // §4.8 SYNC
      {"SYNC CS=3 reserved", {0x46 | (3ull << 12), 0}, true},
      {"SYNC dw0[8] reserved", {0x46 | (1ull << 8), 0}, true},
      {"SYNC dw1[1:0] reserved", {0x46, 1}, true},
      {"SYNC CS=SEV MSH MSIATTR", {0x46 | (2ull << 12) | (3ull << 22) | (0xfull << 24), 0}, false},
      // EL2 and EL3
      {"TLBI_EL2_ALL without HYP", {0x20, 0}, true},
      {"TLBI_EL3_ALL (no EL3)", {0x18, 0}, true},
      {"TLBI_EL3_VA (no EL3)", {0x1a, 0}, true},
  }));
  DYNAMIC_SECTION(row.name) {
    Harness h;
    h.setUp();
    h.submit({row.cmd});
    if (row.illegal) {
      CHECK(cons(h) == (1u << 24));  // CONS at the entry, ERR = CERROR_ILL
      CHECK(h.read32(off::GERROR) == 1);
    } else {
      CHECK(cons(h) == 1);
      CHECK(h.read32(off::GERROR) == 0);
    }
  }
}

TEST_CASE("Smmuv3: a command for a feature the ID registers deny is CERROR_ILL",
          "[smmuv3][cmdq][error][features]") {
  // IHI 0070 §4.1.3 with §3.2/§6.3.1 (SMMU_IDR0/IDR1): one rule per feature, for every command
  // that needs it. `legal` is the command on an SMMU with the feature.
  struct Row {
    const char* name;
    Features without;
    Features with;
    Cmd cmd;
  };
  Features base;
  auto noS1 = base, noS2 = base, noSsid = base, asid8 = base, vmid8 = base, noRil = base;
  noS1.stage1 = false;
  noS1.httu = Httu::NONE;
  noS2.stage2 = false;
  noSsid.ssidBits = 0;
  asid8.asid16 = false;
  vmid8.vmid16 = false;
  noRil.ril = false;
  auto hyp = base, ats = base;
  hyp.hyp = true;
  ats.ats = true;
  constexpr uint64_t VA = 0x4000'0000;
  auto row = GENERATE_COPY(values<Row>({
      // IDR0.S1P: stage-1 structures and TLB entries
      {"CFGI_CD needs S1P", noS1, base, {0x05 | (1ull << 32), 1}},
      {"CFGI_CD_ALL needs S1P", noS1, base, {0x06 | (1ull << 32), 0}},
      {"TLBI_NH_ALL needs S1P", noS1, base, cmdTlbi(0x10, 1)},
      {"TLBI_NH_ASID needs S1P", noS1, base, cmdTlbi(0x11, 1, 1)},
      {"TLBI_NH_VA needs S1P", noS1, base, cmdTlbi(0x12, 1, 1, VA)},
      {"TLBI_NH_VAA needs S1P", noS1, base, cmdTlbi(0x13, 1, 0, VA)},
      // IDR0.S2P
      {"TLBI_S12_VMALL needs S2P", noS2, base, cmdTlbi(0x28, 1)},
      {"TLBI_S2_IPA needs S2P", noS2, base, cmdTlbi(0x2a, 1, 0, VA)},
      // IDR0.HYP
      {"TLBI_EL2_ALL needs HYP", base, hyp, cmdTlbi(0x20)},
      {"TLBI_EL2_ASID needs HYP", base, hyp, cmdTlbi(0x21, 0, 1)},
      {"TLBI_EL2_VA needs HYP", base, hyp, cmdTlbi(0x22, 0, 1, VA)},
      {"TLBI_EL2_VAA needs HYP", base, hyp, cmdTlbi(0x23, 0, 0, VA)},
      // IDR0.ATS
      {"ATC_INV needs ATS", base, ats, {0x40 | (1ull << 32), 0x1000 | 1}},
      // IDR1.SSIDSIZE = 0: SSV/SSID fields are RES0
      {"CFGI_CD SSID needs substreams", noSsid, base, {0x05 | (1ull << 12), 1}},
      {"PREFETCH_CONFIG SSV needs substreams", noSsid, base, {0x01 | (1ull << 11), 0}},
      // IDR0.ASID16 / VMID16: bits [15:8] RES0
      {"TLBI_NH_ASID ASID 0x100 needs ASID16", asid8, base, cmdTlbi(0x11, 1, 0x100)},
      {"TLBI_NH_VA ASID 0x100 needs ASID16", asid8, base, cmdTlbi(0x12, 1, 0x100, VA)},
      {"TLBI_NH_ALL VMID 0x100 needs VMID16", vmid8, base, cmdTlbi(0x10, 0x100)},
      {"TLBI_S12_VMALL VMID 0x100 needs VMID16", vmid8, base, cmdTlbi(0x28, 0x100)},
      {"TLBI_S2_IPA VMID 0x100 needs VMID16", vmid8, base, cmdTlbi(0x2a, 0x100, 0, VA)},
      // IDR3.RIL: NUM/SCALE/TTL/TG
      {"TLBI_NH_VA range needs RIL", noRil, base, cmdTlbi(0x12, 0, 1, VA, 1, 8, 1, 3)},
      {"TLBI_S2_IPA range needs RIL", noRil, base, cmdTlbi(0x2a, 1, 0, VA, 1, 8, 1, 3)},
      {"TLBI_NH_VAA TTL needs RIL", noRil, base, cmdTlbi(0x13, 0, 0, VA, 1, 1, 0, 3)},
  }));
  DYNAMIC_SECTION(row.name) {
    SECTION("refused without the feature") {
      Harness h(row.without);
      h.setUp();
      h.submit({row.cmd});
      CHECK(cons(h) == (1u << 24));
      CHECK(h.read32(off::GERROR) == 1);
    }
    SECTION("executed with it") {
      Harness h(row.with);
      h.setUp();
      h.submit({row.cmd});
      CHECK(cons(h) == 1);
      CHECK(h.read32(off::GERROR) == 0);
    }
  }
}

TEST_CASE("Smmuv3: CERROR_ABT for a queue outside memory", "[smmuv3][cmdq][error]") {
  Harness h;
  h.setUp();
  h.write32(off::CR0, CR0_SMMUEN);
  h.write64(off::CMDQ_BASE, 0x30'0000'0000 | 4);
  h.write32(off::CR0, CR0_SMMUEN | CR0_CMDQEN);
  h.write32(off::CMDQ_PROD, 1);
  CHECK(cons(h) == (2u << 24));
  CHECK(h.read32(off::GERROR) == 1);
  CHECK(h.stat("cmdq.fetch_aborts") == 1);
}

TEST_CASE("Smmuv3: the queue runs only while CMDQEN is set, and wraps", "[smmuv3][cmdq]") {
  Harness h;
  h.cmdqLog2 = 2;  // 4 entries
  h.setUp();
  h.write32(off::CR0, CR0_SMMUEN);
  h.submit({cmdSync(), cmdSync(), cmdSync()});
  CHECK(cons(h) == 0);
  h.write32(off::CR0, CR0_SMMUEN | CR0_CMDQEN);  // enabling consumes what is pending
  CHECK(cons(h) == 3);
  h.submit({cmdSync(), cmdSync(), cmdSync()});
  CHECK(cons(h) == (4 | 2));  // wrap bit (bit 2) set, index 2
  for (unsigned i = 0; i < 5; i++) h.submit({cmdSync(), cmdSync()});
  CHECK(cons(h) == h.read32(off::CMDQ_PROD));
  CHECK(h.stat("cmdq.consumed") == 16);
}

}  // namespace
}  // namespace nb::smmu::testing
