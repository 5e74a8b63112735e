// tests/hw/smmuv3: ID registers, CR0/CR0ACK, GBPA, GERROR, IRQ_CTRL and MMIO access rules.

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

TEST_CASE("Smmuv3: ID registers advertise the features", "[smmuv3][registers]") {
  struct Row {
    const char* name;
    Features f;
  };
  Features all;
  all.hyp = true;
  all.ats = true;
  Features s1Only;
  s1Only.stage2 = false;
  s1Only.httu = Httu::ACCESS;
  s1Only.oas = 40;
  s1Only.gran16k = false;
  s1Only.asid16 = false;
  s1Only.twoLevelStreamTable = false;
  s1Only.cd2l = false;
  s1Only.ril = false;
  Features s2Only;
  s2Only.stage1 = false;
  s2Only.httu = Httu::NONE;
  s2Only.oas = 52;
  s2Only.gran4k = false;
  s2Only.vmid16 = false;
  s2Only.msi = false;
  s2Only.sev = false;
  s2Only.sidBits = 8;
  s2Only.ssidBits = 0;
  s2Only.cmdqLog2Max = 10;
  s2Only.evtqLog2Max = 7;
  s2Only.attrTypesOvr = false;
  auto row = GENERATE_COPY(values<Row>({{"all", all}, {"s1-only", s1Only}, {"s2-only", s2Only}}));
  DYNAMIC_SECTION(row.name) {
    Harness h(row.f);
    const Features& f = row.f;
    uint32_t idr0 = h.read32(off::IDR0);
    // Facts 1.8 bit positions, literally.
    CHECK(((idr0 >> 0) & 1) == f.stage2);
    CHECK(((idr0 >> 1) & 1) == f.stage1);
    CHECK(((idr0 >> 2) & 3) == 2);                       // TTF AArch64
    CHECK(((idr0 >> 6) & 3) == uint32_t(f.httu));
    CHECK(((idr0 >> 9) & 1) == f.hyp);
    CHECK(((idr0 >> 10) & 1) == f.ats);
    CHECK(((idr0 >> 12) & 1) == f.asid16);
    CHECK(((idr0 >> 13) & 1) == f.msi);
    CHECK(((idr0 >> 14) & 1) == f.sev);
    CHECK(((idr0 >> 16) & 1) == 0);                      // no PRI
    CHECK(((idr0 >> 18) & 1) == f.vmid16);
    CHECK(((idr0 >> 19) & 1) == f.cd2l);
    CHECK(((idr0 >> 21) & 3) == 2);                      // little-endian
    CHECK(((idr0 >> 27) & 3) == (f.twoLevelStreamTable ? 1u : 0u));
    uint32_t idr1 = h.read32(off::IDR1);
    CHECK((idr1 & 0x3f) == f.sidBits);
    CHECK(((idr1 >> 6) & 0x1f) == f.ssidBits);
    CHECK(((idr1 >> 16) & 0x1f) == f.evtqLog2Max);
    CHECK(((idr1 >> 21) & 0x1f) == f.cmdqLog2Max);
    CHECK(((idr1 >> 27) & 1) == f.attrTypesOvr);
    CHECK(((h.read32(off::IDR3) >> 10) & 1) == f.ril);
    uint32_t idr5 = h.read32(off::IDR5);
    const unsigned oasBits[] = {32, 36, 40, 42, 44, 48, 52};
    CHECK(oasBits[idr5 & 7] == f.oas);
    CHECK(((idr5 >> 4) & 1) == f.gran4k);
    CHECK(((idr5 >> 5) & 1) == f.gran16k);
    CHECK(((idr5 >> 6) & 1) == f.gran64k);
    CHECK(h.read32(off::IDR2) == 0);
    CHECK(h.read32(off::IDR4) == 0);
    CHECK(h.read32(off::AIDR) == 0x02);                  // SMMUv3.2
    // Read-only: writes are ignored.
    h.write32(off::IDR0, ~0u);
    CHECK(h.read32(off::IDR0) == idr0);
  }
}

