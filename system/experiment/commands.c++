// compare and sweep. See commands.h.

#include "system/experiment/commands.h"

#include "system/experiment/measurements.h"
#include "system/experiment/plot.h"
#include "system/experiment/progress.h"
#include "system/experiment/session.h"
#include "system/experiment/trace.h"

#include <capnp/compat/json.h>
#include <kj/async-unix.h>
#include <kj/filesystem.h>
#include <kj/debug.h>
#include <algorithm>
#include <errno.h>
#include <stdio.h>
#include <string.h>

namespace nb::experiment {

namespace {

void say(kj::StringPtr message) { fprintf(stderr, "nestbed: %s\n", message.cStr()); }

// Loads `path` with `overrides`; prints every error (after `context`, if any) and returns null
// when it does not validate.
kj::Maybe<Plan> load(kj::StringPtr path, const Registry& registry, kj::ArrayPtr<const Override> overrides,
                     kj::StringPtr context = nullptr) {
  auto result = loadManifest(path, registry, overrides);
  KJ_SWITCH_ONEOF(result) {
    KJ_CASE_ONEOF(plan, Plan) { return kj::mv(plan); }
    KJ_CASE_ONEOF(errors, kj::Array<ManifestError>) {
      for (auto& e : errors) fprintf(stderr, "%s\n", kj::str(e).cStr());
      say(kj::str(errors.size(), errors.size() == 1 ? " error" : " errors", " in ", path,
                  context == nullptr ? kj::str() : kj::str(" (", context, ")")));
      return nullptr;
    }
  }
  KJ_UNREACHABLE;
}

// Loads the scenarios; with `checkUnused`, a parameter none of them refers to is an error too.
kj::Maybe<kj::Array<LoadedScenario>> loadScenarios(kj::ArrayPtr<const kj::String> paths,
                                                    kj::ArrayPtr<const ScenarioParam> params,
                                                    bool checkUnused = true) {
  ScenarioLoader loader(ScenarioLoader::defaultRoot());
  kj::Vector<LoadedScenario> loaded;
  bool errors = false;
  for (auto& path : paths) {
    auto result = loader.load(path, params);
    KJ_SWITCH_ONEOF(result) {
      KJ_CASE_ONEOF(s, LoadedScenario) { loaded.add(kj::mv(s)); }
      KJ_CASE_ONEOF(es, kj::Array<ScenarioError>) {
        for (auto& e : es) fprintf(stderr, "%s\n", kj::str(e).cStr());
        errors = true;
      }
    }
  }
  if (errors) return nullptr;
  if (checkUnused) {
    auto unused = unusedParams(loaded, params);
    for (auto& e : unused) say(e);
    if (unused.size() > 0) return nullptr;
  }
  return loaded.releaseAsArray();
}

// Output files are opened before anything runs, so a typo'd directory costs no run.
bool writable(kj::StringPtr path) {
  FILE* f = fopen(path.cStr(), "a");
  if (f == nullptr) {
    say(kj::str("cannot write ", path, ": ", strerror(errno)));
    return false;
  }
  fclose(f);
  return true;
}

bool writeFile(kj::StringPtr path, kj::StringPtr text) {
  FILE* f = fopen(path.cStr(), "w");
  bool ok = f != nullptr && fwrite(text.begin(), 1, text.size(), f) == text.size();
  if (f != nullptr && fclose(f) != 0) ok = false;
  if (!ok) say(kj::str("cannot write ", path, ": ", strerror(errno)));
  return ok;
}

kj::String overrideText(const Override& o) { return kj::str(o.key, "=", o.value); }

// What an experiment shares between compare and sweep: the event loop, the scenarios, the
// tracer, the runs and their measurements.
class Experiment {
public:
  Experiment(ExperimentOptions& options, kj::Array<LoadedScenario> scenarios, kj::StringPtr command)
      : options(options), scenarios(kj::mv(scenarios)), command(command) {
    if (options.trace != nullptr) tracer = kj::heap<Tracer>(options.registry);
  }

