// Measurements over runs (system/experiment/measurements.h) from hand-made run reports: the
// statistics, the ratio's edge cases, the flags, and the rows that are left out; and how
// `sweep --param` splits its values.

#include "system/experiment/commands.h"
#include "system/experiment/measurements.h"
#include "system/experiment/plot.h"

#include <catch2/catch.hpp>
#include <capnp/message.h>

#include <cmath>
#include <string>

namespace nb::experiment {
namespace {

struct Counter {
  const char* instance;
  const char* name;
  uint64_t value;
};

// A run that passed, with one scenario of two steps (one a check, which takes no time).
RunResult ran(double stepMicros, std::initializer_list<Counter> counters, bool ok = true,
              uint64_t stepModeledNs = 0, std::initializer_list<Counter> deltas = {}) {
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto report = message->initRoot<rpc::RunReport>();
  report.setOk(ok);
  auto scenario = report.initScenarios(1)[0];
  scenario.setFile("s.capnp");
  scenario.setOk(ok);
  auto steps = scenario.initSteps(2);
  steps[0].setLine(7);
  steps[0].setLabel("x.add");
  steps[0].setMicros(stepMicros * 4);
  steps[0].setModeledNs(stepModeledNs * 4);
  steps[0].setIterations(4);
  auto d = steps[0].initDeltas(deltas.size());
  size_t j = 0;
  for (auto& c : deltas) {
    d[j].setInstance(c.instance);
    d[j].setCounter(c.name);
    d[j].setDelta(int64_t(c.value));
    j++;
  }
  steps[1].setLine(9);
  steps[1].setLabel("check");
  steps[1].setIterations(1);
  kj::Vector<kj::String> instances;
  for (auto& c : counters) {
    bool seen = false;
    for (auto& i : instances) seen = seen || i == c.instance;
    if (!seen) instances.add(kj::str(c.instance));
  }
  auto components = report.initComponents(instances.size());
  for (auto i : kj::indices(instances)) {
    components[i].setName(instances[i]);
    size_t n = 0;
    for (auto& c : counters) n += instances[i] == c.instance;
    auto list = components[i].initCounters(n);
    size_t k = 0;
    for (auto& c : counters) {
      if (instances[i] != c.instance) continue;
      list[k].setName(c.name);
      list[k].setValue(c.value);
      k++;
    }
  }
  return RunResult{RunResult::Outcome::RAN, kj::mv(message), report, nullptr, nullptr};
}

bool has(const kj::String& text, const char* part) {
  return std::string(text.cStr()).find(part) != std::string::npos;
}

kj::Array<VariantSpec> ab() {
  auto v = kj::heapArrayBuilder<VariantSpec>(2);
  v.add(VariantSpec{kj::str("A"), kj::str("a.toml")});
  v.add(VariantSpec{kj::str("B"), kj::str("b.toml")});
  return v.finish();
}

rpc::ExperimentReport::Row::Reader counter(rpc::ExperimentReport::Reader r, kj::StringPtr instance, kj::StringPtr name) {
  for (auto row : r.getCounters()) {
    if (row.getGroup() == instance && row.getName() == name) return row;
  }
  FAIL("no row " << instance.cStr() << "." << name.cStr());
  KJ_UNREACHABLE;
}

TEST_CASE("Measurements: median and min-max per variant, B/A, flags", "[experiment][measurements]") {
  Measurements m(rpc::ExperimentReport::Kind::COMPARE, ab());
  m.useWallTime(true);   // the hand-made reports carry wall times only
  // A: step 10, 30, 20 us per iteration; B: 40, 40, 10.
  m.add(0, 1, ran(10, {{"c", "same", 7}, {"c", "zero", 0}, {"c", "grows", 0}, {"c", "drifts", 1}}));
  m.add(1, 1, ran(40, {{"c", "same", 7}, {"c", "zero", 0}, {"c", "grows", 3}, {"c", "drifts", 2}}));
  m.add(0, 2, ran(30, {{"c", "same", 7}, {"c", "zero", 0}, {"c", "grows", 0}, {"c", "drifts", 1}}));
  m.add(1, 2, ran(40, {{"c", "same", 7}, {"c", "zero", 0}, {"c", "grows", 3}, {"c", "drifts", 2}, {"d", "only_b", 1}}));
  m.add(0, 3, ran(20, {{"c", "same", 7}, {"c", "zero", 0}, {"c", "grows", 0}, {"c", "drifts", 5}}));
  m.add(1, 3, ran(10, {{"c", "same", 7}, {"c", "zero", 0}, {"c", "grows", 3}, {"c", "drifts", 2}, {"d", "only_b", 1}}));

  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<rpc::ExperimentReport>();
  kj::String scenarios[] = {kj::str("s.capnp")};
  m.fill(builder, scenarios, nullptr, nullptr, 3);
  auto r = builder.asReader();
  CHECK(r.getOk());

  // The check step takes no time: left out.
  REQUIRE(r.getSteps().size() == 1);
  auto step = r.getSteps()[0];
  CHECK(step.getLine() == 7);
  CHECK(step.getCells()[0].getMedian() == 20);
  CHECK(step.getCells()[0].getMin() == 10);
  CHECK(step.getCells()[0].getMax() == 30);
  CHECK(step.getCells()[1].getMedian() == 40);
  CHECK(step.getRatio() == 2);
  CHECK(!step.getVaries());   // timings are expected to vary

  CHECK(counter(r, "c", "same").getRatio() == 1);
  CHECK(!counter(r, "c", "same").getDiffers());
  CHECK(counter(r, "c", "zero").getRatio() == 1);           // 0 and 0 are equal
  CHECK(std::isinf(counter(r, "c", "grows").getRatio()));   // only A's is 0
  CHECK(counter(r, "c", "grows").getDiffers());
  CHECK(counter(r, "c", "drifts").getVaries());             // A's runs disagree: 1, 1, 5
  CHECK(!counter(r, "c", "same").getVaries());
  auto onlyB = counter(r, "d", "only_b");
  CHECK(!onlyB.getCells()[0].getPresent());
  CHECK(onlyB.getCells()[1].getSamples().size() == 2);
  CHECK(std::isnan(onlyB.getRatio()));
  CHECK(onlyB.getDiffers());

  auto text = formatExperiment(r);
  INFO(text.cStr());
  CHECK(has(text, "c.drifts"));
  CHECK(has(text, "! varies"));
  CHECK(has(text, "20.0 [10.0-30.0]"));
  CHECK(has(text, "3 of 5 counters differ between A and B; 1 vary over runs of one side (marked !): c.drifts"));

  auto csv = experimentCsv(r);
  INFO(csv.cStr());
  CHECK(csv.startsWith("kind,group,name,line,A_median,A_min,A_max,B_median,B_min,B_max,ratio,differs,varies\n"));
  CHECK(has(csv, "\nstep_us,s.capnp,x.add,7,20,10,30,40,10,40,2,1,0\n"));
  CHECK(has(csv, "\ncounter,c,grows,0,0,0,0,3,3,3,inf,1,0\n"));
  CHECK(has(csv, "\ncounter,d,only_b,0,,,,1,1,1,,1,0\n"));
}

TEST_CASE("Measurements: what each step changed, per variant; a run that left it alone counts 0",
          "[experiment][measurements]") {
  Measurements m(rpc::ExperimentReport::Kind::COMPARE, ab());
  m.add(0, 1, ran(10, {}, true, 0, {{"smmu0", "cmdq_op_sync", 2}}));
  m.add(1, 1, ran(10, {}, true, 0, {}));
  m.add(0, 2, ran(10, {}, true, 0, {{"smmu0", "cmdq_op_sync", 2}}));
  m.add(1, 2, ran(10, {}, true, 0, {{"smmu0", "cmdq_op_sync", 3}}));
  m.add(0, 3, ran(10, {}, true, 0, {{"smmu0", "cmdq_op_sync", 2}}));
  m.add(1, 3, ran(10, {}, true, 0, {{"smmu0", "cmdq_op_sync", 3}}));
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<rpc::ExperimentReport>();
  kj::String scenarios[] = {kj::str("s.capnp")};
  m.fill(builder, scenarios, nullptr, nullptr, 3);
  auto r = builder.asReader();
  REQUIRE(r.getStepCounters().size() == 1);
  auto row = r.getStepCounters()[0];
  CHECK(row.getGroup() == "s.capnp");
  CHECK(row.getLine() == 7);
  CHECK(row.getStep() == "x.add");
  CHECK(row.getName() == "smmu0.cmdq_op_sync");
  auto b = row.getCells()[1].getSamples();
  REQUIRE(b.size() == 3);
  CHECK(b[0] == 0);   // run 1 of B did not change it: 0, in its place
  CHECK(b[1] == 3);
  CHECK(b[2] == 3);
  CHECK(row.getCells()[0].getMedian() == 2);
  CHECK(row.getCells()[1].getMedian() == 3);
  CHECK(row.getRatio() == 1.5);
  CHECK(row.getVaries());   // B's runs disagree
  CHECK(has(formatExperiment(r), "s.capnp:7 x.add: smmu0.cmdq_op_sync"));
  CHECK(has(experimentCsv(r), "\nstep_counter,s.capnp,smmu0.cmdq_op_sync,7,2,2,2,3,0,3,1.5,1,1\n"));
}

TEST_CASE("compare's plot shows every run, not only the medians", "[experiment][measurements]") {
  Measurements m(rpc::ExperimentReport::Kind::COMPARE, ab());
  m.useWallTime(true);
  // A: 10, 30, 20 us (median 20); B: 40, 40, 10.
  m.add(0, 1, ran(10, {}));
  m.add(1, 1, ran(40, {}));
  m.add(0, 2, ran(30, {}));
  m.add(1, 2, ran(40, {}));
  m.add(0, 3, ran(20, {}));
  m.add(1, 3, ran(10, {}));
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<rpc::ExperimentReport>();
  kj::String scenarios[] = {kj::str("s.capnp")};
  m.fill(builder, scenarios, nullptr, nullptr, 3);
  auto script = plotScript(builder.asReader(), "x.svg", nullptr);
  INFO(script.cStr());
  // Each run over A's median: A's (flag 0) 0.5, 1.5, 1; B's (flag 1) 2, 2, 0.5.
  CHECK(has(script, "$steps_runs << EOD\n0 0.5 0\n0 1.5 0\n0 1 0\n0 2 1\n0 2 1\n0 0.5 1\nEOD\n"));
}

TEST_CASE("Measurements: step rows are modeled time per iteration unless wall time is asked for",
          "[experiment][measurements]") {
  for (bool wall : {false, true}) {
    Measurements m(rpc::ExperimentReport::Kind::COMPARE, ab());
    m.useWallTime(wall);
    // A: 10 us wall, 2,500 ns modeled per iteration; B: 30 us wall, 5,000 ns modeled.
    m.add(0, 1, ran(10, {{"c", "n", 1}}, true, 2500));
    m.add(1, 1, ran(30, {{"c", "n", 1}}, true, 5000));
    capnp::MallocMessageBuilder message;
    auto builder = message.initRoot<rpc::ExperimentReport>();
    m.fill(builder, nullptr, nullptr, nullptr, 1);
    auto r = builder.asReader();
    CHECK(r.getTimeBase() == (wall ? "wall" : "modeled"));
    REQUIRE(r.getSteps().size() == 1);
    CHECK(r.getSteps()[0].getCells()[0].getMedian() == (wall ? 10 : 2.5));
    CHECK(r.getSteps()[0].getRatio() == (wall ? 3 : 2));
    // The other base rides along, in the JSON and as its own CSV rows.
    REQUIRE(r.getOtherSteps().size() == 1);
    CHECK(r.getOtherSteps()[0].getCells()[0].getMedian() == (wall ? 2.5 : 10));
    CHECK(r.getOtherSteps()[0].getRatio() == (wall ? 2 : 3));
    auto csv = experimentCsv(r);
    CHECK(has(csv, wall ? "\nstep_modeled_us,s.capnp,x.add,7,2.5," : "\nstep_wall_us,s.capnp,x.add,7,10,"));
  }
}

TEST_CASE("Measurements: failed runs are named per variant", "[experiment][measurements]") {
  Measurements m(rpc::ExperimentReport::Kind::COMPARE, ab());
  m.add(0, 1, ran(1, {{"c", "n", 1}}));
  m.add(1, 1, ran(1, {{"c", "n", 1}}, false));
  auto notStarted = ran(0, {});
  notStarted.outcome = RunResult::Outcome::START_FAILED;
  notStarted.error = kj::str("starting 'c': boom");
  m.add(1, 2, notStarted);
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<rpc::ExperimentReport>();
  m.fill(builder, nullptr, nullptr, nullptr, 2);
  auto r = builder.asReader();
  CHECK(!r.getOk());
  CHECK(r.getVariants()[0].getOk());
  REQUIRE(r.getVariants()[1].getFailures().size() == 2);
  CHECK(r.getVariants()[1].getFailures()[0] == "run 1: scenario s.capnp failed");
  CHECK(r.getVariants()[1].getFailures()[1] == "run 2: did not start: starting 'c': boom");
  // The run that did not start added no samples.
  CHECK(counter(r, "c", "n").getCells()[1].getSamples().size() == 1);
}

TEST_CASE("sweep --param: values split on commas outside brackets and quotes", "[experiment]") {
  auto p = KJ_ASSERT_NONNULL(parseSweepParam("hw.smmuv3.0.iotlb_entries=16,64,256"));
  CHECK(p.key == "hw.smmuv3.0.iotlb_entries");
  REQUIRE(p.values.size() == 3);
  CHECK(p.values[2] == "256");
  auto arrays = KJ_ASSERT_NONNULL(parseSweepParam("k=[1,2],[3],\"a,b\""));
  REQUIRE(arrays.values.size() == 3);
  CHECK(arrays.values[0] == "[1,2]");
  CHECK(arrays.values[2] == "\"a,b\"");
  CHECK(parseSweepParam("k") == nullptr);
  CHECK(parseSweepParam("=1,2") == nullptr);
  CHECK(parseSweepParam("k=") == nullptr);
  CHECK(parseSweepParam("k=1,,2") == nullptr);
}

}  // namespace
}  // namespace nb::experiment
