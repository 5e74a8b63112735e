// The domain allocator's pure parts: STE and CD recipes against golden images derived by hand
// from the facts (testdata/entries.golden), used bits, guest vSTE validation (facts 2.3), and
// the hitless / breaking update plans of facts 2.4 for the transitions the allocator makes.

#include "components/domain_allocator/common/entries.h"
#include "components/domain_allocator/common/hitless.h"

#include <catch2/catch.hpp>
#include <kj/map.h>
#include <fstream>
#include <sstream>
#include <stdlib.h>

namespace nb::domains {
namespace {

kj::HashMap<kj::String, Entry> loadGolden() {
  const char* srcdir = getenv("TEST_SRCDIR");
  REQUIRE(srcdir != nullptr);
  std::ifstream in(
      kj::str(srcdir, "/nestbed/tests/components/domain_allocator/testdata/entries.golden").cStr());
  REQUIRE(in.good());
  kj::HashMap<kj::String, Entry> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string name;
    words >> name;
    Entry e;
    for (auto& w : e.dw) {
      std::string hex;
      words >> hex;
      w = strtoull(hex.c_str(), nullptr, 16);
    }
    out.insert(kj::heapString(name.c_str()), e);
  }
  return out;
}

// The inputs of every golden entry (see testdata/entries.golden).
constexpr Vtcr VTCR_48_4K = {16, 2, 1, 1, 3, 0, 5};  // IAS 48, start level 0, IS WBWA, PS 48
constexpr Tcr TCR_48_4K = {16, 0, 1, 1, 3, 5};
constexpr uint64_t MAIR = 0xf404ff44;
constexpr SteOptions ATTR_OVR = {true, false, false};
constexpr SteOptions PLAIN = {false, false, false};
constexpr uint64_t GUEST_DW0 = 0x8000100b;  // V, S1_TRANS, S1ContextPtr 0x80001000 (an IPA)
constexpr uint64_t GUEST_DW1 = 0xd6;        // SSID0, WBRA, WBRA, ISH

kj::Array<kj::Tuple<kj::StringPtr, Entry>> built() {
  return kj::heapArray<kj::Tuple<kj::StringPtr, Entry>>({
      kj::tuple("abort"_kj, makeAbortSte()),
      kj::tuple("bypass_attr_ovr"_kj, makeBypassSte(ATTR_OVR)),
      kj::tuple("bypass"_kj, makeBypassSte(PLAIN)),
      kj::tuple("cdtable_linear_ssid0"_kj,
                makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::SSID0, ATTR_OVR)),
      kj::tuple("cdtable_2level_bypass"_kj, makeCdTableSte(0x40100000, CdTableFormat::TWO_LEVEL_64K,
                                                           20, S1Dss::BYPASS, ATTR_OVR)),
      kj::tuple("cdtable_linear_terminate"_kj,
                makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::TERMINATE, PLAIN)),
      kj::tuple("s2_vmid3"_kj, makeS2Ste(3, VTCR_48_4K, 0x40200000, ATTR_OVR)),
      kj::tuple("nested_vmid3"_kj,
                makeNestedSte(3, VTCR_48_4K, 0x40200000, GUEST_DW0, GUEST_DW1, ATTR_OVR)),
      kj::tuple("cd_s1_asid5"_kj, makeS1Cd(5, TCR_48_4K, 0x40300000, MAIR, false)),
      kj::tuple("cd_s1_asid5_dirty"_kj, makeS1Cd(5, TCR_48_4K, 0x40300000, MAIR, true)),
  });
}

TEST_CASE("Entries: every recipe equals its golden image, byte for byte",
          "[domain_allocator][entries]") {
  auto golden = loadGolden();
  auto made = built();
  CHECK(golden.size() == made.size());
  for (auto& m : made) {
    DYNAMIC_SECTION(kj::get<0>(m).cStr()) {
      auto& expected =
          KJ_ASSERT_NONNULL(golden.find(kj::get<0>(m)), "no golden image", kj::get<0>(m));
      INFO("built:  " << kj::str(kj::get<1>(m)).cStr());
      INFO("golden: " << kj::str(expected).cStr());
      CHECK(kj::get<1>(m) == expected);
      // Every bit a recipe sets is one its configuration uses (what the hitless planner needs).
      auto used = kj::get<0>(m).startsWith("cd_") ? cdUsed(kj::get<1>(m)) : steUsed(kj::get<1>(m));
      for (unsigned i = 0; i < 8; i++) CHECK((kj::get<1>(m).dw[i] & ~used.dw[i]) == 0);
    }
  }
}