  // Checks what can be checked before any run: outputs and gnuplot.
  static bool preflight(ExperimentOptions& options, kj::Maybe<kj::String>& gnuplot) {
    if ((options.point == nullptr) != (options.out == nullptr)) {
      say("--point and --out go together: --point N --out FILE.json");
      return false;
    }
    if (options.point != nullptr &&
        (options.json || options.csv != nullptr || options.plot != nullptr || options.trace != nullptr)) {
      say("--point writes one run's record (--out): --json, --csv, --plot and --trace belong to "
          "the whole experiment (`nestbed merge`)");
      return false;
    }
    KJ_IF_MAYBE(p, options.out) {
      if (!writable(*p)) return false;
    }
    if (options.plot != nullptr) {
      gnuplot = findGnuplot();
      if (gnuplot == nullptr) {
        say("--plot needs gnuplot on $PATH (Debian: apt-get install gnuplot-nox)");
        return false;
      }
    }
    if (options.plotScript != nullptr && options.plot == nullptr) {
      say("--plot-script keeps the script --plot runs: give --plot FILE.svg too");
      return false;
    }
    for (auto path : {&options.csv, &options.plot, &options.plotScript, &options.trace}) {
      KJ_IF_MAYBE(p, *path) {
        if (!writable(*p)) return false;
      }
    }
    return true;
  }

  // One run of `plan`. A scenario that does not fit the manifest is bad input: null.
  kj::Maybe<RunResult> run(Plan plan, kj::StringPtr traceLabel, kj::ArrayPtr<const Override> overrides,
                           kj::ArrayPtr<const ScenarioParam> params) {
    RunOptions runOptions{options.registry, options.hostBinary, [](kj::StringPtr e) { say(e); }};
    runOptions.overrides = overrides;
    runOptions.params = params;
    KJ_IF_MAYBE(t, tracer) {
      runOptions.tracer = **t;
      runOptions.traceLabel = traceLabel;
    }
    auto result = runOnce(*io, kj::mv(plan), scenarios, runOptions);
    if (result.outcome == RunResult::Outcome::CHECK_FAILED) {
      for (auto& e : result.checkErrors) fprintf(stderr, "%s\n", kj::str(e).cStr());
      return nullptr;
    }
    return kj::mv(result);
  }

  static kj::StringPtr outcomeText(const RunResult& r) {
    switch (r.outcome) {
      case RunResult::Outcome::RAN: return r.ok() ? "ok" : "FAIL (a scenario failed)";
      case RunResult::Outcome::START_FAILED: return "FAIL (did not start)";
      case RunResult::Outcome::CHECK_FAILED: return "bad scenario";
    }
    KJ_UNREACHABLE;
  }

  // What every point of this experiment records besides its run.
  void describe(rpc::ExperimentReport::Kind kind, kj::ArrayPtr<const VariantSpec> variants, kj::StringPtr param,
                kj::StringPtr series, uint32_t repeats) {
    auto d = design.initRoot<rpc::ExperimentPoint>();
    d.setKind(kind);
    auto files = d.initScenarios(scenarios.size());
    for (auto i : kj::indices(scenarios)) files.set(i, scenarios[i].file);
    auto overrides = d.initOverrides(options.overrides.size());
    for (auto i : kj::indices(options.overrides)) overrides.set(i, overrideText(options.overrides[i]));
    auto params = d.initParams(options.defines.size());
    for (auto i : kj::indices(options.defines)) {
      params.set(i, kj::str(options.defines[i].name, "=", options.defines[i].value));
    }
    d.setParam(param);
    d.setSeries(series);
    d.setRepeats(repeats);
    d.setTimeBase(options.wall ? "wall" : "modeled");
    auto v = d.initVariants(variants.size());
    for (auto i : kj::indices(variants)) {
      v[i].setLabel(variants[i].label);
      v[i].setManifest(variants[i].manifest);
      v[i].setValue(variants[i].value);
      v[i].setSeriesValue(variants[i].seriesValue);
    }
  }

  // Whether this run is to run: every run, or in point mode (--point) only the one named.
  bool isPoint(size_t variant, uint32_t run) {
    KJ_IF_MAYBE(p, options.point) {
      auto d = design.getRoot<rpc::ExperimentPoint>().asReader();
      return *p == (run - 1) * d.getVariants().size() + variant;
    }
    return true;
  }

