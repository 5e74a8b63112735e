// STEs and CDs built by field in a scenario (DmaStep steFields / cdFields) are the words the
// facts' layouts give, derived here by hand; a field that does not fit is refused before anything
// runs.

#include "tests/system/process-testing.h"

#include <catch2/catch.hpp>
#include <stdio.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace {

std::string path(const std::string& rel) { return nb::testing::runfile(rel); }

uint64_t qword(FILE* image, uint64_t pa) {
  constexpr uint64_t BASE = 0x40000000;   // hw.toml's [memory] base
  uint64_t v = 0;
  REQUIRE(fseek(image, long(pa - BASE), SEEK_SET) == 0);
  REQUIRE(fread(&v, 8, 1, image) == 1);
  return v;
}

TEST_CASE("Scenarios: STEs and CDs built by field are the facts' words", "[scenario][builders]") {
  std::string image = std::string(getenv("TEST_TMPDIR")) + "/builders.img";
  auto r = nb::testing::runProcess(
      "system/nestbed", "run --dump-memory " + image + " " + path("system/manifests/hw.toml") + " " +
                            path("tests/system/scenarios/structure-builders.capnp"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  FILE* f = fopen(image.c_str(), "rb");
  REQUIRE(f != nullptr);
  struct Word {
    uint64_t pa, value;
    const char* why;
  };
  Word words[] = {
      // STE (facts 2.1): V [0], Config [3:1] S1_TRANS 0b101, S1CDMax [63:59].
      {0x4fe10000, 0x080000000000000bull, "S1 STE dw0: V | 0b101 << 1 | 1 << 59"},
      {0x4fe10008, 0, "S1 STE dw1: S1DSS terminate, nothing else"},
      {0x4fe10010, 0, "S1 STE dw2"},
      // Config S2_TRANS 0b110; dw2: S2VMID [15:0] 5, S2T0SZ [37:32] 24, S2SL0 [39:38] 1,
      // S2PS [50:48] 2, S2AA64 [51], S2R [58]; dw3: S2TTB [51:4] in place.
      {0x4fe10040, 0xdull, "S2 STE dw0: V | 0b110 << 1"},
      {0x4fe10050, 0x040a005800000005ull, "S2 STE dw2"},
      {0x4fe10058, 0x4fe40000ull, "S2 STE dw3: S2TTB"},
      // CD (facts 2.5): T0SZ [5:0] 16, IRGN0 [9:8] 1, ORGN0 [11:10] 1, SH0 [13:12] 3, EPD1
      // [30], V [31], IPS [34:32] 5, AA64 [41], A [46], ASID [63:48] 3; TTB0 [51:4] in place
      // in dw1; MAIR in dw3.
      {0x4fe20000, 0x00034205c0003510ull, "CD dw0"},
      {0x4fe20008, 0x4fe30000ull, "CD dw1: TTB0"},
      {0x4fe20010, 0, "CD dw2"},
      {0x4fe20018, 0x44ff04ull, "CD dw3: MAIR"},
  };
  for (auto& w : words) {
    INFO(w.why);
    CHECK(qword(f, w.pa) == w.value);
  }
  fclose(f);
  unlink(image.c_str());
  unlink((image + ".json").c_str());
}

TEST_CASE("Scenarios: a structure field that does not fit is refused before anything runs",
          "[scenario][builders]") {
  std::string scenario = std::string(getenv("TEST_TMPDIR")) + "/bad-builders.capnp";
  FILE* f = fopen(scenario.c_str(), "w");
  REQUIRE(f != nullptr);
  fputs("@0xd2c4b96d0a1e7f35;\n"
        "using import \"/interfaces/scenario.capnp\".Scenario;\n"
        "const scenario :Scenario = (steps = [\n"
        "  (dma = (endpoint = \"ep0\", iova = 0x4fe10000, write = true,\n"
        "          cdFields = (ttb0 = 0x4fe30008))),\n"
        "  (dma = (endpoint = \"ep0\", iova = 0x4fe10000, write = true,\n"
        "          steFields = (s2Sl0 = 4))),\n"
        "  (dma = (endpoint = \"ep0\", iova = 0x4fe10000, write = true, data = \"x\",\n"
        "          steFields = (config = bypass))),\n"
        "]);\n",
        f);
  fclose(f);
  auto r = nb::testing::runProcess("system/nestbed",
                                   "run " + path("system/manifests/hw.toml") + " " + scenario);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(r.out.find("cdFields.ttb0: 0x4fe30008 is not 16-byte aligned") != std::string::npos);
  CHECK(r.out.find("steFields.s2Sl0: 4 does not fit in 2 bits") != std::string::npos);
  CHECK(r.out.find("give 'data' or 'steFields', not both") != std::string::npos);
  // Nothing ran: no DMA was made.
  CHECK(r.out.find("dma_writes") == std::string::npos);
  unlink(scenario.c_str());
}

}  // namespace
