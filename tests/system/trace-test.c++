// nestbed --trace end to end: the trace file of run, compare and sweep parses as JSON (through
// Cap'n Proto's JSON codec) and holds one event per RPC the run made — checked against the
// components' own counters — and the SMMU commands the run consumed, inline and
// process-placed.

#include "interfaces/report.capnp.h"
#include "tests/system/process-testing.h"

#include <algorithm>
#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <kj/map.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <string>
#include <tuple>

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

// ---- trace files: parsed with Cap'n Proto's JSON codec

struct TraceEvent {
  std::string name, cat, ph, caller, callee, processName;
  double ts = 0, dur = 0;
  int64_t pid = -1, tid = -1, count = 0;
};

struct Trace {
  std::vector<TraceEvent> events;
  std::map<int64_t, std::string> processNames;
  // RPC events by (caller, callee, Interface.method).
  std::map<std::tuple<std::string, std::string, std::string>, int> rpcs() const {
    std::map<std::tuple<std::string, std::string, std::string>, int> out;
    for (auto& e : events) {
      if (e.cat == "rpc") out[{e.caller, e.callee, e.name}]++;
    }
    return out;
  }
};

Trace parseTrace(const std::string& file) {
  auto text = readFile(file);
  REQUIRE(!text.empty());
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto value = message.initRoot<capnp::JsonValue>();
  codec.decodeRaw(kj::StringPtr(text.c_str()), value);   // throws if it is not JSON
  REQUIRE(value.isObject());
  Trace trace;
  bool found = false;
  for (auto field : value.getObject()) {
    if (field.getName() != "traceEvents") continue;
    found = true;
    REQUIRE(field.getValue().isArray());
    for (auto item : field.getValue().getArray()) {
      REQUIRE(item.isObject());
      TraceEvent e;
      for (auto f : item.getObject()) {
        auto name = std::string(f.getName().cStr());
        auto v = f.getValue();
        if (v.isString()) {
          if (name == "name") e.name = v.getString().cStr();
          if (name == "cat") e.cat = v.getString().cStr();
          if (name == "ph") e.ph = v.getString().cStr();
        } else if (v.isNumber()) {
          if (name == "ts") e.ts = v.getNumber();
          if (name == "dur") e.dur = v.getNumber();
          if (name == "pid") e.pid = int64_t(v.getNumber());
          if (name == "tid") e.tid = int64_t(v.getNumber());
        } else if (v.isObject() && name == "args") {
          for (auto a : v.getObject()) {
            auto an = std::string(a.getName().cStr());
            if (a.getValue().isString()) {
              if (an == "caller") e.caller = a.getValue().getString().cStr();
              if (an == "callee") e.callee = a.getValue().getString().cStr();
              if (an == "name") e.processName = a.getValue().getString().cStr();
            } else if (a.getValue().isNumber() && an == "count") {
              e.count = int64_t(a.getValue().getNumber());
            }
          }
        }
      }
      if (e.ph == "M" && e.name == "process_name") trace.processNames[e.pid] = e.processName;
      trace.events.push_back(e);
    }
  }
  REQUIRE(found);
  return trace;
}

// Counters of a `run --json` report: (instance, counter) -> value.
std::map<std::pair<std::string, std::string>, uint64_t> runCounters(const std::string& out) {
  auto start = out.find('{');
  REQUIRE(start != std::string::npos);
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<nb::rpc::RunReport>();
  codec.decode(kj::StringPtr(out.c_str() + start), report);
  std::map<std::pair<std::string, std::string>, uint64_t> counters;
  for (auto c : report.getComponents()) {
    for (auto k : c.getCounters()) counters[{c.getName().cStr(), k.getName().cStr()}] = k.getValue();
  }
  return counters;
}

// ======================================================================================
// --trace