TEST_CASE("Entries: level-1 descriptors", "[domain_allocator][entries]") {
  CHECK(makeL1CdDescriptor(0x40400000) == 0x40400001);         // V[0], L2PTR[51:12]
  CHECK(makeL1StreamDescriptor(0x40500000, 8) == 0x40500009);  // SPAN[4:0] = 9, L2PTR[51:6]
}

TEST_CASE("Entries: used bits follow the Config (facts 2.4)", "[domain_allocator][entries]") {
  CHECK(steUsed(Entry{}).dw[0] == 0x1);
  auto abort = steUsed(makeAbortSte());
  CHECK(abort.dw[0] == 0xf);
  CHECK(abort.dw[1] == 0);
  auto bypass = steUsed(makeBypassSte(PLAIN));
  CHECK(bypass.dw[1] == 0x300000000000);  // SHCFG only
  auto s1 = steUsed(makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::SSID0, PLAIN));
  CHECK(s1.dw[0] == 0xf80ffffffffffffful);  // V, Config, S1Fmt, S1ContextPtr, S1CDMax
  CHECK(s1.dw[1] == 0xf80800ff);            // S1DSS..S1CSH, MEV, S1STALLD, EATS, STRW
  CHECK(s1.dw[2] == 0xffff);                // S2VMID
  CHECK(s1.dw[3] == 0);
  auto s1bypass =
      steUsed(makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::BYPASS, PLAIN));
  CHECK(s1bypass.dw[1] == (0xf80800ff | 0x300000000000));
  auto s2 = steUsed(makeS2Ste(3, VTCR_48_4K, 0x40200000, PLAIN));
  CHECK(s2.dw[0] == 0xf);
  CHECK(s2.dw[1] == (0x300000000000 | 0x30000000 | 0x2000000 | 0x80000));  // SHCFG EATS S2FWB MEV
  CHECK(s2.dw[2] == (0xffff | 0x0007ffff00000000ull | (1ull << 51) | (1ull << 52) | (1ull << 54) |
                     (1ull << 57) | (1ull << 58)));
  CHECK(s2.dw[3] == 0x000ffffffffffff0ull);
  auto nested = steUsed(makeNestedSte(3, VTCR_48_4K, 0x40200000, GUEST_DW0, GUEST_DW1, PLAIN));
  CHECK(nested.dw[0] == s1.dw[0]);
  CHECK(nested.dw[1] == (s1.dw[1] | s2.dw[1]));
  CHECK(nested.dw[3] == s2.dw[3]);

  auto cd = cdUsed(makeS1Cd(5, TCR_48_4K, 0x40300000, MAIR, false));
  for (auto w : cd.dw) CHECK(w == ~0ull);
  Cd quiet;
  quiet.dw[0] = (1ull << 31) | (1ull << 14);  // V, EPD0, EPD1 = 0: TTB0's fields are ignored
  auto q = cdUsed(quiet);
  CHECK(q.dw[0] == ~0x3fffull);
  CHECK(q.dw[1] == ~0x000ffffffffffff0ull);
  CHECK(cdUsed(Cd{}).dw[0] == 1ull << 31);
}

struct VsteRow {
  const char* what;
  uint64_t dw0, dw1;
  bool ok;
  VsteConfig config;
  bool ats;
  uint64_t storedDw1;
};