  // A run's record: the design, which variant and run, and the run itself.
  kj::Own<capnp::MallocMessageBuilder> record(size_t variant, uint32_t run, const RunResult& result) {
    auto message = kj::heap<capnp::MallocMessageBuilder>();
    message->setRoot(design.getRoot<rpc::ExperimentPoint>().asReader());
    auto point = message->getRoot<rpc::ExperimentPoint>();
    point.setVariant(variant);
    point.setRun(run);
    if (result.outcome == RunResult::Outcome::START_FAILED) {
      point.setOutcome(rpc::ExperimentPoint::Outcome::START_FAILED);
      point.setError(result.error);
    }
    point.setReport(result.report.asReader());
    return message;
  }

  // Point mode: the one run's record to --out; the exit status.
  int writePoint(capnp::MallocMessageBuilder& point) {
    capnp::JsonCodec codec;
    codec.setPrettyPrint(true);
    auto reader = point.getRoot<rpc::ExperimentPoint>().asReader();
    auto path = KJ_ASSERT_NONNULL(options.out).asPtr();
    if (!writeFile(path, kj::str(codec.encode(reader), "\n"))) return EXIT_USAGE;
    bool ok = reader.getOutcome() == rpc::ExperimentPoint::Outcome::RAN && reader.getReport().getOk();
    if (!ok) say(kj::str("point ", KJ_ASSERT_NONNULL(options.point), " failed (its record is in ", path, ")"));
    return ok ? EXIT_OK : EXIT_FAILED;
  }

  // Prints and writes the outputs; the exit status.
  int finish(Measurements& measurements, kj::Maybe<kj::String>& gnuplot) {
    return finishExperiment(options, measurements, design.getRoot<rpc::ExperimentPoint>().asReader(), gnuplot,
                            tracer);
  }

  static int finishExperiment(ExperimentOptions& options, Measurements& measurements,
                              rpc::ExperimentPoint::Reader design, kj::Maybe<kj::String>& gnuplot,
                              kj::Maybe<kj::Own<Tracer>>& tracer) {
    capnp::MallocMessageBuilder message;
    auto report = message.initRoot<rpc::ExperimentReport>();
    auto files = KJ_MAP(s, design.getScenarios()) { return kj::heapString(s); };
    auto overrides = KJ_MAP(o, design.getOverrides()) { return kj::heapString(o); };
    measurements.fill(report, files, overrides, design.getParam(), design.getRepeats(),
                      design.getSeries().size() ? design.getSeries() : kj::StringPtr(nullptr));
    report.getProvenance().setParams(design.getParams());
    auto reader = report.asReader();
    if (options.json) {
      capnp::JsonCodec codec;
      codec.setPrettyPrint(true);
      puts(codec.encode(reader).cStr());
    } else {
      fputs(formatExperiment(reader).cStr(), stdout);
    }
    fflush(stdout);
    int status = reader.getOk() ? EXIT_OK : EXIT_FAILED;
    KJ_IF_MAYBE(path, options.csv) {
      if (!writeFile(*path, experimentCsv(reader))) status = EXIT_USAGE;
    }
    KJ_IF_MAYBE(path, options.plot) {
      auto script = plotScript(reader, *path, options.figures);
      KJ_IF_MAYBE(scriptPath, options.plotScript) {
        if (!writeFile(*scriptPath, script)) status = EXIT_USAGE;
      }
      for (auto& f : options.figures) {
        if (chosenFigures(reader, kj::arrayPtr(&f, 1)).size() == 0) say(kj::str("--figure '", f, "' matches no row"));
      }
      KJ_IF_MAYBE(error, runGnuplot(KJ_ASSERT_NONNULL(gnuplot), script)) {
        say(*error);
        status = EXIT_USAGE;
      }
    }
    KJ_IF_MAYBE(path, options.trace) {
      auto& t = *KJ_ASSERT_NONNULL(tracer);
      KJ_IF_MAYBE(error, t.write(*path)) {
        say(*error);
        status = EXIT_USAGE;
      } else {
        say(kj::str("trace: ", t.rpcEvents(), " RPCs, ", t.smmuCommands(), " SMMU commands -> ", *path));
      }
    }
    for (auto v : reader.getVariants()) {
      for (auto f : v.getFailures()) say(kj::str(variantName(reader, v), " failed: ", f));
    }
    return status;
  }

  ExperimentOptions& options;
  kj::Array<LoadedScenario> scenarios;
  kj::StringPtr command;
  kj::Maybe<kj::Own<Tracer>> tracer;
  kj::Own<kj::AsyncIoContext> io;
  capnp::MallocMessageBuilder design;   // an ExperimentPoint with only the experiment's fields