TEST_CASE("trace: one RPC event per RPC, inline and process-placed", "[experiment][trace]") {
  auto placement = GENERATE(as<std::string>(), "", "--set components.relay.placement=process",
                            "--set components.counter.placement=inline");
  DYNAMIC_SECTION("placement: " << (placement.empty() ? "as in the manifest" : placement)) {
    auto file = tmp("relay-trace.json");
    auto r = fixtureNestbed("run --json --trace " + file + " " + placement + " " +
                                path("tests/system/manifests/fixture.toml") + " " +
                                path("tests/system/scenarios/relay-repeat.capnp"),
                            "2>/dev/null");
    INFO(r.out);
    REQUIRE(r.status == 0);
    auto counters = runCounters(r.out);
    auto trace = parseTrace(file);
    auto rpcs = trace.rpcs();
    auto relayed = counters[{"relay", "relayed"}];
    auto adds = counters[{"counter", "adds"}];
    REQUIRE(relayed == 25);
    CHECK(rpcs[{"scenario", "relay", "Relay.addVia"}] == relayed);
    CHECK(rpcs[{"relay", "counter", "Counter.add"}] == relayed);
    // Every add the counter served is an event, whoever made it.
    int addEvents = 0;
    for (auto& [key, n] : rpcs) {
      if (std::get<1>(key) == "counter" && std::get<2>(key) == "Counter.add") addEvents += n;
    }
    CHECK(uint64_t(addEvents) == adds);
    // Nothing else but the counter's frames going back to hw/mem at shutdown, at most.
    int total = 0;
    for (auto& [key, n] : rpcs) total += n;
    CHECK(total <= int(relayed + adds) + 1);
    for (auto& e : trace.events) {
      if (e.cat != "rpc") continue;
      CHECK(e.ph == "X");
      CHECK(e.dur >= 0);
      CHECK(e.tid > 0);
      CHECK(contains(trace.processNames[e.pid], e.callee));   // on the callee's timeline
    }
    bool named = false;
    for (auto& [pid, name] : trace.processNames) named = named || contains(name, "relay (fixture/relay, ");
    CHECK(named);
  }
}

// The report without timings (as tests/system/shipped-test compares placements).
std::string timeless(const std::string& json) {
  return std::regex_replace(json, std::regex("\"micros\": [0-9.e+-]+"), "\"micros\": 0");
}

TEST_CASE("trace: tracing the whole default stack changes nothing it reports", "[experiment][trace]") {
  // Groups hand domains back to the allocator that made them, which recognises its own objects:
  // the membranes must unwrap them, also through promises.
  auto placement = GENERATE(as<std::string>(), "",
                            "--set components.page_table.placement=process --set components.smmu_queue.placement=process "
                            "--set components.domains.placement=process --set components.groups.placement=process "
                            "--set hw.smmu0.placement=process");
  DYNAMIC_SECTION("placement: " << (placement.empty() ? "inline" : "process")) {
    auto args = placement + " " + path("system/manifests/default.toml") + " " + path("system/scenarios/default.capnp");
    auto plain = nestbed("run --json " + args, "2>/dev/null");
    INFO(plain.out);
    REQUIRE(plain.status == 0);
    auto file = tmp("default-trace.json");
    auto traced = nestbed("run --json --trace " + file + " " + args, "2>/dev/null");
    INFO(traced.out);
    REQUIRE(traced.status == 0);
    CHECK(timeless(traced.out) == timeless(plain.out));
    auto rpcs = parseTrace(file).rpcs();
    CHECK(rpcs[{"groups", "domains", "DomainAllocator.attachDevice"}] > 0);
    CHECK(rpcs[{"domains", "smmu_queue", "SmmuQueue.invalidate"}] > 0);
    CHECK(rpcs[{"smmu_queue", "smmu0", "Mmio.batch"}] > 0);
  }
}

