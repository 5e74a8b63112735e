// Reliability: each component's process killed mid-scenario (the scenarios' `kill` step), with
// and without `restart = "on-failure"` where the implementation allows one. After the kill every
// step either does what it would have done had nothing died, or fails naming the dead component —
// or, when an earlier step failed so, fails because what that step should have done did not
// happen. Nothing returns ok on state its server no longer has, and no translation outlives an
// invalidation that could not be issued. The expected status of each step is derived by hand from
// what each component owns (components/README.md): it is not read off a run.

#include "interfaces/report.capnp.h"
#include "tests/system/process-testing.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace nb {
namespace {

std::string path(const std::string& rel) { return testing::runfile(rel); }

struct Run {
  int status;
  capnp::MallocMessageBuilder message;
  rpc::RunReport::Reader report;
};

kj::Own<Run> run(const std::string& args) {
  auto r = testing::runProcess("system/nestbed", "run --json " + args, "2>/dev/null");
  auto out = kj::heap<Run>();
  out->status = r.status;
  INFO(r.out);
  REQUIRE(r.out.find('{') != std::string::npos);
  capnp::JsonCodec codec;
  auto root = out->message.initRoot<rpc::RunReport>();
  codec.decode(kj::StringPtr(r.out.c_str() + r.out.find('{')), root);
  out->report = root.asReader();
  return out;
}

// What a step after the kill must do.
enum class Must {
  PASS,    // what it would have done had nothing died
  NAMED,   // fail, naming the dead component ("component '<victim>'")
  AFTER,   // fail: an earlier NAMED step did not do what this one relies on
};

struct Expected {
  const char* label;
  Must must;
};

void checkSteps(const Run& r, const std::string& victim, const std::vector<Expected>& rows) {
  auto steps = r.report.getScenarios()[0].getSteps();
  size_t k = 0;
  while (k < steps.size() && std::string(steps[k].getLabel().cStr()) != "kill") {
    INFO("before the kill: " << steps[k].getLabel().cStr());
    CHECK(steps[k].getOk());
    k++;
  }
  REQUIRE(k < steps.size());
  CHECK(steps[k].getOk());   // the kill itself
  k++;
  REQUIRE(steps.size() - k == rows.size());
  bool namedSeen = false;
  const std::string named = "component '" + victim + "'";
  for (size_t i = 0; i < rows.size(); i++, k++) {
    auto step = steps[k];
    INFO("victim " << victim << ", step '" << step.getLabel().cStr() << "'");
    REQUIRE(std::string(step.getLabel().cStr()) == rows[i].label);
    std::string failures;
    for (auto f : step.getFailures()) failures += std::string(f.getActual().cStr()) + "\n";
    INFO(failures);
    switch (rows[i].must) {
      case Must::PASS:
        CHECK(step.getOk());
        break;
      case Must::NAMED:
        CHECK(!step.getOk());
        CHECK(failures.find(named) != std::string::npos);
        CHECK(failures.find("DISCONNECTED") != std::string::npos);
        namedSeen = true;
        break;
      case Must::AFTER:
        CHECK(namedSeen);
        CHECK(!step.getOk());
        break;
    }
  }
}

const char* PROCESS_ALL =
    " --set components.page_table.placement=process --set components.smmu_queue.placement=process"
    " --set components.domains.placement=process --set components.groups.placement=process";

TEST_CASE("Reliability: a component killed mid-DMA; every later step does its work or fails "
          "naming it",
          "[reliability][e2e]") {
  struct Row {
    const char* victim;
    const char* restart;   // "" or the --set making it restart
    std::vector<Expected> steps;
  };
  const auto P = Must::PASS, N = Must::NAMED, A = Must::AFTER;
  const char* ePerm = "a second owner cannot claim the held device (ePerm, as "
                      "iommu_device_claim_dma_owner)";
  std::vector<Row> rows = {
      // smmu_queue adopts the running SMMU (its tables and queues): DMA never stops and the
      // domain's invalidations go on through the new process. Nothing fails.
      {"smmu_queue", " --set components.smmu_queue.restart=on-failure",
       {{"DMA through the existing mapping", P}, {"map a new page", P},
        {"DMA to the new page", P}, {"unmap the first pages", P},
        {"DMA to an unmapped page faults", P}, {ePerm, P}, {"a new page table", P},
        {"release", P}, {"a counter check on the group manager", P}}},
      // Without a restart the hardware keeps translating, but an unmap, which needs a TLBI, fails
      // rather than leave the IOTLB holding the old translation.
      {"smmu_queue", "",
       {{"DMA through the existing mapping", P}, {"map a new page", P},
        {"DMA to the new page", P}, {"unmap the first pages", N},
        {"DMA to an unmapped page faults", A}, {ePerm, P}, {"a new page table", P},
        // release moves the group back onto its default domain: STE writes need CFGI + SYNC.
        {"release", N}, {"a counter check on the group manager", P}}},
      // page_table restarts (a factory): new tables come from the new process; the domain's
      // table lived in the old one, so its map and unmap fail naming it.
      {"page_table", " --set components.page_table.restart=on-failure",
       {{"DMA through the existing mapping", P}, {"map a new page", N},
        {"DMA to the new page", A}, {"unmap the first pages", N},
        {"DMA to an unmapped page faults", A}, {ePerm, P}, {"a new page table", P},
        {"release", P}, {"a counter check on the group manager", P}}},
      // The domain allocator cannot be restarted (its domains, ASIDs and STE plans live only in
      // its process): everything that needs it fails, named.
      {"domains", "",
       {{"DMA through the existing mapping", P}, {"map a new page", N},
        {"DMA to the new page", A}, {"unmap the first pages", N},
        {"DMA to an unmapped page faults", A}, {ePerm, P}, {"a new page table", P},
        {"release", N}, {"a counter check on the group manager", P}}},
      // The group manager likewise: ownership is its state. The domain goes on working.
      {"groups", "",
       {{"DMA through the existing mapping", P}, {"map a new page", P},
        {"DMA to the new page", P}, {"unmap the first pages", P},
        {"DMA to an unmapped page faults", P}, {ePerm, N}, {"a new page table", P},
        {"release", N}, {"a counter check on the group manager", N}}},
  };
  for (auto& row : rows) {
    DYNAMIC_SECTION(row.victim << (row.restart[0] ? " restarted" : " not restarted")) {
      auto r = run(path("system/manifests/default.toml") + " " +
                   path("tests/system/scenarios/kill-mid-dma.capnp") + PROCESS_ALL + row.restart +
                   " --define victim=" + row.victim);
      checkSteps(*r, row.victim, row.steps);
      bool allPass = true;
      for (auto& s : row.steps) allPass = allPass && s.must == Must::PASS;
      // The kill was asked for: not a death that fails the run by itself.
      CHECK(r->report.getDeaths().size() == 0);
      CHECK(r->report.getOk() == allPass);
      CHECK(r->status == (allPass ? 0 : 1));
    }
  }
}

TEST_CASE("Reliability: a component killed under nested DMA; a memslot change that cannot be "
          "mirrored fails instead of leaving stale translations",
          "[reliability][e2e]") {
  struct Row {
    const char* victim;
    const char* restart;
    std::vector<Expected> steps;
  };
  const auto P = Must::PASS, N = Must::NAMED, A = Must::AFTER;
  std::vector<Row> rows = {
      // The stage-2 shadow died: the VM's deletion is refused (its listener is gone without
      // cancelling), so DMA still reaches the slot's memory, which the VM kept.
      {"shadow", "",
       {{"DMA through both stages", P}, {"the guest unmaps a page and invalidates", P},
        {"DMA to the guest-unmapped page faults at stage 1", P},
        {"the VMM deletes slot 1", N}, {"DMA to the deleted slot faults at stage 2", A}}},
      // The queue died: the guest's invalidation and the shadow's unmap (a stage-2 TLBI) fail.
      {"smmu_queue", "",
       {{"DMA through both stages", P}, {"the guest unmaps a page and invalidates", N},
        {"DMA to the guest-unmapped page faults at stage 1", P},
        {"the VMM deletes slot 1", N}, {"DMA to the deleted slot faults at stage 2", A}}},
      // Restarted, it adopts the SMMU: the shadow's invalidations go on; the vIOMMU the old
      // process handed out is gone, so the guest's invalidation through it fails, named. The
      // guest-unmapped page faults anyway: the guest's stage-1 entry is gone, and its IOTLB
      // entry was never filled (no DMA went there).
      {"smmu_queue", " --set components.smmu_queue.restart=on-failure",
       {{"DMA through both stages", P}, {"the guest unmaps a page and invalidates", N},
        {"DMA to the guest-unmapped page faults at stage 1", P},
        {"the VMM deletes slot 1", P}, {"DMA to the deleted slot faults at stage 2", P}}},
      {"domains", "",
       {{"DMA through both stages", P}, {"the guest unmaps a page and invalidates", P},
        {"DMA to the guest-unmapped page faults at stage 1", P},
        {"the VMM deletes slot 1", N}, {"DMA to the deleted slot faults at stage 2", A}}},
      {"page_table", "",
       {{"DMA through both stages", P}, {"the guest unmaps a page and invalidates", P},
        {"DMA to the guest-unmapped page faults at stage 1", P},
        {"the VMM deletes slot 1", N}, {"DMA to the deleted slot faults at stage 2", A}}},
  };
  for (auto& row : rows) {
    DYNAMIC_SECTION(row.victim << (row.restart[0] ? " restarted" : " not restarted")) {
      auto r = run(path("system/manifests/nested.toml") + " " +
                   path("tests/system/scenarios/kill-nested.capnp") + PROCESS_ALL +
                   " --set components.shadow.placement=process" + row.restart +
                   " --define victim=" + row.victim);
      checkSteps(*r, row.victim, row.steps);
      CHECK(r->report.getDeaths().size() == 0);
    }
  }
}

TEST_CASE("Reliability: restart = \"on-failure\" is refused for an implementation that cannot "
          "recover its state",
          "[reliability][e2e]") {
  for (const char* instance : {"domains", "groups"}) {
    auto r = testing::runProcess(
        "system/nestbed", "check " + path("system/manifests/default.toml") + PROCESS_ALL +
                              " --set components." + instance + ".restart=on-failure");
    INFO(r.out);
    CHECK(r.status == 1);
    CHECK(r.out.find(std::string("components.") + instance + ".restart") != std::string::npos);
    CHECK(r.out.find("needs an implementation that recovers its state") != std::string::npos);
  }
}

TEST_CASE("Reliability: a component that dies unasked fails the run, named in every step that "
          "needs it, a counter check included",
          "[reliability][e2e]") {
  auto r = testing::runProcess("tests/fixtures/fixture-nestbed",
                               "run --json " + path("tests/system/manifests/fixture.toml") + " " +
                                   path("tests/system/scenarios/crash-unasked.capnp"),
                               "2>/dev/null");
  INFO(r.out);
  CHECK(r.status == 1);
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<rpc::RunReport>();
  REQUIRE(r.out.find('{') != std::string::npos);
  capnp::JsonCodec codec;
  codec.decode(kj::StringPtr(r.out.c_str() + r.out.find('{')), root);
  auto steps = root.getScenarios()[0].getSteps();
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].getOk());   // expected the exception naming it
  CHECK(steps[1].getOk());
  CHECK(!steps[2].getOk());  // no counters to check: fails, naming it (not a crash of nestbed)
  REQUIRE(steps[2].getFailures().size() == 1);
  CHECK(std::string(steps[2].getFailures()[0].getActual().cStr()).find("component 'counter'") !=
        std::string::npos);
  REQUIRE(root.getDeaths().size() == 1);
  CHECK(std::string(root.getDeaths()[0].cStr()).find("component 'counter'") != std::string::npos);
  CHECK(std::string(root.getDeaths()[0].cStr()).find("killed by signal 9") != std::string::npos);
  CHECK(!root.getOk());
}

}  // namespace
}  // namespace nb