  // The event loop, created once validation has passed (child exits are captured first, as
  // the composer requires).
  void loop() {
    kj::UnixEventPort::captureChildExit();
    io = kj::heap<kj::AsyncIoContext>(kj::setupAsyncIo());
  }
};

// --point names one of the experiment's `total` runs.
bool pointInRange(ExperimentOptions& options, size_t total) {
  KJ_IF_MAYBE(p, options.point) {
    if (*p >= total) {
      say(kj::str("--point ", *p, ": this experiment has ", total, " run", total == 1 ? "" : "s",
                  " (points 0 to ", total - 1, ")"));
      return false;
    }
  }
  return true;
}

}  // namespace

// ======================================================================================

int compare(ExperimentOptions& options, kj::StringPtr manifestA, kj::StringPtr manifestB,
            kj::ArrayPtr<const kj::String> scenarioPaths) {
  // Modeled times are the same on every run: one run per side unless wall time is asked for.
  uint32_t repeats = options.repeats ? options.repeats : (options.wall ? 3 : 1);
  kj::Maybe<kj::String> gnuplot;
  if (!Experiment::preflight(options, gnuplot)) return EXIT_USAGE;
  // Both manifests must validate with the overrides before anything runs.
  bool valid = load(manifestA, options.registry, options.overrides, "A") != nullptr;
  valid = load(manifestB, options.registry, options.overrides, "B") != nullptr && valid;
  if (!valid) return EXIT_INVALID;
  auto scenarios = loadScenarios(scenarioPaths, options.defines);
  if (scenarios == nullptr) return EXIT_INVALID;

  Experiment experiment(options, kj::mv(KJ_ASSERT_NONNULL(scenarios)), "compare");
  experiment.loop();
  kj::StringPtr paths[] = {manifestA, manifestB};
  kj::StringPtr labels[] = {"A", "B"};
  auto variants = kj::heapArrayBuilder<VariantSpec>(2);
  variants.add(VariantSpec{kj::str("A"), kj::heapString(manifestA)});
  variants.add(VariantSpec{kj::str("B"), kj::heapString(manifestB)});
  auto specs = variants.finish();
  if (!pointInRange(options, 2 * repeats)) return EXIT_USAGE;
  experiment.describe(rpc::ExperimentReport::Kind::COMPARE, specs, nullptr, nullptr, repeats);
  Measurements measurements(rpc::ExperimentReport::Kind::COMPARE, kj::mv(specs));
  measurements.useWallTime(options.wall);
  // One point (a build action) says nothing unless it fails.
  Progress progress("compare", options.point == nullptr ? 2 * repeats : 1, options.point == nullptr ? stderr : nullptr);
  for (uint32_t run = 1; run <= repeats; run++) {
    for (size_t side = 0; side < 2; side++) {
      if (!experiment.isPoint(side, run)) continue;
      auto what = kj::str(labels[side], " run ", run);
      progress.starting(what);
      auto plan = load(paths[side], options.registry, options.overrides, labels[side]);
      if (plan == nullptr) return EXIT_INVALID;   // changed on disk since it was checked
      KJ_IF_MAYBE(result, experiment.run(kj::mv(KJ_ASSERT_NONNULL(plan)), kj::str(labels[side], "#", run),
                                         options.overrides, options.defines)) {
        progress.finished(what, Experiment::outcomeText(*result));
        auto point = experiment.record(side, run, *result);
        if (options.point != nullptr) {
          progress.done();
          return experiment.writePoint(*point);
        }
        measurements.add(point->getRoot<rpc::ExperimentPoint>().asReader());
      } else {
        progress.done();
        say(kj::str("the scenario does not fit ", labels[side], " (", paths[side], ")"));
        return EXIT_INVALID;
      }
    }
  }
  progress.done();
  return experiment.finish(measurements, gnuplot);
}

kj::Maybe<SweepParam> parseSweepParam(kj::StringPtr text) {
  KJ_IF_MAYBE(eq, text.findFirst('=')) {
    if (*eq == 0) return nullptr;
    auto key = kj::heapString(text.slice(0, *eq));
    auto rest = text.slice(*eq + 1);
    kj::Vector<kj::String> values;
    int depth = 0;
    bool inQuotes = false;
    size_t start = 0;
    for (size_t i = 0; i <= rest.size(); i++) {
      char c = i < rest.size() ? rest[i] : ',';
      if (c == '"') inQuotes = !inQuotes;
      if (!inQuotes && (c == '[' || c == '{')) depth++;
      if (!inQuotes && (c == ']' || c == '}')) depth--;
      if (c == ',' && (i == rest.size() || (depth == 0 && !inQuotes))) {
        if (i == start) return nullptr;   // an empty value
        values.add(kj::heapString(rest.slice(start, i)));
        start = i + 1;
      }
    }
    if (values.empty()) return nullptr;
    return SweepParam{kj::mv(key), values.releaseAsArray()};
  }
  return nullptr;
}

int sweep(ExperimentOptions& options, kj::StringPtr manifest, kj::ArrayPtr<const kj::String> scenarioPaths,
          kj::StringPtr paramText, kj::StringPtr seriesText) {
  uint32_t repeats = options.repeats ? options.repeats : 1;
  auto maybeParam = parseSweepParam(paramText);
  if (maybeParam == nullptr) {
    say(kj::str("--param must be <key>=<value>,<value>,...: '", paramText, "'"));
    return EXIT_USAGE;
  }
  auto param = kj::mv(KJ_ASSERT_NONNULL(maybeParam));
  kj::Maybe<SweepParam> series;
  if (seriesText != nullptr) {
    series = parseSweepParam(seriesText);
    if (series == nullptr) {
      say(kj::str("--series must be <key>=<value>,<value>,...: '", seriesText, "'"));
      return EXIT_USAGE;
    }
  }
  kj::Maybe<kj::String> gnuplot;
  if (!Experiment::preflight(options, gnuplot)) return EXIT_USAGE;

  // The variants: every value, and for each every series value (one line each in the plot).
  struct Point {
    kj::StringPtr value;
    kj::Maybe<kj::StringPtr> seriesValue;
    kj::String name;     // for messages: "[series=s ]key=value"
    kj::String label;    // the table's column, and the trace's timelines
  };
  auto shortOf = [](kj::StringPtr key) {
    KJ_IF_MAYBE(dot, key.findLast('.')) { return key.slice(*dot + 1); }
    return key;
  };
  kj::Vector<Point> points;
  for (auto& v : param.values) {
    KJ_IF_MAYBE(s, series) {
      for (auto& sv : s->values) {
        points.add(Point{v, kj::StringPtr(sv), kj::str(s->key, "=", sv, " ", param.key, "=", v),
                         kj::str(sv, "/", v)});
      }
    } else {
      points.add(Point{v, nullptr, kj::str(param.key, "=", v), kj::heapString(v)});
    }
  }
  // A key "scenario.<name>" is a scenario parameter (${name} in the scenario's text), any
  // other key a manifest value.
  constexpr kj::StringPtr SCENARIO_PREFIX = "scenario."_kj;
  auto isScenarioKey = [&](kj::StringPtr key) { return key.startsWith(SCENARIO_PREFIX); };
  auto overridesFor = [&](const Point& point) {
    kj::Vector<Override> all;
    for (auto& o : options.overrides) all.add(Override{kj::heapString(o.key), kj::heapString(o.value)});
    KJ_IF_MAYBE(sv, point.seriesValue) {
      auto& key = KJ_ASSERT_NONNULL(series).key;
      if (!isScenarioKey(key)) all.add(Override{kj::heapString(key), kj::heapString(*sv)});
    }
    if (!isScenarioKey(param.key)) all.add(Override{kj::heapString(param.key), kj::heapString(point.value)});
    return all;
  };
  auto paramsFor = [&](const Point& point) {
    kj::Vector<ScenarioParam> all;
    for (auto& d : options.defines) all.add(ScenarioParam{kj::heapString(d.name), kj::heapString(d.value)});
    KJ_IF_MAYBE(sv, point.seriesValue) {
      auto& key = KJ_ASSERT_NONNULL(series).key;
      if (isScenarioKey(key)) {
        all.add(ScenarioParam{kj::heapString(key.slice(SCENARIO_PREFIX.size())), kj::heapString(*sv)});
      }
    }
    if (isScenarioKey(param.key)) {
      all.add(ScenarioParam{kj::heapString(param.key.slice(SCENARIO_PREFIX.size())),
                            kj::heapString(point.value)});
    }
    return all;
  };
  // Every variant must give a valid manifest before anything runs.
  bool valid = true;
  for (auto& point : points) {
    valid = load(manifest, options.registry, overridesFor(point), kj::str("--param ", point.name)) != nullptr && valid;
  }
  // ... and every variant's scenarios must load.
  for (auto& point : points) {
    // Every point has the same parameter names: one report of an unused one is enough.
    valid = loadScenarios(scenarioPaths, paramsFor(point), &point == &points[0]) != nullptr && valid;
  }
  if (!valid) return EXIT_INVALID;
  auto scenarios = loadScenarios(scenarioPaths, paramsFor(points[0]));
  if (scenarios == nullptr) return EXIT_INVALID;

  Experiment experiment(options, kj::mv(KJ_ASSERT_NONNULL(scenarios)), "sweep");
  experiment.loop();
  auto variants = KJ_MAP(p, points) {
    return VariantSpec{kj::heapString(p.label), kj::heapString(manifest), kj::heapString(p.value),
                       p.seriesValue.map([](kj::StringPtr sv) { return kj::heapString(sv); }).orDefault(kj::str())};
  };
  if (!pointInRange(options, points.size() * repeats)) return EXIT_USAGE;
  kj::StringPtr seriesKey = series.map([](SweepParam& s) -> kj::StringPtr { return s.key; }).orDefault(nullptr);
  experiment.describe(rpc::ExperimentReport::Kind::SWEEP, variants, param.key, seriesKey, repeats);
  Measurements measurements(rpc::ExperimentReport::Kind::SWEEP, kj::mv(variants));
  measurements.useWallTime(options.wall);
  Progress progress("sweep", options.point == nullptr ? points.size() * repeats : 1,
                    options.point == nullptr ? stderr : nullptr);
  for (uint32_t run = 1; run <= repeats; run++) {
    for (auto i : kj::indices(points)) {
      if (!experiment.isPoint(i, run)) continue;
      auto& point = points[i];
      auto what = kj::str(point.name, repeats > 1 ? kj::str(" run ", run) : kj::str());
      progress.starting(what);
      auto plan = load(manifest, options.registry, overridesFor(point));
      if (plan == nullptr) return EXIT_INVALID;
      auto pointScenarios = loadScenarios(scenarioPaths, paramsFor(point));
      if (pointScenarios == nullptr) return EXIT_INVALID;
      experiment.scenarios = kj::mv(KJ_ASSERT_NONNULL(pointScenarios));
      // Trace timelines are named by the keys' last parts: "iotlb_entries=64 smmu0".
      auto label = kj::str(point.seriesValue.map([&](kj::StringPtr sv) {
                             return kj::str(shortOf(KJ_ASSERT_NONNULL(series).key), "=", sv, " ");
                           }).orDefault(kj::str()),
                           shortOf(param.key), "=", point.value, repeats > 1 ? kj::str("#", run) : kj::str());
      auto pointOverrides = overridesFor(point);
      auto pointParams = paramsFor(point);
      KJ_IF_MAYBE(result, experiment.run(kj::mv(KJ_ASSERT_NONNULL(plan)), label, pointOverrides,
                                         pointParams)) {
        progress.finished(what, Experiment::outcomeText(*result));
        auto record = experiment.record(i, run, *result);
        if (options.point != nullptr) {
          progress.done();
          return experiment.writePoint(*record);
        }
        measurements.add(record->getRoot<rpc::ExperimentPoint>().asReader());
      } else {
        progress.done();
        say(kj::str("the scenario does not fit ", manifest, " with ", point.name));
        return EXIT_INVALID;
      }
    }
  }
  progress.done();
  return experiment.finish(measurements, gnuplot);
}

int merge(ExperimentOptions& options, kj::ArrayPtr<const kj::String> paths) {
  kj::Maybe<kj::String> gnuplot;
  if (options.point != nullptr || options.out != nullptr || options.trace != nullptr) {
    say("merge takes neither --point, --out nor --trace: the points were run already");
    return EXIT_USAGE;
  }
  if (!Experiment::preflight(options, gnuplot)) return EXIT_USAGE;
  if (paths.size() == 0) {
    say("merge needs the points' files");
    return EXIT_USAGE;
  }
  // Every point, read back as the command recorded it.
  struct Read {
    kj::StringPtr path;
    kj::Own<capnp::MallocMessageBuilder> message;
    rpc::ExperimentPoint::Reader point() { return message->getRoot<rpc::ExperimentPoint>().asReader(); }
  };
  kj::Vector<Read> points;
  auto fs = kj::newDiskFilesystem();
  bool valid = true;
  for (auto& path : paths) {
    auto message = kj::heap<capnp::MallocMessageBuilder>();
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto text = fs->getRoot().openFile(fs->getCurrentPath().evalNative(path))->readAllText();
      capnp::JsonCodec().decode(text, message->initRoot<rpc::ExperimentPoint>());
    })) {
      say(kj::str(path, ": not a point's record (ExperimentPoint JSON): ", e->getDescription()));
      valid = false;
      continue;
    }
    points.add(Read{path, kj::mv(message)});
  }
  if (!valid) return EXIT_INVALID;

  // One experiment: every point's description is the first one's.
  auto describe = [](rpc::ExperimentPoint::Reader p) {
    capnp::MallocMessageBuilder m;
    m.setRoot(p);
    auto d = m.getRoot<rpc::ExperimentPoint>();
    d.setVariant(0);
    d.setRun(0);
    d.setOutcome(rpc::ExperimentPoint::Outcome::RAN);
    d.disownError();
    d.disownReport();
    return capnp::JsonCodec().encode(d.asReader());
  };
  auto first = points[0].point();
  auto design = describe(first);
  size_t variants = first.getVariants().size();
  uint32_t repeats = first.getRepeats();
  if (variants == 0 || repeats == 0) {
    say(kj::str(points[0].path, ": a point of an experiment with no variants or no runs"));
    return EXIT_INVALID;
  }
  auto seen = kj::heapArray<kj::Maybe<kj::StringPtr>>(variants * repeats);
  for (auto& r : points) {
    auto p = r.point();
    if (describe(p) != design) {
      say(kj::str(r.path, ": a point of another experiment than ", points[0].path,
                  " (its manifests, scenarios, overrides, parameters, values or repeats differ)"));
      valid = false;
      continue;
    }
    if (p.getVariant() >= variants || p.getRun() < 1 || p.getRun() > repeats) {
      say(kj::str(r.path, ": variant ", p.getVariant(), " run ", p.getRun(), " is not one of the experiment's ",
                  variants, " variants x ", repeats, " runs"));
      valid = false;
      continue;
    }
    auto& slot = seen[(p.getRun() - 1) * variants + p.getVariant()];
    KJ_IF_MAYBE(other, slot) {
      say(kj::str(r.path, ": the same point as ", *other, " (variant ", p.getVariant(), ", run ", p.getRun(), ")"));
      valid = false;
    }
    slot = r.path;
  }
  for (auto i : kj::indices(seen)) {
    if (valid && seen[i] == nullptr) {
      auto label = first.getVariants()[i % variants].getLabel();
      say(kj::str("point ", i, " (variant ", label, ", run ", i / variants + 1, ") is missing"));
      valid = false;
    }
  }
  if (!valid) return EXIT_INVALID;

  // The runs in the order the command ran them, as it adds them.
  kj::Vector<Read*> ordered;
  for (auto& r : points) ordered.add(&r);
  std::sort(ordered.begin(), ordered.end(), [&](Read* a, Read* b) {
    auto pa = a->point(), pb = b->point();
    return (pa.getRun() - 1) * variants + pa.getVariant() < (pb.getRun() - 1) * variants + pb.getVariant();
  });
  auto specs = KJ_MAP(v, first.getVariants()) {
    return VariantSpec{kj::heapString(v.getLabel()), kj::heapString(v.getManifest()), kj::heapString(v.getValue()),
                       kj::heapString(v.getSeriesValue())};
  };
  Measurements measurements(first.getKind(), kj::mv(specs));
  measurements.useWallTime(first.getTimeBase() == "wall");
  for (auto r : ordered) measurements.add(r->point());
  kj::Maybe<kj::Own<Tracer>> noTracer;
  return Experiment::finishExperiment(options, measurements, first, gnuplot, noTracer);
}

}  // namespace nb::experiment
