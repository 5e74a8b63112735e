// The nestbed CLI. See cli.h.

#include "system/cli/cli.h"

#include "system/cli/decode.h"
#include "system/cli/serve.h"
#include "interfaces/report.capnp.h"
#include "system/composer/composer.h"
#include "system/experiment/commands.h"
#include "system/experiment/session.h"
#include "system/experiment/trace.h"
#include "system/generate/scale.h"
#include "system/script/runner.h"
#include "system/version.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nb {

kj::String findHostBinary(kj::StringPtr name) {
  if (const char* env = getenv("NESTBED_HOST")) return kj::str(env);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  KJ_REQUIRE(n > 0, "cannot find this executable's path");
  self[n] = '\0';
  kj::StringPtr path(self);
  KJ_IF_MAYBE(slash, path.findLast('/')) { return kj::str(path.slice(0, *slash + 1), name); }
  return kj::heapString(name);
}

namespace {

// The exit-status contract (system/experiment/commands.h): 0 success; 1 a failed run or an
// invalid manifest, scenario, parameter, instance or method; 2 a wrong command line.
constexpr int EXIT_FAILED = 1;
constexpr int EXIT_INVALID = 1;
constexpr int EXIT_USAGE = 2;

// MainBuilder reports usage errors through exitError(): those exit 2. Run-time failures go
// through fail(), which exits 1.
class CliContext final : public kj::ProcessContext {
public:
  explicit CliContext(const char* program) : program_(program) {}
  kj::StringPtr getProgramName() override { return program_; }
  KJ_NORETURN(void exit() override) { finish(failed_ ? EXIT_FAILED : 0); }
  void warning(kj::StringPtr message) override { print(message); }
  void error(kj::StringPtr message) override { print(message); failed_ = true; }
  KJ_NORETURN(void exitError(kj::StringPtr message) override) { print(message); finish(EXIT_USAGE); }
  KJ_NORETURN(void exitInfo(kj::StringPtr message) override) {
    fputs(message.cStr(), stdout);
    if (!message.endsWith("\n")) fputc('\n', stdout);
    finish(0);
  }
  void increaseLoggingVerbosity() override { kj::_::Debug::setLogLevel(kj::LogSeverity::INFO); }
  KJ_NORETURN(void finish(int code)) {
    fflush(stdout);
    fflush(stderr);
    _exit(code);
  }

private:
  void print(kj::StringPtr message) {
    fputs(message.cStr(), stderr);
    if (!message.endsWith("\n")) fputc('\n', stderr);
  }
  kj::StringPtr program_;
  bool failed_ = false;
};

// A path the user typed, input or output. Under `bazel run` the working directory is the
// runfiles tree and BUILD_WORKING_DIRECTORY is where the command was typed: relative paths are
// relative to it, whether or not the file exists yet.
kj::String resolvePath(kj::StringPtr path) {
  if (path.startsWith("/")) return kj::heapString(path);
  if (const char* wd = getenv("BUILD_WORKING_DIRECTORY")) {
    if (*wd != '\0') return kj::str(wd, "/", path);
  }
  return kj::heapString(path);
}

// An exception as a user reads it: its description, without the "remote exception: " prefix
// of another process's, nor the "expected ...;" of a failed internal check.
kj::String describeText(kj::StringPtr d) {
  if (d.startsWith("remote exception: ")) d = d.slice(strlen("remote exception: "));
  if (d.startsWith("expected ")) {
    KJ_IF_MAYBE(semi, d.findFirst(';')) { d = d.slice(*semi + 1); }
    while (d.startsWith(" ")) d = d.slice(1);
  }
  return kj::heapString(d);
}
kj::String describeException(const kj::Exception& e) { return describeText(e.getDescription()); }

constexpr kj::StringPtr DEFAULT_MANIFEST = "system/manifests/default.toml"_kj;
constexpr kj::StringPtr DEFAULT_SCENARIO = "system/scenarios/default.capnp"_kj;

// A shipped file nestbed uses when none is named: from the working directory when it is the
// workspace or the runfiles tree (as under `bazel run`), else from the runfiles tree beside the
// executable.
kj::String shippedFile(kj::StringPtr rel) {
  if (access(rel.cStr(), R_OK) == 0) return kj::heapString(rel);
  return kj::str(ScenarioLoader::defaultRoot(), "/", rel);
}

class Cli {
public:
  Cli(CliContext& context, CliConfig config) : context_(context), config_(config) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context_, version_,
                           "A laboratory for IOMMU virtualization designs: composes the Arm "
                           "SMMUv3 stack from a TOML manifest and runs experiments on it.")
        .addSubCommand("check", KJ_BIND_METHOD(*this, checkMain), "validate a manifest and print its plan")
        .addSubCommand("graph", KJ_BIND_METHOD(*this, graphMain), "print a manifest's topology as graphviz DOT")
        .addSubCommand("run", KJ_BIND_METHOD(*this, runMain), "compose a manifest, run scenarios, report")
        .addSubCommand("compare", KJ_BIND_METHOD(*this, compareMain),
                       "run a scenario on two manifests, alternating, and compare every stat and step time")
        .addSubCommand("sweep", KJ_BIND_METHOD(*this, sweepMain),
                       "run a scenario once per value of one manifest key; table and plot")
        .addSubCommand("merge", KJ_BIND_METHOD(*this, mergeMain),
                       "the table, CSV and plot of a compare or sweep from its points' records (--point)")
        .addSubCommand("generate", KJ_BIND_METHOD(*this, generateMain),
                       "write the manifest and scenario of N VMs with M passed-through devices on K SMMUs")
        .addSubCommand("call", KJ_BIND_METHOD(*this, callMain), "compose a manifest and make one method call")
        .addSubCommand("serve", KJ_BIND_METHOD(*this, serveMain), "compose and serve the root capability on a unix socket")
        .addSubCommand("decode", KJ_BIND_METHOD(*this, decodeMain),
                       "decode an SMMUv3 command, STE or CD, or walk a table, from words or a --dump-memory image")
        .build();
  }

