// The scenario language and runner: every step and expectation kind passing and failing,
// file and semantic errors with lines, determinism across runs and placements.

#include "tests/system/compose-testing.h"

#include "system/script/runner.h"

#include <capnp/message.h>
#include <fstream>

namespace nb {
namespace {

kj::String manifest(kj::StringPtr placement) {
  return kj::str("[memory]\nbase = 0x40000000\nsize = \"16MiB\"\n"
                 "[components.counter]\nimpl = \"fixture/counter\"\nstart = 5\nplacement = \"", placement, "\"\n"
                 "[components.relay]\nimpl = \"fixture/relay\"\nplacement = \"", placement, "\"\n"
                 "uses = { counter = \"counter\" }\n");
}

kj::String root() { return kj::str(getenv("TEST_SRCDIR"), "/nestbed"); }

LoadedScenario load(kj::StringPtr name) {
  ScenarioLoader loader(root());
  auto result = loader.load(kj::str(root(), "/tests/system/scenarios/", name));
  if (result.is<kj::Array<ScenarioError>>()) {
    for (auto& e : result.get<kj::Array<ScenarioError>>()) FAIL_CHECK(kj::str(e).cStr());
    FAIL("scenario did not load");
  }
  return kj::mv(result.get<LoadedScenario>());
}

struct Run {
  capnp::MallocMessageBuilder message;
  rpc::ScenarioReport::Reader report;
};

kj::Own<Run> runScenario(testing::TestSystem& sys, kj::StringPtr name) {
  auto scenario = load(name);
  ScenarioRunner runner(sys.io.waitScope, sys.root, testing::testRegistry());
  auto errors = runner.check(scenario);
  for (auto& e : errors) FAIL_CHECK(kj::str(e).cStr());
  auto run = kj::heap<Run>();
  auto builder = run->message.initRoot<rpc::ScenarioReport>();
  runner.run(scenario, builder);
  run->report = builder.asReader();
  return run;
}

// The report without timings, for exact comparison.
kj::String timeless(rpc::ScenarioReport::Reader report) {
  capnp::MallocMessageBuilder copy;
  copy.setRoot(report);
  auto r = copy.getRoot<rpc::ScenarioReport>();
  for (auto s : r.getSteps()) s.setMicros(0);
  return kj::str(r.asReader());
}

TEST_CASE("Scenario: every step and expectation kind holds on a passing scenario", "[scenario]") {
  auto placement = GENERATE(as<std::string>(), "inline", "process");
  DYNAMIC_SECTION(placement) {
    testing::TestSystem sys(manifest(placement.c_str()));
    auto run = runScenario(sys, "all-pass.capnp");
    INFO(formatScenarioReport(run->report).cStr());
    CHECK(run->report.getOk());
    auto steps = run->report.getSteps();
    REQUIRE(steps.size() == 17);  // 16 steps plus the one inside the repeat
    CHECK(steps[0].getLine() == 9);
    CHECK(steps[3].getLabel() == "repeat 4x");
    CHECK(steps[4].getDepth() == 1);
    CHECK(steps[4].getIterations() == 4);
    CHECK(steps[5].getLabel() == "sixteen added by the repeat");
  }
}

TEST_CASE("Scenario: each failing expectation reports expected, actual and line", "[scenario]") {
  testing::TestSystem sys(manifest("inline"));
  auto run = runScenario(sys, "all-fail.capnp");
  auto text = formatScenarioReport(run->report);
  INFO(text.cStr());
  CHECK(!run->report.getOk());
  auto steps = run->report.getSteps();
  REQUIRE(steps.size() == 10);
  for (auto s : steps) CHECK(!s.getOk());

  auto failure = [&](size_t step, size_t i = 0) { return steps[step].getFailures()[i]; };
  CHECK(steps[0].getLine() == 8);
  CHECK(failure(0).getWhat() == "value");
  CHECK(failure(0).getExpected() == "(total = 7)");
  CHECK(failure(0).getActual() == "(total = 6)");
  CHECK(failure(1).getWhat() == "fields.total");
  CHECK(failure(1).getActual() == "7");
  CHECK(failure(2).getWhat() == "errno");
  CHECK(failure(2).getExpected() == "eOverflow");
  CHECK(failure(2).getActual() == "ok");
  CHECK(failure(3).getExpected() == "ok");
  CHECK(failure(3).getActual() == "eOverflow");
  CHECK(failure(4).getWhat() == "fault.type");
  CHECK(failure(4).getActual() == "none");
  CHECK(failure(5).getWhat() == "outcome");
  CHECK(failure(6).getWhat() == "outcome");
  CHECK(steps[7].getFailures().size() == 3);
  CHECK(failure(7, 0).getWhat() == "counter counter.total");
  CHECK(failure(7, 1).getExpected() == "<= 1");
  CHECK(failure(7, 2).getActual() == "no counter 'nonesuch'");
  // Inside a repeat: one failure per iteration, with its index.
  CHECK(steps[9].getFailures().size() == 3);
  CHECK(failure(9, 2).getIteration() == 2);
  CHECK(std::string(text.cStr()).find("all-fail.capnp:8: value: expected (total = 7), actual (total = 6)") !=
        std::string::npos);
}

TEST_CASE("Scenario: semantic errors are all reported with their lines before anything runs", "[scenario]") {
  testing::TestSystem sys(manifest("inline"));
  auto scenario = load("bad-semantics.capnp");
  ScenarioRunner runner(sys.io.waitScope, sys.root, testing::testRegistry());
  auto errors = runner.check(scenario);
  auto all = KJ_MAP(e, errors) { return kj::str(e); };
  INFO(kj::strArray(all, "\n").cStr());
  REQUIRE(errors.size() == 6);
  CHECK(errors[0].line == 7);
  CHECK(std::string(all[0].cStr()).find("no instance 'countr'") != std::string::npos);
  CHECK(std::string(all[1].cStr()).find("has no method 'ad'") != std::string::npos);
  CHECK(std::string(all[2].cStr()).find("'$later' is used before it is set") != std::string::npos);
  CHECK(std::string(all[3].cStr()).find("'$c' is used before it is set") != std::string::npos);
  CHECK(std::string(all[4].cStr()).find("no field 'totl'") != std::string::npos);
  CHECK(errors[5].line == 12);
  // Nothing ran.
  CHECK(sys.stats()[1].counters[0].value == 0);
}

TEST_CASE("Scenario: parse errors are reported with file, line and column, several at once", "[scenario]") {
  ScenarioLoader loader(root());
  auto result = loader.load(kj::str(root(), "/tests/system/scenarios/bad-syntax.capnp"));
  REQUIRE(result.is<kj::Array<ScenarioError>>());
  auto& errors = result.get<kj::Array<ScenarioError>>();
  auto all = KJ_MAP(e, errors) { return kj::str(e); };
  INFO(kj::strArray(all, "\n").cStr());
  REQUIRE(errors.size() >= 2);
  CHECK(errors[0].line == 7);
  CHECK(errors[1].line == 8);
  CHECK(std::string(all[0].cStr()).find("bad-syntax.capnp:7:") != std::string::npos);
}

TEST_CASE("Scenario: a missing file is a file error", "[scenario]") {
  ScenarioLoader loader(root());
  auto result = loader.load("/nonexistent.capnp");
  REQUIRE(result.is<kj::Array<ScenarioError>>());
  CHECK(kj::str(result.get<kj::Array<ScenarioError>>()[0]) == "/nonexistent.capnp: cannot open scenario file");
}

TEST_CASE("Scenario: the same scenario gives identical reports across runs and placements", "[scenario]") {
  kj::Vector<kj::String> reports;
  for (auto placement : {"inline", "process", "inline", "process"}) {
    testing::TestSystem sys(manifest(placement));
    reports.add(timeless(runScenario(sys, "all-pass.capnp")->report));
    reports.add(timeless(runScenario(sys, "all-fail.capnp")->report));
  }
  for (size_t i = 2; i < reports.size(); i++) {
    CHECK(std::string(reports[i].cStr()) == std::string(reports[i % 2].cStr()));
  }
}

TEST_CASE("Scenario: step line scanning follows nesting, comments and strings", "[scenario]") {
  auto lines = scanStepLines(
      "const s :Scenario = (steps = [  # steps = [ (\n"
      "  (label = \"steps = [(\", call = (target = \"x\")),\n"
      "  (repeat = (steps = [\n"
      "    (check = void),\n"
      "    (check = void)])),\n"
      "  (fields = [(path = \"a\")], check = void)]);\n");
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == 2);
  CHECK(lines[1] == 3);
  CHECK(lines[2] == 4);
  CHECK(lines[3] == 5);
  CHECK(lines[4] == 6);
}

TEST_CASE("Scenario: whenImpl picks the expectation of the implementation that runs", "[scenario]") {
  testing::TestSystem sys(manifest("inline"));
  auto run = runScenario(sys, "when-impl.capnp");
  INFO(formatScenarioReport(run->report).cStr());
  CHECK(run->report.getOk());
}

TEST_CASE("Scenario: whenImpl naming no registered implementation is a check error", "[scenario]") {
  testing::TestSystem sys(manifest("inline"));
  auto path = kj::str(getenv("TEST_TMPDIR"), "/when-impl-unknown.capnp");
  {
    std::ofstream out(path.cStr());
    out << "@0xd93e5f1a2b7c4e61;\nusing import \"/interfaces/scenario.capnp\".Scenario;\n"
           "const scenario :Scenario = (steps = [(check = void, whenImpl = [(impl = \"fixture/nope\")])]);\n";
  }
  ScenarioLoader loader(root());
  auto result = loader.load(path);
  REQUIRE(result.is<LoadedScenario>());
  ScenarioRunner runner(sys.io.waitScope, sys.root, testing::testRegistry());
  auto errors = runner.check(result.get<LoadedScenario>());
  REQUIRE(errors.size() == 1);
  CHECK(std::string(kj::str(errors[0]).cStr()).find("whenImpl names 'fixture/nope', which is no registered "
                                                   "implementation") != std::string::npos);
}

TEST_CASE("Scenario: nesting steps' capabilities, instances and guests are checked", "[scenario]") {
  testing::TestSystem sys(manifest("inline"));
  auto path = kj::str(getenv("TEST_TMPDIR"), "/nesting-names.capnp");
  {
    std::ofstream out(path.cStr());
    out << "@0xe4b1c0a9d8f72635;\nusing import \"/interfaces/scenario.capnp\".Scenario;\n"
           "const scenario :Scenario = (steps = [\n"
           "  (shadow = (target = (smmu = \"smmu0\"))),\n"
           "  (guestMap = (guest = \"g\", iova = 0, gpa = 0, size = 4096)),\n"
           "  (guestAttach = (guest = \"g\", vm = \"counter\", viommu = \"$v\", ownership = \"$o\",\n"
           "                  region = (gpa = 0))),\n"
           "  (guestUnmap = (guest = \"g\", iova = 0, size = 4096)),\n"
           "]);\n";
  }
  ScenarioLoader loader(root());
  auto result = loader.load(path);
  REQUIRE(result.is<LoadedScenario>());
  ScenarioRunner runner(sys.io.waitScope, sys.root, testing::testRegistry());
  auto errors = runner.check(result.get<LoadedScenario>());
  auto all = KJ_MAP(e, errors) { return kj::str(e); };
  INFO(kj::strArray(all, "\n").cStr());
  REQUIRE(errors.size() == 6);
  CHECK(errors[0].line == 4);
  CHECK(std::string(all[0].cStr()).find("no instance 'shadow'") != std::string::npos);
  CHECK(errors[1].line == 5);
  CHECK(std::string(all[1].cStr()).find("guest 'g' is used before a guestAttach step") !=
        std::string::npos);
  CHECK(errors[2].line == 6);
  CHECK(std::string(all[2].cStr()).find("'$v' is used before it is set") != std::string::npos);
  CHECK(std::string(all[3].cStr()).find("'$o' is used before it is set") != std::string::npos);
  CHECK(std::string(all[4].cStr()).find("instance 'counter' serves Counter, not Vm") !=
        std::string::npos);
  CHECK(std::string(all[5].cStr()).find("no instance 'domains'") != std::string::npos);
}

TEST_CASE("Scenario: parameters are substituted, defaults apply, a missing one is an error",
          "[scenario]") {
  ScenarioLoader loader(root());
  auto path = kj::str(root(), "/tests/system/scenarios/params.capnp");

  auto missing = loader.load(path);
  REQUIRE(missing.is<kj::Array<ScenarioError>>());
  auto& errors = missing.get<kj::Array<ScenarioError>>();
  REQUIRE(errors.size() == 2);  // ${n} in the description and in the args
  CHECK(errors[0].line == 7);
  CHECK(std::string(errors[0].message.cStr()).find("'n' has no value") != std::string::npos);

  ScenarioParam n5[] = {{kj::str("n"), kj::str("5")}};
  auto loaded = loader.load(path, n5);
  REQUIRE(loaded.is<LoadedScenario>());
  auto& byDefault = loaded.get<LoadedScenario>();
  CHECK(byDefault.scenario.getDescription() == "3 adds of 5");
  CHECK(byDefault.scenario.getSteps()[0].getRepeat().getCount() == 3);
  CHECK(byDefault.scenario.getSteps()[0].getRepeat().getSteps()[0].getCall().getArgs() == "(n = 5)");
  CHECK(byDefault.stepLines[0] == 9);  // lines are unchanged by substitution
  // ${ghost} is in a comment: neither substituted (it has no value: that would be an error) nor
  // a parameter the file takes.
  REQUIRE(byDefault.parameters.size() == 2);
  CHECK(byDefault.parameters[0] == "adds");
  CHECK(byDefault.parameters[1] == "n");

  ScenarioParam both[] = {{kj::str("n"), kj::str("2")}, {kj::str("adds"), kj::str("7")}};
  auto given = loader.load(path, both);
  REQUIRE(given.is<LoadedScenario>());
  CHECK(given.get<LoadedScenario>().scenario.getSteps()[0].getRepeat().getCount() == 7);
}

TEST_CASE("Scenario: a parameter no scenario refers to is an error naming it, with a did-you-mean",
          "[scenario]") {
  ScenarioLoader loader(root());
  auto path = kj::str(root(), "/tests/system/scenarios/params.capnp");
  ScenarioParam given[] = {{kj::str("n"), kj::str("2")}, {kj::str("addz"), kj::str("7")},
                           {kj::str("ghost"), kj::str("1")}};
  auto loaded = loader.load(path, given);
  REQUIRE(loaded.is<LoadedScenario>());
  LoadedScenario scenarios[] = {kj::mv(loaded.get<LoadedScenario>())};
  auto errors = unusedParams(scenarios, given);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] == kj::str("scenario parameter 'addz' is not used by ", path,
                             " (did you mean 'adds'?); parameters: adds, n"));
  CHECK(errors[1] == kj::str("scenario parameter 'ghost' is not used by ", path,
                             "; parameters: adds, n"));
  CHECK(unusedParams(scenarios, kj::arrayPtr(given, 1)).size() == 0);
}

TEST_CASE("Scenario report: each step's counter changes under it",
          "[scenario]") {
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<rpc::ScenarioReport>();
  report.setFile("s.capnp");
  report.setOk(true);
  auto steps = report.initSteps(2);
  steps[0].setLine(3);
  steps[0].setLabel("unmap");
  steps[0].setOk(true);
  steps[0].setMicros(20);
  steps[0].setIterations(1);
  auto d = steps[0].initDeltas(2);
  d[0].setInstance("smmu0");
  d[0].setCounter("cmdq_op_sync");
  d[0].setDelta(1);
  d[1].setInstance("memory");
  d[1].setCounter("used_bytes");
  d[1].setDelta(-4096);
  steps[1].setLine(4);
  steps[1].setLabel("check");
  steps[1].setOk(true);
  steps[1].setIterations(1);
  auto plain = formatScenarioReport(report.asReader());
  INFO(plain.cStr());
  CHECK(std::string(plain.cStr()).find("\n           smmu0.cmdq_op_sync +1, memory.used_bytes -4096\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace nb