TEST_CASE("Smmuv3: impossible features are the composition's error", "[smmuv3][registers]") {
  PhysMem* unused = nullptr;
  (void)unused;
  Features f;
  f.oas = 50;
  CHECK_THROWS(makeIdRegisters(f));
  f.oas = 52;
  f.gran64k = false;
  CHECK_THROWS(makeIdRegisters(f));
  Features none;
  none.stage1 = none.stage2 = false;
  CHECK_THROWS(makeIdRegisters(none));
}

TEST_CASE("Smmuv3: CR0ACK mirrors CR0 at once", "[smmuv3][registers]") {
  Harness h;
  h.write32(off::CR0, CR0_SMMUEN | CR0_CMDQEN);
  CHECK(h.read32(off::CR0) == (CR0_SMMUEN | CR0_CMDQEN));
  CHECK(h.read32(off::CR0ACK) == (CR0_SMMUEN | CR0_CMDQEN));
  // PRIQEN (no PRI) and ATSCHK (no ATS) and undefined bits are RES0.
  h.write32(off::CR0, 0xffffffff);
  CHECK(h.read32(off::CR0ACK) == (CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN));
  h.write32(off::CR0ACK, 0);  // read-only
  CHECK(h.read32(off::CR0ACK) == (CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN));
  h.write32(off::CR0, 0);
  CHECK(h.read32(off::CR0ACK) == 0);
}

TEST_CASE("Smmuv3: GBPA update handshake", "[smmuv3][registers]") {
  Harness h;
  const uint32_t ABORT = 1u << 20, UPDATE = 1u << 31;
  CHECK(h.read32(off::GBPA) == (1u << 12));  // reset: bypass, SHCFG = incoming
  SECTION("bypass while disabled") {
    CHECK(expectPa(h.translate(3, 0x1234)) == 0x1234);
  }
  SECTION("UPDATE=1 applies the fields and self-clears") {
    h.write32(off::GBPA, UPDATE | ABORT);
    CHECK(h.read32(off::GBPA) == ABORT);
    auto r = h.translate(3, 0x1234);
    REQUIRE(r.is<TranslateAbort>());
    CHECK(r.get<TranslateAbort>().cause == AbortCause::GBPA_ABORT);
    h.write32(off::GBPA, UPDATE);
    CHECK(h.read32(off::GBPA) == 0);
    CHECK(expectPa(h.translate(3, 0x1234)) == 0x1234);
  }
  SECTION("a write without UPDATE changes nothing") {
    h.write32(off::GBPA, ABORT);
    CHECK(h.read32(off::GBPA) == (1u << 12));
  }
}

TEST_CASE("Smmuv3: GERROR is raised by flipping and acknowledged through GERRORN",
          "[smmuv3][registers]") {
  Harness h;
  h.setUp();
  h.submit({{0xff, 0}});  // unknown opcode: CERROR_ILL
  CHECK(h.read32(off::GERROR) == 1);
  CHECK(h.read32(off::GERRORN) == 0);
  CHECK(h.irqs.size() == 1);
  CHECK(h.irqs[0] == Irq::GERROR);
  // Acknowledging with the bad entry still at CONS re-executes it: the error comes back.
  h.write32(off::GERRORN, h.read32(off::GERROR));
  CHECK((h.read32(off::GERROR) ^ h.read32(off::GERRORN)) == 1);
  CHECK(h.read32(off::GERROR) == 0);
  // Linux's recovery (facts 1.6): overwrite the entry with a CMD_SYNC, then acknowledge by
  // copying GERROR into GERRORN (facts 1.7).
  h.mem().store64(h.cmdq, cmdSync().dw0);
  h.write32(off::GERRORN, h.read32(off::GERROR));
  CHECK((h.read32(off::GERROR) ^ h.read32(off::GERRORN)) == 0);
  // The next error flips the bit again.
  h.submit({{0xff, 0}});
  CHECK(h.read32(off::GERROR) == 1);
  CHECK(h.read32(off::GERRORN) == 0);
  // GERROR is read-only; GERRORN keeps only the defined bits (0x1fd).
  h.write32(off::GERROR, 0xffffffff);
  CHECK(h.read32(off::GERROR) == 1);
  h.write32(off::GERRORN, 0xffffffff);
  CHECK(h.read32(off::GERRORN) == 0x1fd);
}