TEST_CASE("trace: a modeled-time timeline whose steps last the report's modeled times",
          "[experiment][trace][modeled]") {
  auto args = path("system/manifests/default.toml") + " " + path("system/scenarios/default.capnp");
  auto file = tmp("modeled-trace.json");
  auto traced = nestbed("run --json --trace " + file + " " + args, "2>/dev/null");
  REQUIRE(traced.status == 0);
  auto start = traced.out.find('{');
  REQUIRE(start != std::string::npos);
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<nb::rpc::RunReport>();
  codec.decode(kj::StringPtr(traced.out.c_str() + start), report);
  auto steps = report.getScenarios()[0].getSteps();

  auto trace = parseTrace(file);
  int64_t modeledPid = -1;
  for (auto& [pid, name] : trace.processNames) {
    if (name.find("(modeled time)") != std::string::npos) modeledPid = pid;
  }
  REQUIRE(modeledPid >= 0);
  std::vector<double> durations;   // modeled microseconds, in start order
  int calls = 0;
  for (auto& e : trace.events) {
    if (e.pid != modeledPid || e.ph != "X") continue;
    if (e.cat == "step") durations.push_back(e.dur);
    if (e.cat == "modeled") calls++;
  }
  CHECK(calls > 20);   // the RPCs, on modeled time too
  REQUIRE(durations.size() == steps.size());
  std::vector<double> expected;
  for (auto s : steps) expected.push_back(double(s.getModeledNs()) / 1000);
  std::sort(durations.begin(), durations.end());
  std::sort(expected.begin(), expected.end());
  for (size_t i = 0; i < expected.size(); i++) CHECK(durations[i] == Approx(expected[i]).margin(0.0005));
}

TEST_CASE("trace: SMMU commands consumed, counted per step", "[experiment][trace]") {
  auto placement = GENERATE(as<std::string>(), "", "--set hw.smmu0.placement=process --set hw.ep0.placement=process");
  DYNAMIC_SECTION("placement: " << (placement.empty() ? "inline" : placement)) {
    auto file = tmp("smmu-trace.json");
    auto r = nestbed("run --json --trace " + file + " " + placement + " " + path("system/manifests/hw.toml") +
                         " " + path("tests/system/scenarios/smmu-commands.capnp"),
                     "2>/dev/null");
    INFO(r.out);
    REQUIRE(r.status == 0);
    auto counters = runCounters(r.out);
    REQUIRE(counters[{"smmu0", "cmdq_consumed"}] == 5);
    auto trace = parseTrace(file);
    std::map<std::string, int64_t> commands;
    int64_t total = 0;
    for (auto& e : trace.events) {
      if (e.cat == "smmu" && e.name.rfind("CMD_", 0) == 0) {
        CHECK(e.ph == "i");
        commands[e.name] += e.count;
        total += e.count;
      }
    }
    CHECK(total == 5);
    CHECK(commands["CMD_CFGI_STE_RANGE"] == 1);
    CHECK(commands["CMD_TLBI_NSNH_ALL"] == 2);
    CHECK(commands["CMD_SYNC"] == 2);
    // The MMIO writes that made the SMMU consume them are RPCs from the scenario.
    CHECK(trace.rpcs()[{"scenario", "smmu0", "Mmio.write"}] == 4);
  }
}

TEST_CASE("trace: compare and sweep put each run on its own timelines", "[experiment][trace]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto scenario = path("tests/system/scenarios/relay-repeat.capnp");
  auto file = tmp("compare-trace.json");
  auto compare = fixtureNestbed("compare --repeat 2 --trace " + file + " " + manifest + " " + manifest + " " + scenario);
  INFO(compare.out);
  REQUIRE(compare.status == 0);
  // 4 runs x (25 adds through the relay, 25 relayed, 3 direct, the counter's free at shutdown).
  CHECK(contains(compare.out, "nestbed: trace: 216 RPCs"));
  auto trace = parseTrace(file);
  std::map<std::string, int> runs;
  for (auto& [pid, name] : trace.processNames) {
    for (auto label : {"A#1 relay", "B#1 relay", "A#2 relay", "B#2 relay"}) {
      if (name.rfind(label, 0) == 0) runs[label]++;
    }
  }
  CHECK(runs.size() == 4);

  auto sweepFile = tmp("sweep-trace.json");
  auto sweep = fixtureNestbed("sweep --trace " + sweepFile + " --param components.counter.start=1,2 " + manifest + " " +
                              scenario);
  INFO(sweep.out);
  REQUIRE(sweep.status == 0);
  auto swept = parseTrace(sweepFile);
  bool first = false, second = false;
  for (auto& [pid, name] : swept.processNames) {
    first = first || name.rfind("start=1 counter", 0) == 0;
    second = second || name.rfind("start=2 counter", 0) == 0;
  }
  CHECK(first);
  CHECK(second);
}

}  // namespace