private:
  // ---- shared options

  kj::MainBuilder& addSetOption(kj::MainBuilder& b) {
    return b.addOptionWithArg({"set"}, KJ_BIND_METHOD(*this, addOverride), "<key>=<value>",
                              "override one manifest value, e.g. "
                              "components.page_table.partial_unmap=split (repeatable)");
  }
  kj::MainBuilder::Validity addOverride(kj::StringPtr text) {
    KJ_IF_MAYBE(o, parseOverride(text)) {
      overrides_.add(kj::mv(*o));
      return true;
    }
    return "expected --set <key>=<value>";
  }
  kj::MainBuilder::Validity setManifest(kj::StringPtr path) {
    manifest_ = resolvePath(path);
    return true;
  }

  kj::Maybe<Plan> load() {
    auto path = manifest_ == nullptr ? shippedFile(DEFAULT_MANIFEST) : kj::heapString(manifest_);
    auto result = loadManifest(path, config_.registry, overrides_);
    KJ_SWITCH_ONEOF(result) {
      KJ_CASE_ONEOF(plan, Plan) { return kj::mv(plan); }
      KJ_CASE_ONEOF(errors, kj::Array<ManifestError>) {
        for (auto& e : errors) context_.error(kj::str(e));
        context_.error(kj::str(errors.size(), errors.size() == 1 ? " error" : " errors", " in ", path));
        return nullptr;
      }
    }
    KJ_UNREACHABLE;
  }

  KJ_NORETURN(void fail(kj::StringPtr message)) {
    context_.error(message);
    context_.finish(EXIT_FAILED);
  }

  // ---- check

  kj::MainFunc checkMain() {
    kj::MainBuilder b(context_, "nestbed check",
                      "Validates MANIFEST and prints the start plan. Besides the manifest's own "
                      "checks it starts every instance once, inline and in anonymous memory "
                      "(nothing is written, no process is started), and shuts them down: what "
                      "only a start finds (a feature combination, memslots that do not fit, a "
                      "device that is not there) is an error here too, named by file:line.");
    return addSetOption(b)
        .expectArg("<manifest>", KJ_BIND_METHOD(*this, setManifest))
        .callAfterParsing(KJ_BIND_METHOD(*this, check))
        .build();
  }
  kj::MainBuilder::Validity check() {
    KJ_IF_MAYBE(plan, load()) {
      auto text = formatPlan(*plan);
      KJ_IF_MAYBE(error, trialStart(kj::mv(*plan))) {
        context_.error(kj::str("nestbed check: ", *error));
        context_.finish(EXIT_FAILED);
      }
      fputs(text.cStr(), stdout);
      context_.finish(0);
    }
    context_.finish(EXIT_FAILED);
  }

  // Starts `plan` as `run` would, but every instance inline, without restarts, and memory
  // anonymous, then shuts it down: the start's own validation with no side effects. Why it
  // would not start (file:line of the instance and what it said), or null.
  kj::Maybe<kj::String> trialStart(Plan plan) {
    plan.memory.file = nullptr;
    for (auto& inst : plan.instances) {
      inst.placement = Placement::INLINE;
      inst.restart = Restart::NEVER;
    }
    kj::UnixEventPort::captureChildExit();
    auto io = kj::setupAsyncIo();
    Composer composer(io, config_.registry, kj::mv(plan),
                      ComposerOptions{kj::str("(no process in a trial start)"),
                                      [](kj::StringPtr) {}});
    kj::Maybe<kj::String> error;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
      error = describeException(*e);
    }
    composer.shutdown().wait(io.waitScope);
    return error;
  }

  // ---- graph

  kj::MainFunc graphMain() {
    kj::MainBuilder b(context_, "nestbed graph",
                      "Prints MANIFEST's components, placements and wiring as graphviz DOT "
                      "(try: nestbed graph M | dot -Tsvg > topology.svg).");
    return addSetOption(b)
        .expectArg("<manifest>", KJ_BIND_METHOD(*this, setManifest))
        .callAfterParsing(KJ_BIND_METHOD(*this, graph))
        .build();
  }
  kj::MainBuilder::Validity graph() {
    KJ_IF_MAYBE(plan, load()) {
      fputs(planToDot(*plan).cStr(), stdout);
      context_.finish(0);
    }
    context_.finish(EXIT_FAILED);
  }

  // ---- run

  kj::MainFunc runMain() {
    kj::MainBuilder b(context_, "nestbed run",
                      "Composes MANIFEST (default: system/manifests/default.toml), runs the "
                      "scenarios, and reports every component's stats.");
    addSetOption(b);
    addDefineOption(b);
    return addTraceOption(b)
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "print the report as JSON")
        .addOptionWithArg({"dump-memory"}, KJ_BIND_METHOD(*this, setDump), "<file>",
                          "write physical memory to <file> at exit, and <file>.json describing it")
        .addOptionWithArg({"junit"}, KJ_BIND_METHOD(*this, setJunit), "<file.xml>",
                          "also write the report as JUnit XML: one test case per step (what "
                          "nestbed_scenario_test gives Bazel)")
        .expectOptionalArg("<manifest>", KJ_BIND_METHOD(*this, setManifest))
        .expectZeroOrMoreArgs("<scenario>", KJ_BIND_METHOD(*this, addScenario))
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }
  kj::MainBuilder::Validity addScenario(kj::StringPtr path) {
    scenarios_.add(resolvePath(path));
    return true;
  }
  kj::MainBuilder::Validity setJson() { json_ = true; return true; }
  kj::MainBuilder::Validity setDump(kj::StringPtr path) { dump_ = resolvePath(path); return true; }
  kj::MainBuilder::Validity setJunit(kj::StringPtr path) { junit_ = resolvePath(path); return true; }

  kj::MainBuilder::Validity run() {
    // With no arguments at all, the default tour.
    if (manifest_ == nullptr && scenarios_.empty()) scenarios_.add(shippedFile(DEFAULT_SCENARIO));
    KJ_IF_MAYBE(plan, load()) {
      // Scenario files are parsed before anything starts; their errors are file errors (exit 2).
      ScenarioLoader loader(ScenarioLoader::defaultRoot());
      kj::Vector<LoadedScenario> loaded;
      bool fileErrors = false;
      for (auto& path : scenarios_) {
        auto result = loader.load(path, defines_);
        KJ_SWITCH_ONEOF(result) {
          KJ_CASE_ONEOF(s, LoadedScenario) { loaded.add(kj::mv(s)); }
          KJ_CASE_ONEOF(errors, kj::Array<ScenarioError>) {
            for (auto& e : errors) context_.warning(kj::str(e));
            fileErrors = true;
          }
        }
      }
      if (fileErrors) context_.finish(EXIT_INVALID);
      auto unused = unusedParams(loaded, defines_);
      for (auto& e : unused) context_.warning(kj::str("nestbed: ", e));
      if (unused.size() > 0) context_.finish(EXIT_INVALID);

      kj::UnixEventPort::captureChildExit();
      auto io = kj::setupAsyncIo();
      kj::Maybe<kj::Own<experiment::Tracer>> tracer;
      if (trace_ != nullptr) tracer = kj::heap<experiment::Tracer>(config_.registry);
      auto host = findHostBinary(config_.hostBinaryName);
      experiment::RunOptions options{config_.registry, host, [](kj::StringPtr e) {
                                       fprintf(stderr, "nestbed: %s\n", e.cStr());
                                     }};
      options.overrides = overrides_;
      options.params = defines_;
      KJ_IF_MAYBE(t, tracer) { options.tracer = **t; }
      KJ_IF_MAYBE(path, dump_) {
        options.beforeShutdown = [this, path = kj::heapString(*path)](Composer& composer, kj::WaitScope& ws) {
          dumpMemory(composer, path, ws);
        };
      }
      auto result = experiment::runOnce(io, kj::mv(*plan), loaded, options);
      switch (result.outcome) {
        case experiment::RunResult::Outcome::START_FAILED:
          KJ_IF_MAYBE(t, tracer) { writeTrace(**t); }   // the calls up to the failure
          fail(kj::str("nestbed: ", describeText(result.error)));
        case experiment::RunResult::Outcome::CHECK_FAILED:
          for (auto& e : result.checkErrors) context_.warning(kj::str(e));
          context_.finish(EXIT_INVALID);
        case experiment::RunResult::Outcome::RAN:
          break;
      }
      KJ_IF_MAYBE(t, tracer) { writeTrace(**t); }
      printReport(result.report.asReader());
      KJ_IF_MAYBE(path, junit_) {
        FILE* f = fopen(path->cStr(), "w");
        auto xml = junitXml(result.report.asReader());
        if (f == nullptr || fwrite(xml.begin(), 1, xml.size(), f) != xml.size() || fclose(f) != 0) {
          fail(kj::str("nestbed: cannot write ", *path, ": ", strerror(errno)));
        }
      }
      context_.finish(result.ok() ? 0 : EXIT_FAILED);
    }
    context_.finish(EXIT_FAILED);
  }

  void writeTrace(experiment::Tracer& tracer) {
    auto& path = KJ_ASSERT_NONNULL(trace_);
    KJ_IF_MAYBE(error, tracer.write(path)) { fail(kj::str("nestbed: ", *error)); }
    fprintf(stderr, "nestbed: trace: %llu RPCs, %llu SMMU commands -> %s\n",
            (unsigned long long)tracer.rpcEvents(), (unsigned long long)tracer.smmuCommands(), path.cStr());
  }

  void printReport(rpc::RunReport::Reader report) {
    if (json_) {
      capnp::JsonCodec codec;
      codec.setPrettyPrint(true);
      puts(codec.encode(report).cStr());
      return;
    }
    // Provenance first: what produced this report.
    auto provenance = report.getProvenance();
    printf("%s\n", provenance.getVersion().cStr());
    for (auto m : provenance.getManifests()) {
      printf("manifest %s", m.getFile().cStr());
      for (auto o : m.getOverrides()) printf(" --set %s", o.cStr());
      printf("\n");
    }
    for (auto p : provenance.getParams()) printf("scenario parameter %s\n", p.cStr());
    if (provenance.getTiming().size() > 0) printf("timing profile %s\n", provenance.getTiming().cStr());
    printf("\n");
    for (auto s : report.getScenarios()) fputs(formatScenarioReport(s).cStr(), stdout);
    printf("\nmanifest %s\n", report.getManifest().cStr());
    for (auto c : report.getComponents()) {
      printf("\n%s (%s)\n", c.getName().cStr(), c.getImpl().cStr());
      for (auto counter : c.getCounters()) {
        printf("  %-40s %llu\n", counter.getName().cStr(), (unsigned long long)counter.getValue());
      }
    }
    // Last, where it is seen: a component that died unasked fails the run.
    for (auto d : report.getDeaths()) printf("\nFAILED: %s\n", d.cStr());
  }

  static kj::String xmlEscaped(kj::StringPtr s) {
    kj::Vector<char> out;
    for (char c : s) {
      switch (c) {
        case '&': out.addAll(kj::StringPtr("&amp;")); break;
        case '<': out.addAll(kj::StringPtr("&lt;")); break;
        case '>': out.addAll(kj::StringPtr("&gt;")); break;
        case '"': out.addAll(kj::StringPtr("&quot;")); break;
        default:
          if (uint8_t(c) < 0x20 && c != '\n' && c != '\t') out.add(' '); else out.add(c);
      }
    }
    out.add('\0');
    return kj::String(out.releaseAsArray());
  }

  // JUnit XML as Bazel's test.xml reads it: a suite per scenario, a test case per step.
  static kj::String junitXml(rpc::RunReport::Reader report) {
    kj::Vector<kj::String> lines;
    lines.add(kj::str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    lines.add(kj::str("<testsuites>"));
    for (auto s : report.getScenarios()) {
      size_t failed = 0;
      double seconds = 0;
      for (auto step : s.getSteps()) {
        failed += !step.getOk();
        if (step.getDepth() == 0) seconds += step.getMicros() / 1e6;
      }
      lines.add(kj::str("  <testsuite name=\"", xmlEscaped(s.getFile()), "\" tests=\"", s.getSteps().size(),
                        "\" failures=\"", failed, "\" errors=\"0\" time=\"", seconds, "\">"));
      for (auto step : s.getSteps()) {
        auto name = kj::str("line ", step.getLine(), " ", step.getLabel());
        auto open = kj::str("    <testcase name=\"", xmlEscaped(name), "\" classname=\"", xmlEscaped(s.getFile()),
                            "\" time=\"", step.getMicros() / 1e6, "\"");
        if (step.getOk()) {
          lines.add(kj::str(open, "/>"));
          continue;
        }
        lines.add(kj::str(open, ">"));
        for (auto f : step.getFailures()) {
          auto message = kj::str(f.getWhat(), ": expected ", f.getExpected(), ", actual ", f.getActual());
          lines.add(kj::str("      <failure message=\"", xmlEscaped(message), "\">", xmlEscaped(message),
                            "</failure>"));
        }
        if (step.getFailures().size() == 0) {
          lines.add(kj::str("      <failure message=\"a step inside failed\"/>"));
        }
        lines.add(kj::str("    </testcase>"));
      }
      lines.add(kj::str("  </testsuite>"));
    }
    lines.add(kj::str("</testsuites>"));
    return kj::str(kj::strArray(lines, "\n"), "\n");
  }

  void dumpMemory(Composer& composer, kj::StringPtr path, kj::WaitScope& waitScope) {
    auto structures = composer.structures().wait(waitScope);
    auto& mem = composer.memory();
    FILE* f = fopen(path.cStr(), "wb");
    if (f == nullptr || fwrite(mem.bytes().begin(), 1, mem.size(), f) != mem.size() || fclose(f) != 0) {
      fail(kj::str("nestbed: cannot write memory image ", path, ": ", strerror(errno)));
    }
    capnp::MallocMessageBuilder message;
    auto dump = message.initRoot<rpc::MemoryDump>();
    KJ_IF_MAYBE(slash, path.findLast('/')) { dump.setImage(path.slice(*slash + 1)); } else { dump.setImage(path); }
    dump.setBase(mem.base());
    dump.setSize(mem.size());
    size_t total = 0;
    for (auto& s : structures) total += kj::get<1>(s).size();
    auto entries = dump.initStructures(total);
    size_t k = 0;
    for (auto& s : structures) {
      for (auto& info : kj::get<1>(s)) {
        entries[k].setInstance(kj::get<0>(s));
        auto st = entries[k].initStructure();
        st.setKind(info.kind);
        st.setName(info.name);
        st.setPa(info.pa);
        st.setSize(info.size);
        st.setDetail(info.detail);
        k++;
      }
    }
    capnp::JsonCodec codec;
    codec.setPrettyPrint(true);
    auto sidecar = kj::str(path, ".json");
    FILE* j = fopen(sidecar.cStr(), "w");
    if (j == nullptr) fail(kj::str("nestbed: cannot write ", sidecar, ": ", strerror(errno)));
    auto text = codec.encode(dump.asReader());
    fputs(text.cStr(), j);
    fputc('\n', j);
    fclose(j);
  }

  // ---- compare and sweep (system/experiment/commands.h)

  kj::MainBuilder& addDefineOption(kj::MainBuilder& b) {
    return b.addOptionWithArg({"define"}, KJ_BIND_METHOD(*this, addDefine), "<name>=<value>",
                              "a scenario parameter: ${name} in the scenarios' text (repeatable)");
  }
  kj::MainBuilder::Validity addDefine(kj::StringPtr text) {
    KJ_IF_MAYBE(eq, text.findFirst('=')) {
      if (*eq > 0) {
        defines_.add(ScenarioParam{kj::heapString(text.slice(0, *eq)), kj::heapString(text.slice(*eq + 1))});
        return true;
      }
    }
    return "expected --define <name>=<value>";
  }

  kj::MainBuilder& addTraceOption(kj::MainBuilder& b) {
    return b.addOptionWithArg({"trace"}, KJ_BIND_METHOD(*this, setTrace), "<file.json>",
                              "write a Chrome trace-event file (open it in Perfetto): every RPC between "
                              "components, every step, counter changes, SMMU commands and events");
  }
  kj::MainBuilder::Validity setTrace(kj::StringPtr path) { trace_ = resolvePath(path); return true; }

  // `repeatHelp` must outlive the builder: MainBuilder keeps the pointer.
  kj::MainBuilder& addExperimentOptions(kj::MainBuilder& b, kj::StringPtr repeatHelp) {
    addSetOption(b);
    addTraceOption(b);
    addDefineOption(b);
    return b
        .addOptionWithArg({"repeat"}, KJ_BIND_METHOD(*this, setRepeat), "<n>", repeatHelp)
        .addOption({"wall"}, KJ_BIND_METHOD(*this, setWall),
                   "steps in wall time (this machine; noisy, repeat it) instead of modeled time "
                   "(the modeled machine's, from the cost profile: the same on every run)")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "print the table as JSON (ExperimentReport)")
        .addOptionWithArg({"csv"}, KJ_BIND_METHOD(*this, setCsv), "<file>", "write the table as CSV")
        .addOptionWithArg({"plot"}, KJ_BIND_METHOD(*this, setPlot), "<file.svg>", "draw the figures with gnuplot")
        .addOptionWithArg({"point"}, KJ_BIND_METHOD(*this, setPoint), "<n>",
                          "run only the experiment's n-th run (0-based: every variant of round 1, "
                          "then of round 2, ...) and write its record to --out; `nestbed merge` "
                          "builds the table from every point's record (tools/study.bzl)")
        .addOptionWithArg({"out"}, KJ_BIND_METHOD(*this, setOut), "<file.json>",
                          "with --point: where the point's record goes (ExperimentPoint as JSON)");
  }
  kj::MainBuilder::Validity setPoint(kj::StringPtr text) {
    char* end = nullptr;
    auto n = strtoul(text.cStr(), &end, 10);
    if (text.size() == 0 || *end != '\0' || n > 1000000) return "--point takes a run's index, 0 or more";
    point_ = uint32_t(n);
    return true;
  }
  kj::MainBuilder::Validity setOut(kj::StringPtr path) { out_ = resolvePath(path); return true; }
  kj::MainBuilder::Validity setWall() { wall_ = true; return true; }
  kj::MainBuilder::Validity setRepeat(kj::StringPtr text) {
    char* end = nullptr;
    auto n = strtoul(text.cStr(), &end, 10);
    if (text.size() == 0 || *end != '\0' || n == 0 || n > 10000) return "--repeat takes a count from 1 to 10000";
    repeats_ = n;
    return true;
  }
  kj::MainBuilder::Validity setCsv(kj::StringPtr path) { csv_ = resolvePath(path); return true; }
  kj::MainBuilder::Validity setPlot(kj::StringPtr path) { plot_ = resolvePath(path); return true; }
  kj::MainBuilder::Validity setPlotScript(kj::StringPtr path) { plotScript_ = resolvePath(path); return true; }
  kj::MainBuilder::Validity addArg(kj::StringPtr path) { args_.add(resolvePath(path)); return true; }
  kj::MainBuilder::Validity setParam(kj::StringPtr text) {
    if (experiment::parseSweepParam(text) == nullptr) return "expected --param <key>=<value>,<value>,...";
    param_ = kj::heapString(text);
    return true;
  }
  kj::MainBuilder::Validity setSeries(kj::StringPtr text) {
    if (experiment::parseSweepParam(text) == nullptr) return "expected --series <key>=<value>,<value>,...";
    series_ = kj::heapString(text);
    return true;
  }
  kj::MainBuilder::Validity addFigure(kj::StringPtr pattern) { figures_.add(kj::heapString(pattern)); return true; }

  experiment::ExperimentOptions experimentOptions() {
    experiment::ExperimentOptions o{config_.registry, findHostBinary(config_.hostBinaryName)};
    for (auto& d : defines_) o.defines.add(ScenarioParam{kj::heapString(d.name), kj::heapString(d.value)});
    for (auto& v : overrides_) o.overrides.add(Override{kj::heapString(v.key), kj::heapString(v.value)});
    o.repeats = repeats_;
    o.wall = wall_;
    o.json = json_;
    o.csv = mapCopy(csv_);
    o.plot = mapCopy(plot_);
    o.plotScript = mapCopy(plotScript_);
    o.trace = mapCopy(trace_);
    for (auto& f : figures_) o.figures.add(kj::heapString(f));
    o.point = point_;
    o.out = mapCopy(out_);
    return o;
  }
  static kj::Maybe<kj::String> mapCopy(kj::Maybe<kj::String>& m) {
    KJ_IF_MAYBE(s, m) { return kj::heapString(*s); }
    return nullptr;
  }

  kj::MainFunc compareMain() {
    kj::MainBuilder b(context_, "nestbed compare",
                      "Runs SCENARIO on manifests A and B, alternating A B A B (--repeat times each), "
                      "and prints every step's time and every component counter side by side: the "
                      "median over runs, its min-max, and B/A. Counters are deterministic; one that "
                      "varies between runs of one side is flagged. Exit 0 if every run passes, 1 if "
                      "a scenario fails (the side is named), 2 for bad input.");
    return addExperimentOptions(b, "runs of each manifest, alternating A B (default 1; 3 with --wall)")
        .expectArg("<A.toml>", KJ_BIND_METHOD(*this, addArg))
        .expectArg("<B.toml>", KJ_BIND_METHOD(*this, addArg))
        .expectOneOrMoreArgs("<scenario>", KJ_BIND_METHOD(*this, addArg))
        .callAfterParsing(KJ_BIND_METHOD(*this, compare))
        .build();
  }
  kj::MainBuilder::Validity compare() {
    auto options = experimentOptions();
    auto status = experiment::compare(options, args_[0], args_[1], args_.slice(2, args_.size()));
    context_.finish(status);
  }

  kj::MainFunc sweepMain() {
    kj::MainBuilder b(context_, "nestbed sweep",
                      "Runs SCENARIO on MANIFEST once per value of one manifest key (--param, any key "
                      "--set accepts), and prints every step's time and every component counter per "
                      "value; --plot draws chosen figures against the value. Progress goes to stderr. "
                      "Exit 0 if every run passes, 1 if a scenario fails (the value is named), 2 for "
                      "bad input.");
    return addExperimentOptions(b, "rounds over every value (default 1)")
        .addOptionWithArg({"param"}, KJ_BIND_METHOD(*this, setParam), "<key>=<v1>,<v2>,...",
                          "the key to sweep and its values, e.g. hw.smmuv3.0.iotlb_entries=16,64,256 (required)")
        .addOptionWithArg({"series"}, KJ_BIND_METHOD(*this, setSeries), "<key>=<v1>,<v2>,...",
                          "a second key: every --param value runs once per series value, one line "
                          "each in the plot, e.g. components.smmu_queue.guest_path=native,sw_vcmdq")
        .addOptionWithArg({"figure"}, KJ_BIND_METHOD(*this, addFigure), "<pattern>",
                          "a row to plot, by name with * wildcards: 'smmu0.cmdq_consumed', "
                          "'smmu0.iotlb_*', '*.capnp:42 *' (repeatable; default: the slowest "
                          "top-level steps and the counters that differ)")
        .expectArg("<manifest>", KJ_BIND_METHOD(*this, addArg))
        .expectOneOrMoreArgs("<scenario>", KJ_BIND_METHOD(*this, addArg))
        .callAfterParsing(KJ_BIND_METHOD(*this, sweep))
        .build();
  }
  kj::MainBuilder::Validity sweep() {
    if (param_ == nullptr) return "--param <key>=<value>,<value>,... is required";
    auto options = experimentOptions();
    auto status = experiment::sweep(options, args_[0], args_.slice(1, args_.size()), param_,
                                    series_ == nullptr ? kj::StringPtr(nullptr) : kj::StringPtr(series_));
    context_.finish(status);
  }

  kj::MainFunc mergeMain() {
    kj::MainBuilder b(context_, "nestbed merge",
                      "Builds a compare's or sweep's table from its points' records (`compare` or "
                      "`sweep` with --point N --out FILE, one per run, e.g. one Bazel action each: "
                      "tools/study.bzl) and prints it, with --json, --csv and --plot as the command "
                      "would for the same runs. Exit 0 if every run passed, 1 if one failed or a "
                      "point is missing, repeated, unreadable or from another experiment, 2 for a "
                      "wrong command line.");
    return b.addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "print the table as JSON (ExperimentReport)")
        .addOptionWithArg({"csv"}, KJ_BIND_METHOD(*this, setCsv), "<file>", "write the table as CSV")
        .addOptionWithArg({"plot"}, KJ_BIND_METHOD(*this, setPlot), "<file.svg>", "draw the figures with gnuplot")
        .addOptionWithArg({"plot-script"}, KJ_BIND_METHOD(*this, setPlotScript), "<file.gp>",
                          "keep the gnuplot script --plot runs")
        .addOptionWithArg({"figure"}, KJ_BIND_METHOD(*this, addFigure), "<pattern>",
                          "sweep: a row to plot, as `sweep --figure` (repeatable)")
        .expectOneOrMoreArgs("<point.json>", KJ_BIND_METHOD(*this, addArg))
        .callAfterParsing(KJ_BIND_METHOD(*this, merge))
        .build();
  }
  kj::MainBuilder::Validity merge() {
    auto options = experimentOptions();
    context_.finish(experiment::merge(options, args_));
  }

  // ---- generate (system/generate/scale.h)

  kj::MainFunc generateMain() {
    kj::MainBuilder b(context_, "nestbed generate",
                      "Writes the manifest (and with --scenario, the scenario) of a system of "
                      "realistic size: VMs with passed-through devices behind vIOMMUs, spread over "
                      "SMMUs with two-level stream tables; the scenario attaches, maps, DMAs, "
                      "invalidates, unmaps and faults on every device (system/generate/scale.h). "
                      "The manifest goes to stdout unless --manifest names a file.");
    return b
        .addOptionWithArg({"vms"}, KJ_BIND_METHOD(*this, setGenVms), "<n>", "VMs (default 4, up to 1024)")
        .addOptionWithArg({"devices"}, KJ_BIND_METHOD(*this, setGenDevices), "<m>",
                          "passed-through devices per VM (default 2, up to 8)")
        .addOptionWithArg({"smmus"}, KJ_BIND_METHOD(*this, setGenSmmus), "<k>",
                          "SMMUs, VMs spread round-robin (default 2)")
        .addOptionWithArg({"placement"}, KJ_BIND_METHOD(*this, setGenPlacement), "<inline|process>",
                          "the OS-side components' placement (default inline; hardware stays inline)")
        .addOptionWithArg({"guest-path"}, KJ_BIND_METHOD(*this, setGenGuestPath), "<native|generic>",
                          "the vIOMMUs' guest invalidation path (default native)")
        .addOptionWithArg({"manifest"}, KJ_BIND_METHOD(*this, setGenManifest), "<file.toml>", "write the manifest here")
        .addOptionWithArg({"scenario"}, KJ_BIND_METHOD(*this, setGenScenario), "<file.capnp>", "write the scenario here")
        .callAfterParsing(KJ_BIND_METHOD(*this, generate))
        .build();
  }
  static kj::Maybe<uint32_t> count(kj::StringPtr text) {
    char* end = nullptr;
    auto n = strtoul(text.cStr(), &end, 10);
    if (text.size() == 0 || *end != '\0' || n > 1000000) return nullptr;
    return uint32_t(n);
  }
  kj::MainBuilder::Validity setGenVms(kj::StringPtr t) {
    KJ_IF_MAYBE(n, count(t)) { gen_.vms = *n; return true; }
    return "--vms takes a count";
  }
  kj::MainBuilder::Validity setGenDevices(kj::StringPtr t) {
    KJ_IF_MAYBE(n, count(t)) { gen_.devices = *n; return true; }
    return "--devices takes a count";
  }
  kj::MainBuilder::Validity setGenSmmus(kj::StringPtr t) {
    KJ_IF_MAYBE(n, count(t)) { gen_.smmus = *n; return true; }
    return "--smmus takes a count";
  }
  kj::MainBuilder::Validity setGenPlacement(kj::StringPtr t) { genPlacement_ = kj::heapString(t); return true; }
  kj::MainBuilder::Validity setGenGuestPath(kj::StringPtr t) { genGuestPath_ = kj::heapString(t); return true; }
  kj::MainBuilder::Validity setGenManifest(kj::StringPtr p) { genManifest_ = resolvePath(p); return true; }
  kj::MainBuilder::Validity setGenScenario(kj::StringPtr p) { genScenario_ = resolvePath(p); return true; }
  kj::MainBuilder::Validity generate() {
    gen_.placement = genPlacement_;
    gen_.guestPath = genGuestPath_;
    KJ_IF_MAYBE(problem, generate::checkScale(gen_)) { return kj::mv(*problem); }
    auto write = [&](kj::StringPtr path, kj::StringPtr text) {
      FILE* f = fopen(path.cStr(), "w");
      bool ok = f != nullptr && fwrite(text.begin(), 1, text.size(), f) == text.size();
      if (f != nullptr && fclose(f) != 0) ok = false;
      if (!ok) {
        fprintf(stderr, "nestbed: cannot write %s: %s\n", path.cStr(), strerror(errno));
        context_.finish(EXIT_USAGE);
      }
    };
    auto manifest = generate::scaleManifest(gen_);
    KJ_IF_MAYBE(path, genManifest_) {
      write(*path, manifest);
    } else {
      fputs(manifest.cStr(), stdout);
    }
    KJ_IF_MAYBE(path, genScenario_) { write(*path, generate::scaleScenario(gen_)); }
    context_.finish(0);
  }

  // ---- call

  kj::MainFunc callMain() {
    kj::MainBuilder b(context_, "nestbed call",
                      "Composes MANIFEST, calls METHOD of INSTANCE's main capability with ARGS "
                      "(a Cap'n Proto struct literal, e.g. '(n = 5)'), and prints the results as "
                      "Cap'n Proto text.");
    return addSetOption(b)
        .expectArg("<manifest>", KJ_BIND_METHOD(*this, setManifest))
        .expectArg("<instance>", KJ_BIND_METHOD(*this, setCallInstance))
        .expectArg("<method>", KJ_BIND_METHOD(*this, setCallMethod))
        .expectOptionalArg("<args>", KJ_BIND_METHOD(*this, setCallArgs))
        .callAfterParsing(KJ_BIND_METHOD(*this, callOnce))
        .build();
  }
  kj::MainBuilder::Validity setCallInstance(kj::StringPtr v) { callInstance_ = kj::heapString(v); return true; }
  kj::MainBuilder::Validity setCallMethod(kj::StringPtr v) { callMethod_ = kj::heapString(v); return true; }
  kj::MainBuilder::Validity setCallArgs(kj::StringPtr v) { callArgs_ = kj::heapString(v); return true; }

  kj::MainBuilder::Validity callOnce() {
    KJ_IF_MAYBE(plan, load()) {
      kj::UnixEventPort::captureChildExit();
      auto io = kj::setupAsyncIo();
      Composer composer(io, config_.registry, kj::mv(*plan),
                        ComposerOptions{findHostBinary(config_.hostBinaryName), [](kj::StringPtr e) {
                                          fprintf(stderr, "nestbed: %s\n", e.cStr());
                                        }});
      kj::Maybe<kj::String> result, usage;
      auto args = callArgs_ == nullptr ? kj::StringPtr("()") : kj::StringPtr(callArgs_);
      auto e = kj::runCatchingExceptions([&]() {
        composer.start().wait(io.waitScope);
        ScenarioRunner runner(io.waitScope, composer.root(), config_.registry);
        usage = runner.checkCall(callInstance_, callMethod_, args);
        if (usage == nullptr) result = runner.call(callInstance_, callMethod_, args);
      });
      composer.shutdown().wait(io.waitScope);
      KJ_IF_MAYBE(u, usage) {
        context_.warning(kj::str("nestbed call: ", *u));
        context_.finish(EXIT_INVALID);
      }
      KJ_IF_MAYBE(ex, e) { fail(kj::str("nestbed: ", describeException(*ex))); }
      puts(KJ_ASSERT_NONNULL(result).cStr());
      context_.finish(0);
    }
    context_.finish(EXIT_FAILED);
  }

  // ---- serve

  kj::MainFunc serveMain() {
    kj::MainBuilder b(context_, "nestbed serve",
                      "Composes MANIFEST and serves the composer's root capability "
                      "(interfaces/composer.capnp Root) on a unix socket until interrupted. The "
                      "socket is mode 0600 and only this user's connections are served; "
                      "--view-socket adds a read-only view (instances, info, stats, structures) "
                      "for any local user. An existing path is replaced only if it is a stale "
                      "socket.");
    return addSetOption(b)
        .addOptionWithArg({"socket"}, KJ_BIND_METHOD(*this, setSocket), "<path>", "unix socket path (required)")
        .addOptionWithArg({"view-socket"}, KJ_BIND_METHOD(*this, setViewSocket), "<path>",
                          "also serve a read-only view here, to any local user")
        .addOptionWithArg({"max-connections"}, KJ_BIND_METHOD(*this, setMaxConnections), "<n>",
                          "connections per socket (default 32); more are refused")
        .expectArg("<manifest>", KJ_BIND_METHOD(*this, setManifest))
        .callAfterParsing(KJ_BIND_METHOD(*this, serve))
        .build();
  }
  kj::MainBuilder::Validity setSocket(kj::StringPtr path) { socket_ = resolvePath(path); return true; }
  kj::MainBuilder::Validity setViewSocket(kj::StringPtr path) {
    viewSocket_ = resolvePath(path);
    return true;
  }
  kj::MainBuilder::Validity setMaxConnections(kj::StringPtr text) {
    char* end = nullptr;
    auto n = strtoul(text.cStr(), &end, 10);
    if (text.size() == 0 || *end != '\0' || n == 0 || n > 4096) {
      return "--max-connections takes a count from 1 to 4096";
    }
    maxConnections_ = uint32_t(n);
    return true;
  }

  kj::MainBuilder::Validity serve() {
    if (socket_ == nullptr) return "--socket <path> is required";
    // Refused before anything is composed: a file that is not a stale socket is never replaced.
    for (auto path : {kj::StringPtr(socket_), viewSocket_.map([](kj::String& s) -> kj::StringPtr {
                                                   return s;
                                                 }).orDefault(nullptr)}) {
      if (path == nullptr) continue;
      KJ_IF_MAYBE(why, prepareSocketPath(path)) {
        fprintf(stderr, "nestbed serve: %s\n", why->cStr());
        context_.finish(EXIT_USAGE);
      }
    }
    KJ_IF_MAYBE(plan, load()) {
      kj::UnixEventPort::captureChildExit();
      auto io = kj::setupAsyncIo();
      Composer composer(io, config_.registry, kj::mv(*plan),
                        ComposerOptions{findHostBinary(config_.hostBinaryName), [](kj::StringPtr e) {
                                          fprintf(stderr, "nestbed: %s\n", e.cStr());
                                        }});
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
        fail(kj::str("nestbed: ", describeException(*e)));
      }
      ServeOptions options{kj::heapString(socket_), nullptr, maxConnections_};
      KJ_IF_MAYBE(v, viewSocket_) { options.viewSocket = kj::heapString(*v); }
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { serveRoot(io, composer, options); })) {
        // A socket that cannot be created (no such directory, no permission): named, not fatal.
        fprintf(stderr, "nestbed serve: %s\n", e->getDescription().cStr());
        composer.shutdown().wait(io.waitScope);
        context_.finish(EXIT_FAILED);
      }
      composer.shutdown().wait(io.waitScope);
      context_.finish(0);
    }
    context_.finish(EXIT_FAILED);
  }

  // ---- decode

  kj::MainFunc decodeMain() {
    kj::MainBuilder b(context_, "nestbed decode",
                      "Decodes an SMMUv3 structure field by field. WHAT is 'command' (DW0 [DW1]), "
                      "'ste' or 'cd' (its qwords, or --image with --sid [--ssid]: the STE of a "
                      "StreamID in a --dump-memory image, its CD), or 'walk' (--image, --sid, "
                      "--iova [--ssid]: the table walk of an address through the tables the STE "
                      "and CD name). Numbers in hex (0x...) or decimal.");
    return b
        .addOptionWithArg({"image"}, KJ_BIND_METHOD(*this, setImage), "<mem.img>",
                          "a --dump-memory image (its sidecar <mem.img>.json beside it)")
        .addOptionWithArg({"sid"}, KJ_BIND_METHOD(*this, setSid), "<sid>", "the StreamID")
        .addOptionWithArg({"ssid"}, KJ_BIND_METHOD(*this, setSsid), "<ssid>", "the SubstreamID (default 0)")
        .addOptionWithArg({"iova"}, KJ_BIND_METHOD(*this, setIova), "<address>", "walk: the input address")
        .addOptionWithArg({"smmu"}, KJ_BIND_METHOD(*this, setSmmu), "<name>",
                          "the SMMU whose stream table to read, when the image has several")
        .expectArg("<what>", KJ_BIND_METHOD(*this, setDecodeWhat))
        .expectZeroOrMoreArgs("<word>", KJ_BIND_METHOD(*this, addWord))
        .callAfterParsing(KJ_BIND_METHOD(*this, decodeOnce))
        .build();
  }
  static kj::Maybe<uint64_t> number(kj::StringPtr text) {
    char* end = nullptr;
    errno = 0;
    auto v = strtoull(text.cStr(), &end, 0);
    if (text.size() == 0 || *end != '\0' || errno != 0) return nullptr;
    return uint64_t(v);
  }
  kj::MainBuilder::Validity setImage(kj::StringPtr p) { image_ = resolvePath(p); return true; }
  kj::MainBuilder::Validity setSid(kj::StringPtr t) {
    KJ_IF_MAYBE(v, number(t)) { if (*v <= 0xffffffff) { sid_ = uint32_t(*v); return true; } }
    return "--sid takes a 32-bit StreamID";
  }
  kj::MainBuilder::Validity setSsid(kj::StringPtr t) {
    KJ_IF_MAYBE(v, number(t)) { if (*v < (1u << 20)) { ssid_ = uint32_t(*v); return true; } }
    return "--ssid takes a 20-bit SubstreamID";
  }
  kj::MainBuilder::Validity setIova(kj::StringPtr t) {
    KJ_IF_MAYBE(v, number(t)) { iova_ = *v; return true; }
    return "--iova takes an address";
  }
  kj::MainBuilder::Validity setSmmu(kj::StringPtr t) { smmu_ = kj::heapString(t); return true; }
  kj::MainBuilder::Validity setDecodeWhat(kj::StringPtr t) {
    for (auto w : {"command", "ste", "cd", "walk"}) {
      if (t == w) { decodeWhat_ = kj::heapString(t); return true; }
    }
    return "expected command, ste, cd or walk";
  }
  kj::MainBuilder::Validity addWord(kj::StringPtr t) {
    KJ_IF_MAYBE(v, number(t)) { words_.add(*v); return true; }
    return "a word is a number: 0x... or decimal";
  }

  kj::MainBuilder::Validity decodeOnce() {
    auto out = [&](kj::StringPtr text) { fputs(text.cStr(), stdout); };
    if (decodeWhat_ == "command") {
      if (words_.size() < 1 || words_.size() > 2) return "decode command takes DW0 [DW1]";
      out(decode::command(words_[0], words_.size() > 1 ? words_[1] : 0));
      context_.finish(0);
    }
    if (words_.size() > 0) {
      if (decodeWhat_ == "walk") return "decode walk reads an image: --image, --sid, --iova";
      if (words_.size() < 4 || words_.size() > 8) return "an STE or CD is 4 to 8 qwords";
      out(decodeWhat_ == "ste" ? decode::ste(words_) : decode::cd(words_));
      context_.finish(0);
    }
    if (image_ == nullptr || sid_ == nullptr) return "give the qwords, or --image and --sid";
    if (decodeWhat_ == "walk" && iova_ == nullptr) return "decode walk needs --iova";
    auto opened = decode::Image::open(KJ_ASSERT_NONNULL(image_));
    if (opened.is<kj::String>()) fail(kj::str("nestbed decode: ", opened.get<kj::String>()));
    auto& image = opened.get<decode::Image>();
    uint32_t sid = KJ_ASSERT_NONNULL(sid_);
    uint64_t steAt = take(image.steAddress(sid, smmu_));
    auto ste = take(image.read(steAt, 8));
    if (decodeWhat_ == "ste") {
      out(kj::str("SID 0x", kj::hex(sid), ": STE at 0x", kj::hex(steAt), "\n", decode::ste(ste)));
      context_.finish(0);
    }
    kj::Maybe<kj::Array<uint64_t>> cd;
    uint64_t config = (ste[0] >> 1) & 7;
    if (decodeWhat_ == "cd" || (config & 1 && config != 7 && (ste[0] & 1))) {
      uint64_t cdAt = take(image.cdAddress(ste, ssid_));
      auto words = take(image.read(cdAt, 8));
      if (decodeWhat_ == "cd") {
        out(kj::str("SID 0x", kj::hex(sid), " SSID ", ssid_, ": CD at 0x", kj::hex(cdAt), "\n", decode::cd(words)));
        context_.finish(0);
      }
      cd = kj::mv(words);
    }
    kj::Maybe<kj::ArrayPtr<const uint64_t>> cdWords;
    KJ_IF_MAYBE(c, cd) { cdWords = c->asPtr(); }
    out(image.walk(ste, cdWords, KJ_ASSERT_NONNULL(iova_), ssid_));
    context_.finish(0);
  }

  // A decode step's value, or its error as the command's failure (exit 1).
  template <typename T>
  T take(kj::OneOf<T, kj::String>&& result) {
    if (result.template is<kj::String>()) fail(kj::str("nestbed decode: ", result.template get<kj::String>()));
    return kj::mv(result.template get<T>());
  }

  kj::Maybe<kj::String> viewSocket_;
  uint32_t maxConnections_ = 32;
  CliContext& context_;
  CliConfig config_;
  kj::Maybe<kj::String> image_;
  kj::Maybe<uint32_t> sid_;
  uint32_t ssid_ = 0;
  kj::Maybe<uint64_t> iova_;
  kj::String smmu_, decodeWhat_;
  kj::Vector<uint64_t> words_;
  kj::String version_ = nestbedVersion();
  kj::Vector<Override> overrides_;
  kj::String manifest_;
  kj::Maybe<kj::String> dump_, junit_;
  kj::String socket_;
  kj::Vector<kj::String> scenarios_;
  kj::Vector<ScenarioParam> defines_;
  kj::String callInstance_, callMethod_, callArgs_;
  bool json_ = false;
  kj::Maybe<kj::String> trace_;
  kj::Maybe<kj::String> csv_, plot_, plotScript_;
  kj::Vector<kj::String> args_;       // compare, sweep: manifests and scenarios, in order
  kj::String param_, series_;
  kj::Vector<kj::String> figures_;
  kj::Maybe<uint32_t> point_;
  generate::ScaleParams gen_;
  kj::String genPlacement_ = kj::str("inline"), genGuestPath_ = kj::str("native");
  kj::Maybe<kj::String> genManifest_, genScenario_;
  kj::Maybe<kj::String> out_;
  uint32_t repeats_ = 0;
  bool wall_ = false;
};

}  // namespace

int nestbedMain(int argc, char* argv[], CliConfig config) {
  ScenarioLoader::setProgramPath(argv[0]);
  CliContext context(argv[0]);
  Cli cli(context, config);
  return kj::runMainAndExit(context, cli.getMain(), argc, argv);
}

}  // namespace nb