TEST_CASE("Smmuv3: IRQ_CTRL_ACK mirrors IRQ_CTRL", "[smmuv3][registers]") {
  Harness h;
  h.write32(off::IRQ_CTRL, 0xff);
  CHECK(h.read32(off::IRQ_CTRL) == 0x5);  // PRIQ_IRQEN is RES0
  CHECK(h.read32(off::IRQ_CTRL_ACK) == 0x5);
}

TEST_CASE("Smmuv3: 64-bit registers take 32- and 64-bit accesses", "[smmuv3][registers]") {
  Harness h;
  h.write64(off::STRTAB_BASE, 0x0000'1234'5678'9ac0);
  CHECK(h.read64(off::STRTAB_BASE) == 0x0000'1234'5678'9ac0);
  CHECK(h.read32(off::STRTAB_BASE) == 0x5678'9ac0);
  CHECK(h.read32(off::STRTAB_BASE + 4) == 0x0000'1234);
  h.write32(off::STRTAB_BASE + 4, 0x4000'00ab);  // RA (bit 62) and ADDR[47:32]
  CHECK(h.read64(off::STRTAB_BASE) == 0x4000'00ab'5678'9ac0);
  h.write32(off::STRTAB_BASE, 0xffff'ffff);       // ADDR[5:0] are not part of the field
  CHECK(h.read64(off::STRTAB_BASE) == 0x4000'00ab'ffff'ffc0);
  // Address bits above the 48-bit OAS are RES0.
  h.write64(off::STRTAB_BASE, ~0ull);
  CHECK(h.read64(off::STRTAB_BASE) == (0x4000'0000'0000'0000 | mask(47, 6)));
}

TEST_CASE("Smmuv3: a 64-bit access to 32-bit registers splits into two",
          "[smmuv3][registers]") {
  Harness h;
  h.write64(off::CR0, (uint64_t(0x3) << 32) | CR0_CMDQEN);  // CR0 and CR0ACK (read-only)
  CHECK(h.read64(off::CR0) == ((uint64_t(CR0_CMDQEN) << 32) | CR0_CMDQEN));
  CHECK(h.read64(off::IDR0) == (uint64_t(h.read32(off::IDR1)) << 32 | h.read32(off::IDR0)));
}

TEST_CASE("Smmuv3: unknown offsets, odd sizes and misalignment are harmless",
          "[smmuv3][registers]") {
  Harness h;
  auto offset = GENERATE(0x30u, 0x38u, 0x48u, 0xa8u, 0xc0u, 0xfffcu, 0x10000u, 0x1fff8u,
                         0x20000u, 0xffff'fff8u);
  DYNAMIC_SECTION("offset " << offset) {
    h.write32(offset, 0xffffffff);
    h.write64(offset & ~7u, ~0ull);
    CHECK(h.read32(offset) == 0);
    CHECK(h.read64(offset & ~7u) == 0);
  }
  SECTION("odd sizes and misaligned accesses") {
    h.smmu.mmioWrite(off::CR0, 1, 2);
    h.smmu.mmioWrite(off::CR0, 1, 1);
    h.smmu.mmioWrite(off::CR0 + 1, 1, 4);
    h.smmu.mmioWrite(off::STRTAB_BASE + 4, ~0ull, 8);
    CHECK(h.read32(off::CR0) == 0);
    CHECK(h.smmu.mmioRead(off::IDR0, 2) == 0);
    CHECK(h.smmu.mmioRead(off::IDR0 + 2, 4) == 0);
    CHECK(h.read64(off::STRTAB_BASE) == 0);
  }
}

TEST_CASE("Smmuv3: table and queue bases are read-only while enabled", "[smmuv3][registers]") {
  Harness h;
  h.setUp();
  uint64_t strtab = h.read64(off::STRTAB_BASE);
  uint64_t cmdq = h.read64(off::CMDQ_BASE);
  uint64_t evtq = h.read64(off::EVTQ_BASE);
  uint32_t cfg = h.read32(off::STRTAB_BASE_CFG);
  h.write64(off::STRTAB_BASE, 0x1000);
  h.write32(off::STRTAB_BASE_CFG, 3);
  h.write64(off::CMDQ_BASE, 0x1000);
  h.write64(off::EVTQ_BASE, 0x1000);
  h.write32(off::CMDQ_CONS, 5);
  h.write32(off::EVTQ_PROD, 5);
  CHECK(h.read64(off::STRTAB_BASE) == strtab);
  CHECK(h.read32(off::STRTAB_BASE_CFG) == cfg);
  CHECK(h.read64(off::CMDQ_BASE) == cmdq);
  CHECK(h.read64(off::EVTQ_BASE) == evtq);
  CHECK(h.read32(off::CMDQ_CONS) == 0);
  CHECK(h.read32(off::EVTQ_PROD) == 0);
  // EVTQ_CONS stays writable: it is software's pointer.
  h.write32(off::EVTQ_CONS, 0x80000000);
  CHECK(h.read32(off::EVTQ_CONS) == 0x80000000);
}

TEST_CASE("Smmuv3: queue registers live at their architected offsets", "[smmuv3][registers]") {
  Harness h;
  h.write32(0x98, 7);            // CMDQ_PROD
  h.write32(0x10000 + 0xa8, 9);  // EVTQ_PROD (page 1)
  h.write32(0x10000 + 0xac, 11); // EVTQ_CONS (page 1)
  CHECK(h.read32(0x98) == 7);
  CHECK(h.read32(0x10000 + 0xa8) == 9);
  CHECK(h.read32(0x10000 + 0xac) == 11);
  CHECK(h.read32(0xa8) == 0);    // page 0 has no EVTQ_PROD
  CHECK(h.read32(0xac) == 0);
}

// ---- reset ---------------------------------------------------------------------------------

TEST_CASE("Smmuv3: a reset returns every register to its reset value and empties queues and caches",
          "[smmuv3][registers][reset][conformance]") {
  // IHI 0070 §6.3 (each register's reset behaviour): SMMU_CR0 and CR0ACK reset to 0 (§6.3.9,
  // §6.3.10); SMMU_GBPA: ABORT IMPLEMENTATION DEFINED (this model: 0, bypass), SHCFG 0b01,
  // everything else 0 (§6.3.14); IRQ_CTRL and IRQ_CTRLACK 0 (§6.3.15/16); GERROR and GERRORN 0
  // (§6.3.17/18); CMDQ_CONS.ERR 0 (§6.3.27). CR1, CR2, the IRQ_CFG registers, STRTAB_BASE/CFG
  // and the queue BASE/PROD/CONS registers reset to UNKNOWN values: this model's choice is 0.
  // ID registers are read-only constants and do not change.
  struct Row {
    const char* name;
    uint32_t offset;
    unsigned size;
    uint64_t reset;
    bool architected;  // false: UNKNOWN in the architecture, 0 by this model's choice
  };
  const Row rows[] = {
      {"CR0", 0x20, 4, 0, true},
      {"CR0ACK", 0x24, 4, 0, true},
      {"CR1", 0x28, 4, 0, false},
      {"CR2", 0x2c, 4, 0, false},
      {"GBPA", 0x44, 4, 1u << 12, true},  // SHCFG = 0b01 (incoming), ABORT = 0 (IMP DEF)
      {"IRQ_CTRL", 0x50, 4, 0, true},
      {"IRQ_CTRL_ACK", 0x54, 4, 0, true},
      {"GERROR", 0x60, 4, 0, true},
      {"GERRORN", 0x64, 4, 0, true},
      {"GERROR_IRQ_CFG0", 0x68, 8, 0, false},
      {"GERROR_IRQ_CFG1", 0x70, 4, 0, false},
      {"GERROR_IRQ_CFG2", 0x74, 4, 0, false},
      {"STRTAB_BASE", 0x80, 8, 0, false},
      {"STRTAB_BASE_CFG", 0x88, 4, 0, false},
      {"CMDQ_BASE", 0x90, 8, 0, false},
      {"CMDQ_PROD", 0x98, 4, 0, false},
      {"CMDQ_CONS", 0x9c, 4, 0, true},  // ERR = 0 (architected); the index is UNKNOWN
      {"EVTQ_BASE", 0xa0, 8, 0, false},
      {"EVTQ_IRQ_CFG0", 0xb0, 8, 0, false},
      {"EVTQ_IRQ_CFG1", 0xb8, 4, 0, false},
      {"EVTQ_IRQ_CFG2", 0xbc, 4, 0, false},
      {"EVTQ_PROD", 0x10000 + 0xa8, 4, 0, false},
      {"EVTQ_CONS", 0x10000 + 0xac, 4, 0, false},
  };
  Features f;
  f.hyp = true;
  Harness h(f);
  uint32_t ids[8];
  for (unsigned i = 0; i < 8; i++) ids[i] = h.read32(4 * i);  // IDR0..IDR5, IIDR, AIDR

  // Program a live SMMU: every register away from its reset value.
  h.setUp(4);
  h.write32(off::CR1, 0xd75);  // ISH WB for tables and queues
  h.write32(off::CR0, 0);
  h.write32(off::CR2, CR2_E2H | CR2_RECINVSID | CR2_PTM);
  h.write32(off::GBPA, (1u << 31) | (1u << 20));  // ABORT, with the UPDATE handshake
  h.write64(0x68, 0x8000'1000);
  h.write32(0x70, 0x1234);
  h.write32(0x74, 0x31);
  h.write64(0xb0, 0x8000'2000);
  h.write32(0xb8, 0x5678);
  h.write32(0xbc, 0x31);
  h.enable();
  h.writeSte(1, steBypass());
  expectPa(h.translate(1, 0x1000));  // the STE is cached
  h.translate(16, 0);                // C_BAD_STREAMID: EVTQ_PROD moves
  h.submit({cmdSync(), {0xff, 0}});  // CERROR_ILL: GERROR.CMDQ_ERR, CMDQ_CONS.ERR
  h.write32(off::GERRORN, 1u << 2);  // GERRORN away from 0 (EVTQ_ABT_ERR bit)
  h.drainEvents();                   // EVTQ_CONS moves
  for (auto& row : rows) {
    INFO(row.name << " before the reset");
    CHECK(h.smmu.mmioRead(row.offset, row.size) != row.reset);
  }
  CHECK(h.stat("cfg.ste_hits") + h.stat("cfg.ste_misses") > 0);

  h.smmu.reset();

  for (auto& row : rows) {
    INFO(row.name << (row.architected ? " (architected reset value)" : " (UNKNOWN: model 0)"));
    CHECK(h.smmu.mmioRead(row.offset, row.size) == row.reset);
  }
  for (unsigned i = 0; i < 8; i++) CHECK(h.read32(4 * i) == ids[i]);
  CHECK(h.stat("iotlb.entries") == 0);
  // SMMUEN = 0 and GBPA bypass: the SMMU passes transactions through.
  CHECK(expectPa(h.translate(1, 0x4000)) == 0x4000);
  // The STE cache is empty: after bring-up a changed STE is seen without any CFGI.
  h.setUp(4);
  h.writeSte(1, steAbort());
  CHECK(h.translate(1, 0x1000).is<TranslateAbort>());
  // The queues start empty: a command runs from index 0.
  h.submit({cmdSync()});
  CHECK(h.read32(off::CMDQ_CONS) == 1);
}

}  // namespace
}  // namespace nb::smmu::testing
