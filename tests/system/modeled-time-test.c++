// Modeled time (system/runtime/modeled-time.h): cost profiles refused with file:line:key, the
// clock's arithmetic, one chargeable event per step moving the clock by exactly its cost, a
// CMD_SYNC waiting for the commands before it, and the calibration of composed paths against
// published end-to-end figures. Identical modeled times across placements and runs are checked
// for every shipped manifest and scenario by shipped-test.c++ (the JSON reports compared include
// every step's modeled time and what it went to).

#include "interfaces/report.capnp.h"
#include "system/runtime/modeled-time.h"
#include "tests/system/process-testing.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

namespace nb {
namespace {

// ======================================================================================
// Profiles

// A valid profile with every class at `ns`, then `extra` lines appended inside [costs].
std::string profileText(uint64_t ns = 10, const std::string& skip = "", const std::string& extra = "") {
  std::string text = "[profile]\nname = \"t\"\n[costs]\n";
  for (size_t i = 0; i < COST_CLASSES; i++) {
    std::string key = costKey(Cost(i)).cStr();
    if (key == skip) continue;
    text += key + " = { ns = " + std::to_string(ns) +
            ", status = \"estimate\", source = \"test\" }\n";
  }
  return text + extra;
}

struct BadProfile {
  const char* what;
  std::string text;
  const char* key;       // the key the error names
  uint32_t line;         // its line (0: not checked)
  const char* message;   // part of the message
};

TEST_CASE("Profiles: an unknown key, a missing cost, a negative or unsourced value are refused "
          "with file:line:key",
          "[modeled][profile]") {
  // The line after the classes: [profile], name, [costs], then one line per class (one less when
  // a class is left out to be written again below).
  const uint32_t after = 3 + COST_CLASSES + 1, afterSkip = after - 1;
  auto bad = GENERATE_COPY(values<BadProfile>({
      {"unknown cost", profileText(10, "", "walk_reed = { ns = 1, status = \"estimate\", source = \"x\" }\n"),
       "costs.walk_reed", after, "did you mean 'walk_read'"},
      {"missing cost", profileText(10, "smmu_cmd_sync"), "costs.smmu_cmd_sync", 0, "missing cost"},
      {"negative", profileText(10, "mmio_read", "mmio_read = { ns = -5, status = \"estimate\", source = \"x\" }\n"),
       "costs.mmio_read.ns", afterSkip, "must not be negative"},
      {"no source", profileText(10, "mmio_read", "mmio_read = { ns = 5, status = \"estimate\" }\n"),
       "costs.mmio_read", afterSkip, "missing 'source'"},
      {"bad status", profileText(10, "mmio_read", "mmio_read = { ns = 5, status = \"guess\", source = \"x\" }\n"),
       "costs.mmio_read.status", afterSkip, "must be one of"},
      {"not an integer", profileText(10, "mmio_read", "mmio_read = { ns = 1.5, status = \"estimate\", source = \"x\" }\n"),
       "costs.mmio_read.ns", afterSkip, "integer"},
      {"unknown field", profileText(10, "", "[extra]\n"), "extra", after, "unknown top-level table"},
  }));
  DYNAMIC_SECTION(bad.what) {
    auto result = parseCostProfile(kj::StringPtr(bad.text.c_str()), "p.toml");
    REQUIRE(result.is<kj::Array<ProfileError>>());
    auto& errors = result.get<kj::Array<ProfileError>>();
    REQUIRE(errors.size() >= 1);
    bool found = false;
    for (auto& e : errors) {
      INFO(kj::str(e).cStr());
      if (e.key == bad.key) {
        found = true;
        CHECK(e.file == "p.toml");
        if (bad.line) CHECK(e.line == bad.line);
        CHECK(std::string(e.message.cStr()).find(bad.message) != std::string::npos);
        CHECK(std::string(kj::str(e).cStr()).find(std::string("p.toml:")) == 0);
      }
    }
    CHECK(found);
  }
}

TEST_CASE("Profiles: every shipped profile parses and sources every value", "[modeled][profile]") {
  REQUIRE(shippedProfileNames().size() >= 2);
  for (auto name : shippedProfileNames()) {
    INFO(name.cStr());
    auto text = KJ_ASSERT_NONNULL(shippedProfileText(name));
    auto result = parseCostProfile(text, name);
    REQUIRE(result.is<CostProfile>());
    auto& p = result.get<CostProfile>();
    CHECK(p.name == name);
    for (size_t i = 0; i < COST_CLASSES; i++) {
      CHECK(p.costs[i].source.size() > 10);
      CHECK(p.costs[i].status.size() > 0);
    }
  }
}

TEST_CASE("Profiles: the verified values are the cost anchors' published figures", "[modeled][profile]") {
  // Ampere Altra, kvm-unit-tests micro-bench (KUT-AL): hvc 306 ns, mmio_read_vgic 451 ns,
  // mmio_read_user 1,683 ns.
  auto result = parseCostProfile(KJ_ASSERT_NONNULL(shippedProfileText("neoverse-smmuv3")), "x");
  auto& p = result.get<CostProfile>();
  CHECK(p.ns(Cost::HYPERCALL) == 306);
  CHECK(p.ns(Cost::GUEST_EXIT_KERNEL) == 451);
  CHECK(p.ns(Cost::GUEST_EXIT_VMM) == 1683);
  CHECK(p.costs[uint(Cost::GUEST_EXIT_VMM)].status == "verified");
  // Derived: 4096 B at 11.51 GB/s is 355.9 ns.
  CHECK(p.ns(Cost::COPY_4K) == 356);
  CHECK(p.costs[uint(Cost::COPY_4K)].status == "derived");
}

// ======================================================================================
// The clock

CostProfile flatProfile(uint64_t ns) {
  auto result = parseCostProfile(kj::StringPtr(profileText(ns).c_str()), "t");
  return kj::mv(result.get<CostProfile>());
}

TEST_CASE("Clock: charges add, SMMU work is accounted off the CPU's timeline, a join waits",
          "[modeled][clock]") {
  auto profile = flatProfile(10);
  profile.costs[uint(Cost::COPY_4K)].ns = 400;
  auto clock = ModeledClock::create(profile);
  clock->charge(Cost::MMIO_READ);
  clock->charge(Cost::PTE_STORE, 7);
  CHECK(clock->now() == 80);
  // 6 KiB at 400 ns per 4 KiB: 600 ns, two units.
  clock->chargeCopy(6144);
  CHECK(clock->now() == 680);
  // SMMU work: in the totals, not on the CPU's timeline.
  CHECK(clock->account(Cost::SMMU_CMD_SYNC, 3) == 30);
  CHECK(clock->now() == 680);
  clock->joinAt(1000);
  CHECK(clock->now() == 1000);
  clock->joinAt(900);   // already past: no wait
  CHECK(clock->now() == 1000);
  auto t = clock->totals();
  CHECK(t.wait == 320);
  CHECK(t.units[uint(Cost::PTE_STORE)] == 7);
  CHECK(t.ns[uint(Cost::COPY_4K)] == 600);
  CHECK(t.units[uint(Cost::COPY_4K)] == 2);
  CHECK(t.ns[uint(Cost::SMMU_CMD_SYNC)] == 30);
  // Another process maps the same page: its charges move this clock.
  auto other = ModeledClock::attach(dup(clock->fd()));
  other->charge(Cost::IRQ);
  CHECK(clock->now() == 1010);
  // Timing off charges nothing.
  ModeledClock::off().charge(Cost::IRQ, 100);
  CHECK(ModeledClock::off().now() == 0);
}

// ======================================================================================
// Through the real nestbed

std::string path(const std::string& rel) { return testing::runfile(rel); }

struct Report {
  capnp::MallocMessageBuilder message;
  rpc::RunReport::Reader report;
};

kj::Own<Report> run(const std::string& args) {
  auto r = testing::runProcess("system/nestbed", "run --json " + args, "2>/dev/null");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto out = kj::heap<Report>();
  capnp::JsonCodec codec;
  auto root = out->message.initRoot<rpc::RunReport>();
  codec.decode(kj::StringPtr(r.out.c_str()), root);
  out->report = root.asReader();
  return out;
}

rpc::StepReport::Reader step(const Report& r, const std::string& label) {
  for (auto s : r.report.getScenarios()) {
    for (auto st : s.getSteps()) {
      if (std::string(st.getLabel().cStr()) == label) return st;
    }
  }
  FAIL("no step " << label);
  KJ_UNREACHABLE;
}

// Distinct costs, so a step's time names what it was charged for.
const char* DISTINCT =
    "--set timing.costs.mmio_read=1009 --set timing.costs.mmio_write=2003 "
    "--set timing.costs.copy_4k=4096 --set timing.costs.table_page=30011 "
    "--set timing.costs.crossing_call=7 --set timing.costs.crossing_ipc=50021";

TEST_CASE("Modeled time: a step doing one kind of work moves the clock by exactly its cost",
          "[modeled][e2e]") {
  auto r = run(path("system/manifests/hw.toml") + " " +
               path("tests/system/scenarios/modeled-events.capnp") + " " + DISTINCT);
  struct Row {
    const char* label;
    uint64_t ns;   // by hand from DISTINCT
  };
  auto row = GENERATE(values<Row>({
      {"one MMIO read", 1009},
      {"one MMIO write", 2003},
      {"a 4 KiB bypass DMA read", 4096},       // the SMMU is off: no lookup, only the copy
      {"a 6 KiB bypass DMA read", 6144},       // copy_4k pro rata: 1 ns a byte
      {"a page table: one call, one table page", 30011 + 7},
      {"one call into page_table", 7},
  }));
  DYNAMIC_SECTION(row.label) { CHECK(step(*r, row.label).getModeledNs() == row.ns); }
}

uint64_t unitsOf(rpc::StepReport::Reader step, const std::string& cost) {
  for (auto c : step.getModeled()) {
    if (std::string(c.getCost().cStr()) == cost) return c.getUnits();
  }
  return 0;
}

struct Units {
  const char* manifest;
  const char* scenario;
  const char* label;
  const char* cost;
  uint64_t units;     // derived by hand (the reason is in `why`)
  const char* why;
};

TEST_CASE("Modeled time: every class of work is counted as the architecture and Linux do it",
          "[modeled][e2e]") {
  constexpr const char* DEFAULT = "system/manifests/default.toml";
  constexpr const char* TOUR = "system/scenarios/default.capnp";
  constexpr const char* UNMAP = "tests/system/scenarios/modeled-unmap.capnp";
  constexpr const char* GUEST = "tests/system/scenarios/modeled-guest.capnp";
  constexpr const char* NATIVE = "system/manifests/guest-native.toml";
  constexpr const char* VCMDQ = "system/manifests/guest-sw-vcmdq.toml";
  constexpr const char* DMA = "ep0's DMA is translated into the buffer";
  constexpr const char* FAULT = "the next DMA faults: the IOTLB no longer holds the translation";
  constexpr const char* TLBI = "one guest TLBI_NH_VA (one page of ASID 1)";
  auto row = GENERATE_COPY(values<Units>({
      {DEFAULT, TOUR, DMA, "walk_read", 4, "48-bit IAS, 4K granule: levels 0-3, one read each"},
      {DEFAULT, TOUR, DMA, "config_fetch", 2, "first DMA after attach: the STE and the CD"},
      {DEFAULT, TOUR, DMA, "config_lookup", 2, "an STE and a CD lookup"},
      {DEFAULT, TOUR, DMA, "iotlb_lookup", 1, "one translation"},
      {DEFAULT, TOUR, FAULT, "walk_read", 4, "the 4K unmap freed no table: the walk reaches L3"},
      {DEFAULT, TOUR, FAULT, "config_fetch", 0, "STE and CD still cached"},
      {DEFAULT, TOUR, FAULT, "event_write", 1, "F_TRANSLATION recorded"},
      {DEFAULT, TOUR, FAULT, "irq", 1, "the EVTQ interrupt"},
      {DEFAULT, UNMAP, "unmap 4 KiB", "pte_store", 1, "one leaf cleared"},
      {DEFAULT, UNMAP, "unmap 4 KiB", "cmd_store", 2, "TLBI_NH_VA and the CMD_SYNC ending it"},
      {DEFAULT, UNMAP, "unmap 4 KiB", "smmu_cmd_tlbi", 1, "one page"},
      {DEFAULT, UNMAP, "unmap 4 KiB", "smmu_cmd_sync", 1, "one submission, one SYNC"},
      {DEFAULT, UNMAP, "unmap 4 KiB", "mmio_write", 1, "one CMDQ_PROD doorbell"},
      {DEFAULT, UNMAP, "unmap 4 KiB", "crossing_call", 3,
       "scenario -> domains, domains -> page_table, domains -> smmu_queue"},
      {DEFAULT, UNMAP, "unmap 1 MiB of 4 KiB pages", "smmu_cmd_tlbi", 1, "RIL: 256 pages, one range"},
      {NATIVE, GUEST, TLBI, "guest_exit_vmm", 2, "the guest's PROD write and its CONS poll"},
      {NATIVE, GUEST, TLBI, "vmm_cmd", 1, "the VMM rewrites one command"},
      {NATIVE, GUEST, TLBI, "syscall", 1, "one invalidation ioctl"},
      {NATIVE, GUEST, TLBI, "cmd_store", 3, "the guest's ring entry, the host's TLBI and SYNC"},
      {VCMDQ, GUEST, TLBI, "vcmdq_doorbell", 2, "the doorbell and the CONS poll, both trapped"},
      {VCMDQ, GUEST, TLBI, "guest_exit_vmm", 0, "no VMM on the VCMDQ path"},
      {VCMDQ, GUEST, TLBI, "cmd_store", 4, "the guest's TLBI and SYNC, the host's TLBI and SYNC"},
  }));
  DYNAMIC_SECTION(row.manifest << " " << row.label << " " << row.cost) {
    INFO(row.why);
    auto r = run(path(row.manifest) + " " + path(row.scenario));
    CHECK(unitsOf(step(*r, row.label), row.cost) == row.units);
  }
}

TEST_CASE("Modeled time: a call's cost is what the manifest says the boundary is",
          "[modeled][e2e]") {
  auto r = run(path("system/manifests/hw.toml") + " " +
               path("tests/system/scenarios/modeled-events.capnp") + " " + DISTINCT +
               " --set components.page_table.boundary=ipc");
  CHECK(step(*r, "one call into page_table").getModeledNs() == 50021);
  // Placement is how nestbed runs it, not what it is: the same modeled cost in a process.
  auto p = run(path("system/manifests/hw.toml") + " " +
               path("tests/system/scenarios/modeled-events.capnp") + " " + DISTINCT +
               " --set components.page_table.boundary=ipc --set components.page_table.placement=process");
  CHECK(step(*p, "one call into page_table").getModeledNs() == 50021);
}

TEST_CASE("Modeled time: a CMD_SYNC behind N more commands completes N command costs later",
          "[modeled][e2e]") {
  for (const char* placement : {"inline", "process"}) {
    INFO(placement);
    auto r = run(path("system/manifests/default.toml") + " " +
                 path("tests/system/scenarios/modeled-sync.capnp") +
                 " --set timing.costs.smmu_cmd_tlbi=1000 --set timing.costs.cmd_store=3" +
                 " --set components.smmu_queue.placement=" + placement);
    auto one = step(*r, "one TLBI_NSNH_ALL and its SYNC").getModeledNs();
    auto nine = step(*r, "nine TLBI_NSNH_ALL and their SYNC").getModeledNs();
    // Eight more commands: eight more ring stores by the CPU, eight more TLBIs for the SMMU
    // before it reaches the SYNC the CPU waits for.
    CHECK(nine - one == 8 * 3 + 8 * 1000);
  }
}

TEST_CASE("Modeled time: the same in every mix of placements, step by step", "[modeled][e2e]") {
  // One component at a time in its own process, the others inline: each call between them
  // relays through the composer (and, once, a tail call relayed for a process-placed caller
  // broke the composer). Every step's modeled time matches the all-inline run.
  auto args = path("system/manifests/default.toml") + " " + path("system/scenarios/default.capnp");
  auto inlined = run(args);
  auto steps = inlined->report.getScenarios()[0].getSteps();
  REQUIRE(steps.size() > 20);
  for (const char* instance : {"domains", "smmu_queue", "groups", "page_table"}) {
    INFO(instance);
    auto mixed = run(args + " --set components." + instance + ".placement=process");
    auto other = mixed->report.getScenarios()[0].getSteps();
    REQUIRE(other.size() == steps.size());
    for (auto i : kj::indices(steps)) {
      INFO(steps[i].getLabel().cStr());
      CHECK(other[i].getModeledNs() == steps[i].getModeledNs());
    }
  }
}

TEST_CASE("Modeled time: a lazy domain's flush queue drains when its 10 ms timer has passed",
          "[modeled][e2e][lazy]") {
  // The scenario's own expectations: inside the window a DMA through the unmapped IOVA still
  // works; once one DMA has taken 20 ms, the next map fires the timer (one timeout flush, no
  // entry pending) and the same DMA faults. No drain step.
  for (const char* placement : {"inline", "process"}) {
    INFO(placement);
    auto r = run(path("system/manifests/nic-lazy.toml") + " " +
                 path("tests/system/scenarios/modeled-fq-timeout.capnp") +
                 " --set timing.costs.copy_4k=20000000 --set components.domains.placement=" +
                 placement);
    CHECK(r->report.getOk());
  }
}

// ======================================================================================
// Calibration: modeled paths composed from primitive costs against published end-to-end
// figures. The profile holds primitives only; these are whole paths through the model. The
// published figures are medians on other machines than the profile's anchors (Morello, R-Car),
// so the tolerance is stated per row.

struct Calibration {
  const char* what;
  const char* manifest;
  const char* scenario;
  const char* sets;
  const char* label;
  double publishedNs;
  double tolerance;   // |modeled / published - 1| at most
  const char* source;
};

TEST_CASE("Calibration: modeled paths against published figures", "[modeled][calibration]") {
  auto c = GENERATE(values<Calibration>({
      {"native strict dma_unmap of 4 KiB", "system/manifests/default.toml",
       "tests/system/scenarios/modeled-unmap.capnp", "--set hw.smmu0.ril=false", "unmap 4 KiB", 700,
       0.25, "PKVM2: native dma_unmap 4 KiB, 1 thread, 0.7 us (Morello, no RIL)"},
      {"native strict dma_unmap of 1 MiB of 4 KiB pages, no RIL", "system/manifests/default.toml",
       "tests/system/scenarios/modeled-unmap.capnp", "--set hw.smmu0.ril=false",
       "unmap 1 MiB of 4 KiB pages", 21500, 0.25,
       "PKVM2: native dma_unmap 1 MiB, 1 thread, 21.5 us (Morello, no RIL)"},
      {"trap-and-emulate guest TLB invalidate, emulator in the hypervisor",
       "system/manifests/guest-native.toml", "tests/system/scenarios/modeled-guest.capnp",
       "--set timing.profile=neoverse-trap-hyp", "one guest TLBI_NH_VA (one page of ASID 1)", 2000,
       0.35, "XEN: guest TLB invalidate through the emulated CMDQ, median 2 us (R-Car)"},
  }));
  DYNAMIC_SECTION(c.what) {
    auto r = run(path(c.manifest) + " " + path(c.scenario) + " " + c.sets);
    double modeled = double(step(*r, c.label).getModeledNs());
    INFO(c.source << ": modeled " << modeled << " ns, published " << c.publishedNs << " ns");
    CHECK(std::abs(modeled / c.publishedNs - 1) <= c.tolerance);
  }
}

TEST_CASE("Calibration: a trapped vSMMU register access against the Xen measurement",
          "[modeled][calibration]") {
  // XEN: emulated vSMMUv3 register read, median 645 ns (R-Car); in neoverse-trap-hyp a trapped
  // register access is one exit handled in the hypervisor.
  auto result = parseCostProfile(KJ_ASSERT_NONNULL(shippedProfileText("neoverse-trap-hyp")), "x");
  double modeled = double(result.get<CostProfile>().ns(Cost::GUEST_EXIT_VMM));
  CHECK(std::abs(modeled / 645 - 1) <= 0.35);
}

}  // namespace
}  // namespace nb
