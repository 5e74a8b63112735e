// The shipped manifests and scenarios, run by the real nestbed binary: each passes, and gives
// the same report (timings aside) with every component inline and in its own process.

#include "tests/system/process-testing.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <regex>
#include <string>

namespace {

std::string path(const std::string& rel) { return nb::testing::runfile(rel); }

// The shipped nestbed; stdout only (the JSON report), stderr dropped.
std::pair<int, std::string> nestbed(const std::string& args) {
  auto r = nb::testing::runProcess("system/nestbed", args, "2>/dev/null");
  return {r.status, r.out};
}

// The JSON report without timings, and without its provenance (which records the overrides
// that place components in processes): the last field of RunReport.
std::string timeless(std::string json) {
  auto provenance = json.find("\"provenance\":");
  REQUIRE(provenance != std::string::npos);
  json = json.substr(0, provenance);
  return std::regex_replace(json, std::regex("\"micros\": [0-9.e+-]+"), "\"micros\": 0");
}

struct Study {
  const char* manifest;
  const char* scenario;
  const char* processOverride;  // --set that moves every component into its own process
};

constexpr const char* GUEST_PROCESS =
    "--set components.smmu_queue.placement=process --set components.page_table.placement=process "
    "--set components.domains.placement=process";

constexpr const char* TWO_SMMU_PROCESS =
    "--set components.page_table.placement=process --set components.queue0.placement=process "
    "--set components.queue1.placement=process --set components.domains.placement=process "
    "--set components.groups.placement=process";

constexpr const char* NESTED_PROCESS =
    "--set components.page_table.placement=process --set components.smmu_queue.placement=process "
    "--set components.domains.placement=process --set components.groups.placement=process "
    "--set components.shadow.placement=process";

constexpr const char* NIC_PROCESS =
    "--set components.page_table.placement=process --set components.smmu_queue.placement=process "
    "--set components.domains.placement=process --set components.groups.placement=process";

TEST_CASE("Shipped: every manifest and scenario pair passes, identically inline and in processes",
          "[shipped]") {
  auto study = GENERATE(values<Study>({
      {"system/manifests/default.toml", "system/scenarios/default.capnp",
       "--set components.page_table.placement=process --set components.smmu_queue.placement=process "
       "--set components.domains.placement=process --set components.groups.placement=process"},
      {"system/manifests/default.toml", "system/scenarios/groups-domains.capnp",
       "--set components.page_table.placement=process --set components.smmu_queue.placement=process "
       "--set components.domains.placement=process --set components.groups.placement=process"},
      {"system/manifests/hw.toml", "system/scenarios/page_table.capnp",
       "--set components.page_table.placement=process"},
      {"system/manifests/hw.toml", "system/scenarios/smmuv3.capnp",
       "--set hw.smmu0.placement=process --set hw.pci0.placement=process "
       "--set hw.ep0.placement=process --set hw.ep1.placement=process "
       "--set hw.ep2.placement=process --set hw.ep3.placement=process"},
      {"system/manifests/vm.toml", "system/scenarios/vm.capnp", "--set hw.vm0.placement=process"},
      {"system/manifests/two-smmu-group-centric.toml", "system/scenarios/two-smmu-alloc.capnp", TWO_SMMU_PROCESS},
      {"system/manifests/two-smmu-device-centric.toml", "system/scenarios/two-smmu-alloc.capnp", TWO_SMMU_PROCESS},
      {"system/manifests/guest-native.toml", "system/scenarios/guest-invalidation.capnp", GUEST_PROCESS},
      {"system/manifests/guest-generic.toml", "system/scenarios/guest-invalidation.capnp", GUEST_PROCESS},
      {"system/manifests/guest-sw-vcmdq.toml", "system/scenarios/guest-invalidation.capnp", GUEST_PROCESS},
      {"system/manifests/nested.toml", "system/scenarios/nested.capnp", NESTED_PROCESS},
      {"system/manifests/nested.toml", "system/scenarios/memslot-churn.capnp", NESTED_PROCESS},
      {"system/manifests/nested-pinned-pfn.toml", "system/scenarios/nested.capnp", NESTED_PROCESS},
      {"system/manifests/nested-pinned-pfn.toml", "system/scenarios/memslot-churn.capnp", NESTED_PROCESS},
      {"system/manifests/guest-sw-vcmdq.toml", "system/scenarios/guest-batches.capnp", GUEST_PROCESS},
      {"system/manifests/nic-strict.toml", "system/scenarios/nic-ring.capnp", NIC_PROCESS},
      {"system/manifests/nic-lazy.toml", "system/scenarios/nic-ring.capnp", NIC_PROCESS},
  }));
  DYNAMIC_SECTION(study.manifest << " " << study.scenario) {
    auto args = path(study.manifest) + " " + path(study.scenario);
    auto inlined = nestbed("run --json " + args);
    INFO(inlined.second);
    REQUIRE(inlined.first == 0);
    auto process = nestbed("run --json " + std::string(study.processOverride) + " " + args);
    INFO(process.second);
    REQUIRE(process.first == 0);
    CHECK(timeless(inlined.second) == timeless(process.second));
  }
}

TEST_CASE("Shipped: nestbed check accepts every shipped manifest", "[shipped]") {
  auto manifest = GENERATE(as<std::string>(), "system/manifests/default.toml",
                           "system/manifests/vm.toml", "system/manifests/hw.toml",
                           "system/manifests/two-smmu-group-centric.toml",
                           "system/manifests/two-smmu-device-centric.toml",
                           "system/manifests/guest-native.toml", "system/manifests/guest-generic.toml",
                           "system/manifests/guest-sw-vcmdq.toml",
                           "system/manifests/default-process.toml", "system/manifests/nested.toml",
                           "system/manifests/nested-pinned-pfn.toml",
                           "system/manifests/nic-strict.toml", "system/manifests/nic-lazy.toml");
  auto r = nestbed("check " + path(manifest));
  INFO(r.second);
  CHECK(r.first == 0);
}

TEST_CASE("Shipped: an outcome a step does not expect fails it; `any` and naming it pass",
          "[shipped]") {
  auto r = nb::testing::runProcess("system/nestbed", "run " + path("system/manifests/default.toml") +
                                                         " " + path("tests/system/scenarios/unexpected-fault.capnp"));
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(r.out.find("FAIL line 9    dma ep0 iova=0x10000000 length=4") != std::string::npos);
  CHECK(r.out.find("unexpected-fault.capnp:9: outcome: expected success, actual fault (type = "
                   "fTranslation") != std::string::npos);
  CHECK(r.out.find("sid = 0x300") != std::string::npos);   // a StreamID, in hex
  CHECK(r.out.find("ok   line 10   dma ep0 iova=0x10000000 length=4") != std::string::npos);
  CHECK(r.out.find("ok   line 11   dma ep0 iova=0x10000000 length=4") != std::string::npos);
  CHECK(r.out.find("ok   line 13   dma ep0 iova=0x10000000 length=4") != std::string::npos);
  CHECK(r.out.find("record what happened = (errno = ok, fault = (type = fTranslation") !=
        std::string::npos);
  // Claimed, the group is on the blocking domain: its abort STEs terminate the DMA silently.
  CHECK(r.out.find("FAIL line 16   dma ep0 iova=0x10000000 length=4") != std::string::npos);
  CHECK(r.out.find("unexpected-fault.capnp:16: outcome: expected success, actual aborted (cause = ste") !=
        std::string::npos);
  CHECK(r.out.find("record IDR0 = 0x") != std::string::npos);   // a register, in hex
  // Unlabelled typed steps say what they do.
  CHECK(r.out.find("ok   line 15   claimDevice groups device=\"03:00.0\"") != std::string::npos);
  CHECK(r.out.find("ok   line 17   mmioRead smmu0") != std::string::npos);
  CHECK(r.out.find("FAIL: 7 steps, 2 failed") != std::string::npos);
}

TEST_CASE("Shipped: nestbed runs from any directory, with no runfiles variables", "[shipped]") {
  auto bin = path("system/nestbed");
  std::string cmd = "cd / && env -u TEST_SRCDIR -u RUNFILES_DIR -u NESTBED_ROOT " + bin + " run 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  INFO(out);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(out.find("nestbed default tour") != std::string::npos);
  CHECK(out.find("PASS:") != std::string::npos);
}

TEST_CASE("Shipped: sweep --help's --series example runs", "[shipped]") {
  auto help = nb::testing::runProcess("system/nestbed", "sweep --help");
  REQUIRE(help.status == 0);
  std::string series = "components.smmu_queue.guest_path=native,sw_vcmdq";
  REQUIRE(help.out.find(series) != std::string::npos);
  auto r = nb::testing::runProcess("system/nestbed", "sweep " + path("system/manifests/guest-native.toml") +
                                                         " " + path("system/scenarios/guest-batches.capnp") +
                                                         " --param scenario.batch=1,8 --series " + series);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("sw_vcmdq/8") != std::string::npos);
}