TEST_CASE("Entries: guest vSTE validation (facts 2.3)", "[domain_allocator][vste]") {
  auto row = GENERATE(values<VsteRow>({
      {"V = 0 with anything else is abort, stored as zeros", 0xfffffffffffffffe, ~0ull, true,
       VsteConfig::ABORT, false, 0},
      {"abort", 0x1, 0, true, VsteConfig::ABORT, false, 0},
      {"bypass", 0x9, 0, true, VsteConfig::BYPASS, false, 0},
      {"s1_trans", GUEST_DW0, GUEST_DW1, true, VsteConfig::S1_TRANS, false, GUEST_DW1},
      {"s1_trans with EATS = trans: ATS, EATS cleared", GUEST_DW0, GUEST_DW1 | (1ull << 28), true,
       VsteConfig::S1_TRANS, true, GUEST_DW1},
      {"a bit between S1ContextPtr and S1CDMax", GUEST_DW0 | (1ull << 55), 0, false,
       VsteConfig::ABORT, false, 0},
      {"MEV is the host's", GUEST_DW0, GUEST_DW1 | (1ull << 19), false, VsteConfig::ABORT, false,
       0},
      {"SHCFG is the host's", GUEST_DW0, 1ull << 44, false, VsteConfig::ABORT, false, 0},
      {"STRW is the host's", GUEST_DW0, 2ull << 30, false, VsteConfig::ABORT, false, 0},
      {"Config stage 2", 0xd, 0, false, VsteConfig::ABORT, false, 0},
      {"Config nested", 0xf, 0, false, VsteConfig::ABORT, false, 0},
      {"Config 1 (reserved abort)", 0x3, 0, false, VsteConfig::ABORT, false, 0},
      {"EATS = S1CHK", GUEST_DW0, 2ull << 28, false, VsteConfig::ABORT, false, 0},
  }));
  DYNAMIC_SECTION(row.what) {
    auto result = validateVste(row.dw0, row.dw1);
    REQUIRE(result.is<ValidVste>() == row.ok);
    if (row.ok) {
      auto& v = result.get<ValidVste>();
      CHECK(v.config == row.config);
      CHECK(v.ats == row.ats);
      CHECK(v.dw1 == row.storedDw1);
      if (row.config == VsteConfig::ABORT) CHECK(v.dw0 == (row.dw0 & 1));
    } else {
      CHECK(result.get<VsteError>().message.size() > 0);
    }
  }
}

// A plan as text: "hitless(0): [q1] [q0]" — the kind, the critical qword, the qwords each step
// stores.
kj::String describe(const UpdatePlan& plan) {
  kj::Vector<kj::String> steps;
  for (auto& s : plan.steps) {
    kj::Vector<kj::String> q;
    for (unsigned i = 0; i < 8; i++) {
      if (s.qwords & (1u << i)) q.add(kj::str("q", i));
    }
    steps.add(kj::str("[", kj::strArray(q, " "), "]"));
  }
  return kj::str(plan.kind,
                 plan.kind == UpdateKind::HITLESS ? kj::str("(", plan.critical, ")") : kj::str(),
                 steps.size() ? ": " : "", kj::strArray(steps, " "));
}

