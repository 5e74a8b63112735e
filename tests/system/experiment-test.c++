// nestbed compare and sweep end to end: the real binaries (the shipped nestbed, and the CLI
// built with the fixture components), their exit statuses, tables, JSON, CSV and plots.

#include "interfaces/report.capnp.h"
#include "tests/system/process-testing.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <kj/map.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace {

using nb::testing::runfile;

std::string path(const char* rel) { return runfile(rel); }
std::string tmp(const char* name) { return std::string(getenv("TEST_TMPDIR")) + "/" + name; }

// The shipped nestbed; stderr into `out` unless `redirect` says otherwise.
nb::testing::ProcessResult nestbed(const std::string& args, const char* redirect = "2>&1") {
  return nb::testing::runProcess("system/nestbed", args, redirect);
}
// The nestbed CLI with the fixture components.
nb::testing::ProcessResult fixtureNestbed(const std::string& args, const char* redirect = "2>&1") {
  return nb::testing::runProcess("tests/fixtures/fixture-nestbed", args, redirect);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool haveGnuplot() {
  bool found = system("command -v gnuplot > /dev/null 2>&1") == 0;
  if (!found) WARN("gnuplot is not on $PATH: plots are not checked");
  return found;
}

std::string readFile(const std::string& name) {
  FILE* f = fopen(name.c_str(), "r");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

// An ExperimentReport printed by --json, decoded through Cap'n Proto's JSON codec.
struct Decoded {
  capnp::MallocMessageBuilder message;
  nb::rpc::ExperimentReport::Reader report;
};
kj::Own<Decoded> decodeReport(const std::string& out) {
  auto start = out.find('{');
  REQUIRE(start != std::string::npos);
  auto decoded = kj::heap<Decoded>();
  capnp::JsonCodec codec;
  auto root = decoded->message.initRoot<nb::rpc::ExperimentReport>();
  codec.decode(kj::StringPtr(out.c_str() + start), root);
  decoded->report = root.asReader();
  return decoded;
}

// ======================================================================================
// compare

TEST_CASE("compare: a manifest against itself gives every counter and modeled step ratio exactly 1",
          "[experiment][compare]") {
  // page_table process-placed on both sides: two processes per run, four runs.
  auto r = nestbed("compare --json --repeat 2 --set components.page_table.placement=process " +
                       path("system/manifests/hw.toml") + " " + path("system/manifests/hw.toml") + " " +
                       path("system/scenarios/page_table.capnp"),
                   "2>/dev/null");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto decoded = decodeReport(r.out);
  auto report = decoded->report;
  CHECK(report.getKind() == nb::rpc::ExperimentReport::Kind::COMPARE);
  CHECK(report.getOk());
  CHECK(report.getRepeats() == 2);
  CHECK(report.getTimeBase() == "modeled");
  REQUIRE(report.getVariants().size() == 2);
  CHECK(report.getVariants()[0].getLabel() == "A");
  CHECK(report.getOverrides().size() == 1);
  REQUIRE(report.getCounters().size() > 20);
  for (auto row : report.getCounters()) {
    INFO(row.getGroup().cStr() << "." << row.getName().cStr());
    CHECK(row.getRatio() == 1);
    CHECK(!row.getDiffers());
    CHECK(!row.getVaries());
    for (auto cell : row.getCells()) {
      CHECK(cell.getPresent());
      CHECK(cell.getSamples().size() == 2);
    }
  }
  // Every step that takes modeled time has it on every run, the same on both sides and runs.
  REQUIRE(report.getSteps().size() > 10);
  for (auto row : report.getSteps()) {
    INFO(row.getName().cStr());
    CHECK(row.getRatio() == 1);
    for (auto cell : row.getCells()) {
      CHECK(cell.getSamples().size() == 2);
      CHECK(cell.getMedian() > 0);
      CHECK(cell.getMin() == cell.getMax());
    }
  }
}

TEST_CASE("compare --wall: wall time, three runs a side by default", "[experiment][compare]") {
  auto r = nestbed("compare --json --wall " + path("system/manifests/hw.toml") + " " +
                       path("system/manifests/hw.toml") + " " + path("system/scenarios/page_table.capnp"),
                   "2>/dev/null");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto decoded = decodeReport(r.out);
  auto report = decoded->report;
  CHECK(report.getRepeats() == 3);
  CHECK(report.getTimeBase() == "wall");
  REQUIRE(report.getSteps().size() > 10);
  for (auto row : report.getSteps()) {
    for (auto cell : row.getCells()) {
      CHECK(cell.getSamples().size() == 3);
      CHECK(cell.getMin() <= cell.getMedian());
      CHECK(cell.getMedian() <= cell.getMax());
    }
  }
}

TEST_CASE("compare: the text table, CSV and plot", "[experiment][compare]") {
  auto csv = tmp("compare.csv");
  auto svg = tmp("compare.svg");
  bool gnuplot = haveGnuplot();
  auto r = fixtureNestbed("compare --repeat 2 --csv " + csv + (gnuplot ? " --plot " + svg : std::string()) + " " +
                          path("tests/system/manifests/fixture.toml") + " " +
                          path("tests/system/manifests/fixture-start40.toml") + " " +
                          path("tests/system/scenarios/relay-repeat.capnp"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "nestbed compare: 2 runs of each, alternating A B"));
  CHECK(contains(r.out, "compare: 4/4 B run 2: ok"));   // progress lines: stderr is not a tty
  CHECK(contains(r.out, "relay-repeat.capnp:10 relay.addVia"));
  // The counters' totals differ by 35 (start 5 vs 40); nothing else does.
  CHECK(contains(r.out, "counter.total"));
  CHECK(contains(r.out, "1 of "));
  auto text = readFile(csv);
  CHECK(text.rfind("kind,group,name,line,A_median,A_min,A_max,B_median,B_min,B_max,ratio,differs,varies\n", 0) == 0);
  CHECK(contains(text, "counter,counter,total,0,333,333,333,368,368,368,"));
  if (gnuplot) {
    auto plot = readFile(svg);
    CHECK(plot.size() > 1000);
    CHECK(contains(plot, "<svg"));
    CHECK(contains(plot, "counters that differ"));
  }
}

TEST_CASE("compare: a scenario failing on one side exits 1 and names the side", "[experiment][compare]") {
  auto r = fixtureNestbed("compare --repeat 1 " + path("tests/system/manifests/fixture.toml") + " " +
                          path("tests/system/manifests/fixture-start40.toml") + " " +
                          path("tests/system/scenarios/all-pass.capnp"));
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(contains(r.out, "FAIL B: run 1: scenario "));
  CHECK(contains(r.out, "nestbed: B failed: run 1: scenario "));
  CHECK(!contains(r.out, "A failed"));
}

TEST_CASE("compare, sweep, run: --set on an unknown key is an error naming it", "[experiment]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto scenario = path("tests/system/scenarios/relay-repeat.capnp");
  auto expected = "--set: components.counter.strat: unknown key 'strat' for 'fixture/counter' (did you mean 'start'?)";

  auto compare = fixtureNestbed("compare --set components.counter.strat=1 " + manifest + " " + manifest + " " + scenario);
  INFO(compare.out);
  CHECK(compare.status == 1);   // an invalid manifest is 1 everywhere
  CHECK(contains(compare.out, expected));

  auto sweep = fixtureNestbed("sweep --set components.counter.strat=1 --param components.counter.start=1,2 " +
                              manifest + " " + scenario);
  INFO(sweep.out);
  CHECK(sweep.status == 1);
  CHECK(contains(sweep.out, expected));

  auto run = fixtureNestbed("run --set components.counter.strat=1 " + manifest + " " + scenario);
  CHECK(run.status == 1);
  CHECK(contains(run.out, expected));

  auto swept = fixtureNestbed("sweep --param components.counter.strat=1,2 " + manifest + " " + scenario);
  INFO(swept.out);
  CHECK(swept.status == 1);
  CHECK(contains(swept.out, "components.counter.strat: unknown key 'strat'"));
  CHECK(contains(swept.out, "(--param components.counter.strat=1)"));
}

TEST_CASE("compare and sweep: --help says what they do and their defaults", "[experiment]") {
  auto compare = fixtureNestbed("compare --help");
  CHECK(compare.status == 0);
  CHECK(contains(compare.out, "runs of each manifest, alternating A B (default 1; 3 with --wall)"));
  CHECK(contains(compare.out, "--plot=<file.svg>"));
  auto sweep = fixtureNestbed("sweep --help");
  CHECK(sweep.status == 0);
  CHECK(contains(sweep.out, "rounds over every value (default 1)"));
  CHECK(contains(sweep.out, "--series=<key>=<v1>,<v2>,..."));
}

TEST_CASE("compare and sweep: a wrong command line exits 2, invalid input 1, before anything runs",
          "[experiment]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto scenario = path("tests/system/scenarios/relay-repeat.capnp");
  CHECK(fixtureNestbed("compare " + manifest + " " + manifest).status == 2);             // no scenario
  CHECK(fixtureNestbed("compare --repeat 0 " + manifest + " " + manifest + " " + scenario).status == 2);
  auto missing = fixtureNestbed("compare " + manifest + " /nonexistent.toml " + scenario);
  CHECK(missing.status == 1);
  CHECK(contains(missing.out, "/nonexistent.toml: manifest: cannot read file"));
  auto syntax = fixtureNestbed("compare " + manifest + " " + manifest + " " +
                               path("tests/system/scenarios/bad-syntax.capnp"));
  CHECK(syntax.status == 1);
  CHECK(contains(syntax.out, "bad-syntax.capnp:7:"));
  CHECK(!contains(syntax.out, "run 1"));   // nothing ran
  auto unwritable = fixtureNestbed("compare --csv /nonexistent/dir/x.csv " + manifest + " " + manifest + " " + scenario);
  CHECK(unwritable.status == 2);
  CHECK(contains(unwritable.out, "cannot write /nonexistent/dir/x.csv"));
  CHECK(fixtureNestbed("sweep " + manifest + " " + scenario).status == 2);                      // no --param
  CHECK(fixtureNestbed("sweep --param components.counter.start= " + manifest + " " + scenario).status == 2);
  auto badValue = fixtureNestbed("sweep --param components.counter.start=1,ten " + manifest + " " + scenario);
  INFO(badValue.out);
  CHECK(badValue.status == 1);
  CHECK(contains(badValue.out, "components.counter.start: must be an integer"));
  CHECK(contains(badValue.out, "(--param components.counter.start=ten)"));
}

// ======================================================================================
// sweep

TEST_CASE("sweep: one run per value, a table, JSON, CSV and a plot", "[experiment][sweep]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto scenario = path("tests/system/scenarios/relay-repeat.capnp");
  auto svg = tmp("sweep.svg");
  auto csv = tmp("sweep.csv");
  bool gnuplot = haveGnuplot();
  auto plot = gnuplot ? " --plot " + svg + " --figure counter.total --figure '*:10 *'" : std::string();

  auto redirect = "2>" + tmp("sweep.err");
  auto r = fixtureNestbed("sweep --json --csv " + csv + plot + " --param components.counter.start=1,10,100 " +
                              manifest + " " + scenario,
                          redirect.c_str());
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto progress = readFile(tmp("sweep.err"));
  INFO(progress);
  CHECK(contains(progress, "sweep: 1/3 components.counter.start=1: ok"));
  CHECK(contains(progress, "sweep: 3/3 components.counter.start=100: ok"));

  auto decoded = decodeReport(r.out);
  auto report = decoded->report;
  CHECK(report.getKind() == nb::rpc::ExperimentReport::Kind::SWEEP);
  CHECK(report.getParam() == "components.counter.start");
  REQUIRE(report.getVariants().size() == 3);
  CHECK(report.getVariants()[2].getLabel() == "100");
  bool sawTotal = false;
  for (auto row : report.getCounters()) {
    for (auto cell : row.getCells()) CHECK(cell.getSamples().size() == 1);   // one run per value
    if (row.getGroup() == "counter" && row.getName() == "total") {
      sawTotal = true;
      CHECK(row.getDiffers());
      // 25 adds of 1..25 through the relay (325) and 3 of 1, over the start.
      CHECK(row.getCells()[0].getMedian() == 329);
      CHECK(row.getCells()[2].getMedian() == 428);
    } else if (row.getName() == "adds" || row.getName() == "relayed") {
      CHECK(!row.getDiffers());
    }
  }
  CHECK(sawTotal);
  CHECK(contains(readFile(csv), "1_median,1_min,1_max,10_median"));
  if (gnuplot) {
    auto text = readFile(svg);
    CHECK(text.size() > 1000);
    CHECK(contains(text, "<svg"));
    CHECK(contains(text, "counter.total"));
    CHECK(contains(text, "relay-repeat.capnp:10 relay.addVia"));
  }
}

TEST_CASE("sweep: --series runs every value once per series value, a line each", "[experiment][sweep]") {
  auto svg = tmp("series.svg");
  bool gnuplot = haveGnuplot();
  auto r = fixtureNestbed("sweep --json --series components.relay.placement=inline,process "
                          "--param components.counter.start=1,2" +
                              (gnuplot ? " --figure counter.total --plot " + svg : std::string()) + " " +
                              path("tests/system/manifests/fixture.toml") + " " +
                              path("tests/system/scenarios/relay-repeat.capnp"),
                          "2>/dev/null");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto decoded = decodeReport(r.out);
  auto report = decoded->report;
  CHECK(report.getSeries() == "components.relay.placement");
  auto variants = report.getVariants();
  REQUIRE(variants.size() == 4);
  // Each value's series side by side.
  CHECK(variants[0].getLabel() == "inline/1");
  CHECK(variants[1].getLabel() == "process/1");
  CHECK(variants[1].getValue() == "1");
  CHECK(variants[1].getSeriesValue() == "process");
  CHECK(variants[3].getLabel() == "process/2");
  for (auto row : report.getCounters()) {
    if (row.getGroup() == "counter" && row.getName() == "total") {
      auto cells = row.getCells();
      CHECK(cells[0].getMedian() == cells[1].getMedian());   // placement changes no counter
      CHECK(cells[2].getMedian() == cells[0].getMedian() + 1);
    }
  }
  if (gnuplot) {
    auto text = readFile(svg);
    CHECK(contains(text, "counter.total [inline]"));
    CHECK(contains(text, "counter.total [process]"));
  }
}

TEST_CASE("sweep: a hardware setting addressed by its array index", "[experiment][sweep]") {
  auto r = nestbed("sweep --json --param hw.smmuv3.0.iotlb_entries=16,64 " + path("system/manifests/hw.toml") +
                       " " + path("system/scenarios/smmuv3.capnp"),
                   "2>/dev/null");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto decoded = decodeReport(r.out);
  bool found = false;
  for (auto row : decoded->report.getCounters()) {
    if (row.getGroup() == "smmu0" && row.getName() == "iotlb_capacity") {
      found = true;
      CHECK(row.getCells()[0].getMedian() == 16);
      CHECK(row.getCells()[1].getMedian() == 64);
    }
  }
  CHECK(found);
}

}  // namespace