TEST_CASE("Shipped: --dump-memory's sidecar lists the tables a scenario created", "[shipped]") {
  auto image = std::string(getenv("TEST_TMPDIR")) + "/tables.img";
  auto r = nb::testing::runProcess("system/nestbed", "run --dump-memory " + image + " " +
                                                         path("system/manifests/hw.toml") + " " +
                                                         path("tests/system/scenarios/dump-table.capnp"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  std::smatch root;
  REQUIRE(std::regex_search(r.out, root, std::regex("record root = 0x([0-9a-f]+)")));
  auto pa = std::stoull(root[1].str(), nullptr, 16);
  FILE* f = fopen((image + ".json").c_str(), "r");
  REQUIRE(f != nullptr);
  std::string sidecar;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) sidecar.append(buf, n);
  fclose(f);
  INFO(sidecar);
  // hw.toml has no driver: the one table is the scenario's, its root where the table says.
  CHECK(std::regex_search(sidecar, std::regex("\"kind\": \"page_table_root\",\\s*\"name\": \"table 1\",\\s*"
                                              "\"pa\": \"" + std::to_string(pa) + "\"")));
}

TEST_CASE("Shipped: commands built by name reach the SMMU as the commands they name", "[shipped]") {
  auto manifest = path("system/manifests/default.toml");
  auto r = nb::testing::runProcess("system/nestbed", "run " + manifest + " " +
                                                         path("tests/system/scenarios/typed-commands.capnp"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  // One of each, as submitted (smmu_queue may add SYNCs of its own).
  CHECK(std::regex_search(r.out, std::regex("smmu0\\.cmdq_op_cfgi_ste \\+1[,\n]")));
  CHECK(std::regex_search(r.out, std::regex("smmu0\\.cmdq_op_tlbi_nh_va \\+1[,\n]")));
  CHECK(std::regex_search(r.out, std::regex("smmu0\\.cmdq_op_tlbi_s2_ipa \\+1[,\n]")));

  auto bad = nb::testing::runProcess("system/nestbed", "run " + manifest + " " +
                                                           path("tests/system/scenarios/typed-commands-bad.capnp"));
  INFO(bad.out);
  CHECK(bad.status == 1);
  CHECK(bad.out.find("typed-commands-bad.capnp:7:1: commands[1]: tlbiNhVa.addr: 0x10001 is not 4 KiB aligned") !=
        std::string::npos);
  CHECK(bad.out.find("typed-commands-bad.capnp:8:1: vsteFields.s1CdMax: 40 does not fit in 5 bits") !=
        std::string::npos);
  CHECK(bad.out.find("typed-commands-bad.capnp:8:1: give 'vste' or 'vsteFields', not both") != std::string::npos);
  CHECK(bad.out.find("PASS") == std::string::npos);
}

TEST_CASE("Shipped: nestbed decode reads the STE, the CD and a walk out of a memory image",
          "[shipped]") {
  auto image = std::string(getenv("TEST_TMPDIR")) + "/walk.img";
  auto r = nb::testing::runProcess("system/nestbed", "run --dump-memory " + image + " " +
                                                         path("system/manifests/default.toml") + " " +
                                                         path("tests/system/scenarios/decode-walk.capnp"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  std::smatch buffer, asid;
  REQUIRE(std::regex_search(r.out, buffer, std::regex("record buffer = 0x([0-9a-f]+)")));
  REQUIRE(std::regex_search(r.out, asid, std::regex("record asid = ([0-9]+)")));
  auto pa = std::stoull(buffer[1].str(), nullptr, 16);

  // ep0 is SID 0x300 (default.toml); attached to a stage-1 domain: Config 5, its CD has the ASID.
  auto ste = nb::testing::runProcess("system/nestbed", "decode ste --image " + image + " --sid 0x300");
  INFO(ste.out);
  CHECK(ste.status == 0);
  CHECK(ste.out.find("STE valid, Config 5 = stage 1") != std::string::npos);
  auto cd = nb::testing::runProcess("system/nestbed", "decode cd --image " + image + " --sid 0x300");
  INFO(cd.out);
  CHECK(cd.status == 0);
  CHECK(cd.out.find("CD valid, ASID " + asid[1].str() + ",") != std::string::npos);
  // IOVA 0x10001234 is in the buffer's second page.
  auto walk = nb::testing::runProcess("system/nestbed", "decode walk --image " + image +
                                                            " --sid 0x300 --iova 0x10001234");
  INFO(walk.out);
  CHECK(walk.status == 0);
  char expected[64];
  snprintf(expected, sizeof(expected), "-> PA 0x%llx\n", (unsigned long long)(pa + 0x1234));
  CHECK(walk.out.find(expected) != std::string::npos);
  auto unmapped = nb::testing::runProcess("system/nestbed", "decode walk --image " + image +
                                                                " --sid 0x300 --iova 0x20000000");
  CHECK(unmapped.out.find("invalid: F_TRANSLATION") != std::string::npos);
  // Beyond the stream table: an error naming it, exit 1.
  auto beyond = nb::testing::runProcess("system/nestbed", "decode ste --image " + image + " --sid 0x999999");
  CHECK(beyond.status == 1);
  CHECK(beyond.out.find("SID 0x999999 is beyond smmu0's stream table") != std::string::npos);
}

TEST_CASE("Shipped: nestbed decode walks a nested translation: the guest's CD and tables at stage 2",
          "[shipped]") {
  auto image = std::string(getenv("TEST_TMPDIR")) + "/nested.img";
  auto r = nb::testing::runProcess("system/nestbed", "run --dump-memory " + image + " " +
                                                         path("system/manifests/nested.toml") + " " +
                                                         path("system/scenarios/nested.capnp"));
  REQUIRE(r.status == 0);
  // nested.capnp: ep0 (SID 0x100), the guest's CD table at GPA 0x2000000, IOVA 0x10000000 mapped
  // to GPA 0x1000000 (still mapped at the end: only 0x10001000 is unmapped).
  auto walk = nb::testing::runProcess("system/nestbed", "decode walk --image " + image +
                                                            " --sid 0x100 --iova 0x10000000");
  INFO(walk.out);
  CHECK(walk.status == 0);
  CHECK(walk.out.find("nested: the guest's CD at IPA 0x2000000\n") != std::string::npos);
  CHECK(walk.out.find("  -> IPA 0x1000000\nstage 2 walk of 0x1000000:") != std::string::npos);
  CHECK(std::regex_search(walk.out, std::regex("\n  -> PA 0x[0-9a-f]+\n$")));
  auto unmapped = nb::testing::runProcess("system/nestbed", "decode walk --image " + image +
                                                                " --sid 0x100 --iova 0x10001000");
  CHECK(unmapped.out.find("  L3[1] at ") != std::string::npos);
  CHECK(unmapped.out.find("invalid: F_TRANSLATION") != std::string::npos);
}

}  // namespace