TEST_CASE("Hitless: the sequences of facts 2.4 for the allocator's transitions",
          "[domain_allocator][hitless]") {
  auto abort = makeAbortSte();
  auto bypass = makeBypassSte(ATTR_OVR);
  auto s1 = makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::SSID0, ATTR_OVR);
  auto s1terminate =
      makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::TERMINATE, ATTR_OVR);
  auto s1bypass = makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::BYPASS, ATTR_OVR);
  auto s2a = makeS2Ste(3, VTCR_48_4K, 0x40200000, ATTR_OVR);
  auto s2b = makeS2Ste(4, VTCR_48_4K, 0x40280000, ATTR_OVR);
  auto nested = makeNestedSte(3, VTCR_48_4K, 0x40200000, GUEST_DW0, GUEST_DW1, ATTR_OVR);
  auto cdA = makeS1Cd(5, TCR_48_4K, 0x40300000, MAIR, false);
  auto cdB = makeS1Cd(6, TCR_48_4K, 0x40380000, MAIR, false);

  // Nothing to do.
  CHECK(describe(planUpdate(s1, s1, steUsed)) == "none"_kj);
  // Zeroed memory (V = 0) to anything: everything but qword 0 first, then qword 0.
  CHECK(describe(planUpdate(Entry{}, s2a, steUsed)) == "hitless(0): [q1 q2 q3] [q0]"_kj);
  // abort -> bypass: SHCFG (unused by abort) first, then Config.
  CHECK(describe(planUpdate(abort, bypass, steUsed)) == "hitless(0): [q1] [q0]"_kj);
  // bypass -> abort: Config first, then the now unused SHCFG cleared.
  CHECK(describe(planUpdate(bypass, abort, steUsed)) == "hitless(0): [q0] [q1]"_kj);
  // abort -> stage 1 (a CD table): dw1 is unused by abort.
  CHECK(describe(planUpdate(abort, s1, steUsed)) == "hitless(0): [q1] [q0]"_kj);
  // Stage 1's S1DSS changes alone (PASIDs kept, RID domain blocked): one qword, one step.
  CHECK(describe(planUpdate(s1, s1terminate, steUsed)) == "hitless(1): [q1]"_kj);
  CHECK(describe(planUpdate(s1terminate, s1bypass, steUsed)) == "hitless(1): [q1]"_kj);
  // stage 1 -> stage 2: Config and the VMID both change: breaking.
  CHECK(describe(planUpdate(s1, s2a, steUsed)) == "breaking: [q0] [q1 q2 q3] [q0]"_kj);
  // stage 2 -> stage 2 of another domain: VMID and S2TTB: breaking.
  CHECK(describe(planUpdate(s2a, s2b, steUsed)) == "breaking: [q0] [q2 q3] [q0]"_kj);
  // stage 2 -> nested over the same parent: Config, and MEV (used by stage 2 too): breaking.
  CHECK(describe(planUpdate(s2a, nested, steUsed)) == "breaking: [q0] [q1] [q0]"_kj);
  // CDs: an invalid CD to a stage-1 CD, a CD to another domain's (ASID and TTB0: breaking),
  // and clearing one.
  CHECK(describe(planUpdate(Cd{}, cdA, cdUsed)) == "hitless(0): [q1 q3] [q0]"_kj);
  CHECK(describe(planUpdate(cdA, cdB, cdUsed)) == "breaking: [q0] [q1] [q0]"_kj);
  CHECK(describe(planUpdate(cdA, Cd{}, cdUsed)) == "hitless(0): [q0] [q1 q3]"_kj);
}

TEST_CASE("Hitless: every step's image is what the facts say memory holds",
          "[domain_allocator][hitless]") {
  auto abort = makeAbortSte();
  auto bypass = makeBypassSte(ATTR_OVR);
  auto plan = planUpdate(abort, bypass, steUsed);
  REQUIRE(plan.steps.size() == 2);
  // Step 1: unused_update — abort's qword 0 kept, bypass's SHCFG in qword 1.
  CHECK(plan.steps[0].image.dw[0] == abort.dw[0]);
  CHECK(plan.steps[0].image.dw[1] == bypass.dw[1]);
  CHECK(plan.steps[1].image == bypass);

  auto s1 = makeCdTableSte(0x40012340, CdTableFormat::LINEAR, 0, S1Dss::SSID0, ATTR_OVR);
  auto s2 = makeS2Ste(3, VTCR_48_4K, 0x40200000, ATTR_OVR);
  auto breaking = planUpdate(s1, s2, steUsed);
  REQUIRE(breaking.steps.size() == 3);
  CHECK(breaking.steps[0].image.dw[0] == 0);  // V = 0
  CHECK(breaking.steps[0].image.dw[1] == s1.dw[1]);
  CHECK(breaking.steps[1].image.dw[0] == 0);
  for (unsigned i = 1; i < 8; i++) CHECK(breaking.steps[1].image.dw[i] == s2.dw[i]);
  CHECK(breaking.steps[2].image == s2);
}

TEST_CASE("Hitless: a recipe setting a bit it does not use is a broken contract",
          "[domain_allocator][hitless]") {
  Entry bad = makeAbortSte();
  bad.dw[1] = 1;  // S1DSS in an abort STE
  CHECK_THROWS_WITH(planUpdate(makeAbortSte(), bad, steUsed),
                    Catch::Contains("target sets bits its own configuration does not use"));
}

}  // namespace
}  // namespace nb::domains
