// tests/components/page_table: golden geometry, concatenation and TCR/VTCR/MAIR values.
//
// Every expected value below is typed in from facts 4.3-4.5 (worked by hand from the formulas
// there), never computed by the code under test.

#include "tests/components/page_table/page-table-testing.h"

namespace nb::pt {
namespace {

constexpr auto S1 = Format::STAGE1;
constexpr auto S2 = Format::STAGE2;
constexpr auto G4K = Granule::SIZE_4K;
constexpr auto G16K = Granule::SIZE_16K;
constexpr auto G64K = Granule::SIZE_64K;

constexpr uint64_t SZ_4K = 4 * KiB, SZ_16K = 16 * KiB, SZ_64K = 64 * KiB;
constexpr uint64_t SZ_2M = 2 * MiB, SZ_32M = 32 * MiB, SZ_512M = 512 * MiB;
constexpr uint64_t SZ_1G = GiB, SZ_4T = 4 * TiB;

Geometry geometryOf(Format format, Granule granule, uint32_t ias, uint32_t oas) {
  auto g = makeGeometry(format, granule, ias, oas);
  REQUIRE(g.is<Geometry>());
  return g.get<Geometry>();
}

TEST_CASE("PageTable: geometry matches the golden table", "[page_table][geometry]") {
  // format, granule, ias, oas -> startLevel, levels, pgdBits, concat, pgdBytes, leaf sizes
  auto [format, granule, ias, oas, startLevel, levels, pgdBits, concat, pgdBytes, pgsizes] =
      GENERATE(table<Format, Granule, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                     uint64_t, uint64_t>({
          // 4K: bits_per_level 9; va_bits = ias - 12.
          {S1, G4K, 32, 32, 1, 3, 2, 1, 64, SZ_4K | SZ_2M | SZ_1G},
          {S1, G4K, 36, 40, 1, 3, 6, 1, 512, SZ_4K | SZ_2M | SZ_1G},
          {S1, G4K, 40, 40, 0, 4, 1, 1, 64, SZ_4K | SZ_2M | SZ_1G},
          {S1, G4K, 42, 42, 0, 4, 3, 1, 64, SZ_4K | SZ_2M | SZ_1G},
          {S1, G4K, 44, 44, 0, 4, 5, 1, 256, SZ_4K | SZ_2M | SZ_1G},
          {S1, G4K, 48, 48, 0, 4, 9, 1, 4096, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 32, 40, 1, 3, 2, 1, 64, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 36, 36, 1, 3, 6, 1, 512, SZ_4K | SZ_2M | SZ_1G},
          // Mandatory concatenation case 2: 4K, start level 0, oas 40 or 42.
          {S2, G4K, 40, 40, 1, 3, 10, 2, 8192, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 40, 42, 1, 3, 10, 2, 8192, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 42, 42, 1, 3, 12, 8, 32768, SZ_4K | SZ_2M | SZ_1G},
          // New rule: no optional concatenation for larger OAS.
          {S2, G4K, 40, 44, 0, 4, 1, 1, 64, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 42, 48, 0, 4, 3, 1, 64, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 44, 44, 0, 4, 5, 1, 256, SZ_4K | SZ_2M | SZ_1G},
          {S2, G4K, 48, 48, 0, 4, 9, 1, 4096, SZ_4K | SZ_2M | SZ_1G},
          // 16K: bits_per_level 11; va_bits = ias - 14.
          {S1, G16K, 32, 32, 2, 2, 7, 1, 1024, SZ_16K | SZ_32M},
          {S1, G16K, 36, 36, 2, 2, 11, 1, 16384, SZ_16K | SZ_32M},
          {S1, G16K, 40, 40, 1, 3, 4, 1, 128, SZ_16K | SZ_32M},
          {S1, G16K, 42, 42, 1, 3, 6, 1, 512, SZ_16K | SZ_32M},
          {S1, G16K, 44, 44, 1, 3, 8, 1, 2048, SZ_16K | SZ_32M},
          {S1, G16K, 48, 48, 0, 4, 1, 1, 64, SZ_16K | SZ_32M},
          {S2, G16K, 32, 40, 2, 2, 7, 1, 1024, SZ_16K | SZ_32M},
          {S2, G16K, 36, 40, 2, 2, 11, 1, 16384, SZ_16K | SZ_32M},
          // Case 3: 16K, start level 1, oas 40 -> start at level 2 with 16 tables.
          {S2, G16K, 40, 40, 2, 2, 15, 16, 262144, SZ_16K | SZ_32M},
          {S2, G16K, 40, 42, 1, 3, 4, 1, 128, SZ_16K | SZ_32M},
          {S2, G16K, 44, 48, 1, 3, 8, 1, 2048, SZ_16K | SZ_32M},
          // Case 1: 16K, start level 0, ias or oas 48 -> level 1 with 2 tables.
          {S2, G16K, 48, 48, 1, 3, 12, 2, 32768, SZ_16K | SZ_32M},
          // 64K: bits_per_level 13; va_bits = ias - 16. Never concatenated.
          {S1, G64K, 32, 32, 2, 2, 3, 1, 64, SZ_64K | SZ_512M},
          {S1, G64K, 36, 36, 2, 2, 7, 1, 1024, SZ_64K | SZ_512M},
          {S1, G64K, 40, 40, 2, 2, 11, 1, 16384, SZ_64K | SZ_512M},
          {S1, G64K, 42, 42, 2, 2, 13, 1, 65536, SZ_64K | SZ_512M},
          {S1, G64K, 44, 44, 1, 3, 2, 1, 64, SZ_64K | SZ_512M},
          {S1, G64K, 48, 48, 1, 3, 6, 1, 512, SZ_64K | SZ_512M},
          {S1, G64K, 52, 52, 1, 3, 10, 1, 8192, SZ_64K | SZ_512M | SZ_4T},
          {S1, G64K, 44, 52, 1, 3, 2, 1, 64, SZ_64K | SZ_512M | SZ_4T},
          // 4T needs level 1: not available when the walk starts at level 2.
          {S1, G64K, 40, 52, 2, 2, 11, 1, 16384, SZ_64K | SZ_512M},
          {S2, G64K, 32, 48, 2, 2, 3, 1, 64, SZ_64K | SZ_512M},
          {S2, G64K, 48, 48, 1, 3, 6, 1, 512, SZ_64K | SZ_512M},
          {S2, G64K, 52, 52, 1, 3, 10, 1, 8192, SZ_64K | SZ_512M | SZ_4T},
      }));
  DYNAMIC_SECTION(formatName(format) << " granule " << uint32_t(granule) << " ias " << ias
                                     << " oas " << oas) {
    Geometry g = geometryOf(format, granule, ias, oas);
    CHECK(g.startLevel == startLevel);
    CHECK(g.levels == levels);
    CHECK(g.pgdBits == pgdBits);
    CHECK(g.concat == concat);
    CHECK(g.pgdBytes == pgdBytes);
    CHECK(g.pgsizeBitmap == pgsizes);
  }
}

TEST_CASE("PageTable: level shift, block size and index helpers", "[page_table][geometry]") {
  // ARM_LPAE_LVL_SHIFT (facts 4.3 table): 4K L3=12 L2=21 L1=30 L0=39; 16K 14/25/36/47;
  // 64K 16/29/42.
  Geometry g4 = geometryOf(S1, G4K, 48, 48);
  CHECK(g4.levelShift(3) == 12);
  CHECK(g4.levelShift(2) == 21);
  CHECK(g4.levelShift(1) == 30);
  CHECK(g4.levelShift(0) == 39);
  CHECK(g4.blockSize(2) == SZ_2M);
  CHECK(g4.entries(0) == 512);
  // 0x80'a010'3000 = 1 << 39 | 2 << 30 | 0x100 << 21 | 0x103 << 12.
  CHECK(g4.index(0x80'a010'3000, 0) == 1);      // bits 47:39
  CHECK(g4.index(0x80'a010'3000, 1) == 2);      // bits 38:30
  CHECK(g4.index(0x80'a010'3000, 2) == 0x100);  // bits 29:21
  CHECK(g4.index(0x80'a010'3000, 3) == 0x103);  // bits 20:12
  CHECK(g4.leafAllowed(1));
  CHECK(!g4.leafAllowed(0));

  Geometry g16 = geometryOf(S1, G16K, 48, 48);
  CHECK(g16.levelShift(3) == 14);
  CHECK(g16.levelShift(2) == 25);
  CHECK(g16.levelShift(1) == 36);
  CHECK(g16.levelShift(0) == 47);
  CHECK(!g16.leafAllowed(1));
  CHECK(g16.leafAllowed(2));

  Geometry g64 = geometryOf(S1, G64K, 52, 52);
  CHECK(g64.levelShift(3) == 16);
  CHECK(g64.levelShift(2) == 29);
  CHECK(g64.levelShift(1) == 42);
  CHECK(g64.leafAllowed(1));
  CHECK(g64.entries(1) == 1024);  // the PGD: pgdBits 10
  CHECK(g64.entries(2) == 8192);

  // Concatenated PGD: the start-level index includes the table number.
  Geometry c = geometryOf(S2, G4K, 40, 40);
  CHECK(c.startLevel == 1);
  CHECK(c.entries(1) == 1024);
  CHECK(c.index(uint64_t(0xff) << 32 | 0xc000'0000, 1) == 1023);
}

TEST_CASE("PageTable: bad geometries are EINVAL", "[page_table][geometry]") {
  auto [format, granule, ias, oas] = GENERATE(table<Format, Granule, uint32_t, uint32_t>({
      {S1, G4K, 52, 52},    // 52 bits need the 64K granule
      {S1, G16K, 48, 52},
      {S2, G4K, 52, 48},
      {S1, G64K, 56, 52},   // > 52
      {S1, G64K, 52, 56},
      {S1, G4K, 39, 40},    // not an IPS size
      {S1, G4K, 48, 47},
      {S1, G4K, 0, 48},
      {S1, Granule(8192), 40, 40},
      // Mandatory concatenation of more than 16 tables.
      {S2, G4K, 44, 40},   // start 0 with 32 entries
      {S2, G4K, 48, 42},   // 512 entries
      {S2, G16K, 42, 40},  // start 1 with 64 entries
  }));
  DYNAMIC_SECTION(formatName(format) << " granule " << uint32_t(granule) << " ias " << ias
                                     << " oas " << oas) {
    auto g = makeGeometry(format, granule, ias, oas);
    REQUIRE(g.is<Errno>());
    CHECK(g.get<Errno>() == Errno::INVAL);
  }
}

TEST_CASE("PageTable: stage-1 TCR and MAIR", "[page_table][geometry]") {
  // granule, ias, oas -> ips, tg, tsz (sh IS=3, orgn/irgn WBWA=1 for a coherent walker)
  auto [granule, ias, oas, ips, tg, tsz] =
      GENERATE(table<Granule, uint32_t, uint32_t, uint8_t, uint8_t, uint8_t>({
          {G4K, 48, 48, 5, 0, 16},
          {G4K, 32, 32, 0, 0, 32},
          {G4K, 40, 42, 3, 0, 24},
          {G16K, 36, 40, 2, 2, 28},
          {G16K, 44, 44, 4, 2, 20},
          {G64K, 52, 52, 6, 1, 12},
          {G64K, 48, 36, 1, 1, 16},
      }));
  DYNAMIC_SECTION("granule " << uint32_t(granule) << " ias " << ias << " oas " << oas) {
    S1Config cfg = makeS1Config(geometryOf(S1, granule, ias, oas), 0x4567'8000);
    CHECK(cfg.ttbr == 0x4567'8000);
    CHECK(cfg.tcr.ips == ips);
    CHECK(cfg.tcr.tg == tg);
    CHECK(cfg.tcr.tsz == tsz);
    CHECK(cfg.tcr.sh == 3);
    CHECK(cfg.tcr.orgn == 1);
    CHECK(cfg.tcr.irgn == 1);
    CHECK(cfg.mair == 0x0000'0000'f404'ff44);
  }
}

TEST_CASE("PageTable: stage-2 VTCR with SL0", "[page_table][geometry]") {
  // granule, ias, oas -> ps, tg, sl, tsz. SL0: 4K 2=L0 1=L1 0=L2; 16K/64K 2=L1 1=L2 0=L3.
  auto [granule, ias, oas, ps, tg, sl, tsz] =
      GENERATE(table<Granule, uint32_t, uint32_t, uint8_t, uint8_t, uint8_t, uint8_t>({
          {G4K, 48, 48, 5, 0, 2, 16},   // start L0
          {G4K, 44, 44, 4, 0, 2, 20},   // start L0
          {G4K, 42, 42, 3, 0, 1, 22},   // concatenated: start L1
          {G4K, 40, 40, 2, 0, 1, 24},   // concatenated: start L1
          {G4K, 40, 44, 4, 0, 2, 24},   // start L0, not concatenated
          {G4K, 36, 40, 2, 0, 1, 28},   // start L1
          {G4K, 32, 32, 0, 0, 1, 32},   // start L1
          {G16K, 48, 48, 5, 2, 2, 16},  // concatenated: start L1
          {G16K, 44, 48, 5, 2, 2, 20},  // start L1
          {G16K, 40, 40, 2, 2, 1, 24},  // concatenated: start L2
          {G16K, 36, 36, 1, 2, 1, 28},  // start L2
          {G64K, 52, 52, 6, 1, 2, 12},  // start L1
          {G64K, 48, 48, 5, 1, 2, 16},  // start L1
          {G64K, 42, 48, 5, 1, 1, 22},  // start L2
          {G64K, 32, 32, 0, 1, 1, 32},  // start L2
      }));
  DYNAMIC_SECTION("granule " << uint32_t(granule) << " ias " << ias << " oas " << oas) {
    S2Config cfg = makeS2Config(geometryOf(S2, granule, ias, oas), 0x4800'0000);
    CHECK(cfg.vttbr == 0x4800'0000);
    CHECK(cfg.vtcr.ps == ps);
    CHECK(cfg.vtcr.tg == tg);
    CHECK(cfg.vtcr.sl == sl);
    CHECK(cfg.vtcr.tsz == tsz);
    CHECK(cfg.vtcr.sh == 3);
    CHECK(cfg.vtcr.orgn == 1);
    CHECK(cfg.vtcr.irgn == 1);
  }
}

TEST_CASE("PageTable: errno names are Linux's", "[page_table][geometry]") {
  CHECK(errnoName(Errno::INVAL) == "EINVAL");
  CHECK(errnoName(Errno::EXIST) == "EEXIST");
  CHECK(errnoName(Errno::RANGE) == "ERANGE");
  CHECK(errnoName(Errno::NOMEM) == "ENOMEM");
  CHECK(errnoName(Errno::OPNOTSUPP) == "EOPNOTSUPP");
  CHECK(int(Errno::INVAL) == 22);
  CHECK(int(Errno::EXIST) == 17);
}

}  // namespace
}  // namespace nb::pt
