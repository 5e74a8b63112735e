// Measurements over runs. See measurements.h.

#include "system/experiment/measurements.h"

#include "system/version.h"

#include <kj/debug.h>
#include <algorithm>
#include <cmath>
#include <stdio.h>

namespace nb::experiment {

struct Measurements::Row {
  bool step;
  kj::String group;
  kj::String name;
  uint32_t line = 0;
  uint8_t depth = 0;
  kj::Array<kj::Vector<double>> samples;   // per variant, one per run
  kj::String stepLabel;                    // step counters: the step's label
  Row* stepRow = nullptr;                  // step counters: the step's timing row
};

namespace {

struct Summary {
  bool present = false;
  double median = 0, min = 0, max = 0;
};

Summary summarise(kj::ArrayPtr<const double> samples) {
  Summary s;
  if (samples.size() == 0) return s;
  auto sorted = kj::heapArray<double>(samples);
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  s.present = true;
  s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  s.min = sorted[0];
  s.max = sorted[n - 1];
  return s;
}

double ratio(const Summary& a, const Summary& b) {
  if (!a.present || !b.present) return NAN;
  if (a.median == b.median) return 1;
  if (a.median == 0) return INFINITY;
  return b.median / a.median;
}

kj::StringPtr baseName(kj::StringPtr path) {
  KJ_IF_MAYBE(slash, path.findLast('/')) { return path.slice(*slash + 1); }
  return path;
}

}  // namespace

Measurements::Measurements(rpc::ExperimentReport::Kind kind, kj::Array<VariantSpec> variants)
    : kind_(kind), variants_(kj::mv(variants)),
      failures_(kj::heapArray<kj::Vector<kj::String>>(variants_.size())),
      manifests_(kj::heapArray<kj::Own<capnp::MallocMessageBuilder>>(variants_.size())) {}
Measurements::~Measurements() noexcept(false) {}

Measurements::Row& Measurements::row(kj::Vector<kj::Own<Row>>& rows, kj::String key, bool step) {
  KJ_IF_MAYBE(r, byKey_.find(key)) { return **r; }
  auto r = kj::heap<Row>();
  r->step = step;
  r->samples = kj::heapArray<kj::Vector<double>>(variants_.size());
  auto& ref = *r;
  rows.add(kj::mv(r));
  byKey_.insert(kj::mv(key), &ref);
  return ref;
}

void Measurements::add(size_t variant, uint32_t run, const RunResult& result) {
  KJ_REQUIRE(variant < variants_.size());
  switch (result.outcome) {
    case RunResult::Outcome::START_FAILED:
      addRun(variant, run, result.report.asReader(), kj::StringPtr(result.error));
      return;
    case RunResult::Outcome::CHECK_FAILED:
      failures_[variant].add(kj::str("run ", run, ": ", result.checkErrors.size(), " scenario check error",
                                     result.checkErrors.size() == 1 ? "" : "s", ", the first: ",
                                     result.checkErrors[0]));
      return;
    case RunResult::Outcome::RAN:
      addRun(variant, run, result.report.asReader(), nullptr);
      return;
  }
}

void Measurements::add(rpc::ExperimentPoint::Reader point) {
  KJ_REQUIRE(point.getVariant() < variants_.size(), "a point's variant is out of range", point.getVariant());
  kj::Maybe<kj::StringPtr> startError;
  if (point.getOutcome() != rpc::ExperimentPoint::Outcome::RAN) startError = point.getError();
  addRun(point.getVariant(), point.getRun(), point.getReport(), startError);
}

void Measurements::addRun(size_t variant, uint32_t run, rpc::RunReport::Reader report,
                          kj::Maybe<kj::StringPtr> startError) {
  auto& failures = failures_[variant];
  if (manifests_[variant].get() == nullptr && report.hasProvenance()) {
    auto provenance = report.getProvenance();
    if (timing_ == nullptr) timing_ = kj::heapString(provenance.getTiming());
    if (provenance.getManifests().size() > 0) {
      manifests_[variant] = kj::heap<capnp::MallocMessageBuilder>();
      manifests_[variant]->setRoot(provenance.getManifests()[0]);
    }
  }
  KJ_IF_MAYBE(error, startError) {
    failures.add(kj::str("run ", run, ": did not start: ", *error));
    return;
  }
  for (auto scenario : report.getScenarios()) {
    if (!scenario.getOk()) failures.add(kj::str("run ", run, ": scenario ", scenario.getFile(), " failed"));
  }
  for (auto scenario : report.getScenarios()) {
    auto steps = scenario.getSteps();
    for (auto i : kj::indices(steps)) {
      auto s = steps[i];
      // Keyed by position: both sides of a compare, and every value of a sweep, run the same file.
      auto& r = row(steps_, kj::str("step\n", scenario.getFile(), "\n", i), true);
      if (r.name == nullptr) {
        r.group = kj::heapString(scenario.getFile());
        r.name = kj::heapString(s.getLabel());
        r.line = s.getLine();
        r.depth = s.getDepth();
      }
      double wallUs = s.getMicros(), modeledUs = double(s.getModeledNs()) / 1000;
      double us = wall_ ? wallUs : modeledUs, otherUs = wall_ ? modeledUs : wallUs;
      r.samples[variant].add(s.getIterations() ? us / s.getIterations() : us);
      auto& other = row(otherSteps_, kj::str("other step\n", scenario.getFile(), "\n", i), true);
      if (other.name == nullptr) {
        other.group = kj::heapString(scenario.getFile());
        other.name = kj::heapString(s.getLabel());
        other.line = s.getLine();
        other.depth = s.getDepth();
      }
      other.samples[variant].add(s.getIterations() ? otherUs / s.getIterations() : otherUs);
      size_t runIndex = r.samples[variant].size() - 1;
      for (auto d : s.getDeltas()) {
        auto& c = row(stepCounters_, kj::str("delta\n", scenario.getFile(), "\n", i, "\n", d.getInstance(),
                                           "\n", d.getCounter()), false);
        if (c.name == nullptr) {
          c.group = kj::heapString(scenario.getFile());
          c.name = kj::str(d.getInstance(), ".", d.getCounter());
          c.stepLabel = kj::heapString(s.getLabel());
          c.line = s.getLine();
          c.depth = s.getDepth();
          c.stepRow = &r;
        }
        // Runs in which the step left the counter alone changed it by 0.
        while (c.samples[variant].size() < runIndex) c.samples[variant].add(0);
        c.samples[variant].add(double(d.getDelta()));
      }
    }
  }
  for (auto instance : report.getComponents()) {
    for (auto c : instance.getCounters()) {
      auto& r = row(counters_, kj::str("counter\n", instance.getName(), "\n", c.getName()), false);
      if (r.name == nullptr) {
        r.group = kj::heapString(instance.getName());
        r.name = kj::heapString(c.getName());
      }
      r.samples[variant].add(double(c.getValue()));
    }
  }
}

void Measurements::fill(rpc::ExperimentReport::Builder report, kj::ArrayPtr<const kj::String> scenarios,
                        kj::ArrayPtr<const kj::String> overrides, kj::StringPtr param, uint32_t repeats,
                        kj::StringPtr series) {
  report.setKind(kind_);
  report.setTimeBase(wall_ ? "wall" : "modeled");
  auto s = report.initScenarios(scenarios.size());
  for (auto i : kj::indices(scenarios)) s.set(i, scenarios[i]);
  auto o = report.initOverrides(overrides.size());
  for (auto i : kj::indices(overrides)) o.set(i, overrides[i]);
  report.setParam(param);
  report.setSeries(series);
  report.setRepeats(repeats);
  report.setSpread("min-max over runs");
  bool ok = true;
  auto variants = report.initVariants(variants_.size());
  for (auto i : kj::indices(variants_)) {
    variants[i].setLabel(variants_[i].label);
    variants[i].setManifest(variants_[i].manifest);
    variants[i].setValue(variants_[i].value);
    variants[i].setSeriesValue(variants_[i].seriesValue);
    variants[i].setOk(failures_[i].empty());
    ok = ok && failures_[i].empty();
    auto f = variants[i].initFailures(failures_[i].size());
    for (auto j : kj::indices(failures_[i])) f.set(j, failures_[i][j]);
  }
  report.setOk(ok);
  auto provenance = report.initProvenance();
  provenance.setVersion(nestbedVersion());
  provenance.setCommit(nestbedCommit());
  provenance.setBuildMode(buildMode());
  if (timing_ != nullptr) provenance.setTiming(timing_);
  auto manifests = provenance.initManifests(variants_.size());
  for (auto i : kj::indices(variants_)) {
    if (manifests_[i].get() != nullptr) {
      manifests.setWithCaveats(i, manifests_[i]->getRoot<rpc::Provenance::Manifest>().asReader());
    }
    manifests[i].setLabel(variants_[i].label);
    if (!manifests[i].hasFile()) manifests[i].setFile(variants_[i].manifest);
  }

  auto fillRows = [&](kj::ArrayPtr<Row* const> rows, capnp::List<rpc::ExperimentReport::Row>::Builder out) {
    for (auto i : kj::indices(rows)) {
      auto& r = *rows[i];
      auto row = out[i];
      row.setGroup(r.group);
      row.setName(r.name);
      row.setLine(r.line);
      row.setDepth(r.depth);
      auto cells = row.initCells(r.samples.size());
      kj::Vector<Summary> summaries;
      bool varies = false;
      for (auto v : kj::indices(r.samples)) {
        auto summary = summarise(r.samples[v]);
        auto cell = cells[v];
        cell.setPresent(summary.present);
        cell.setMedian(summary.median);
        cell.setMin(summary.min);
        cell.setMax(summary.max);
        auto samples = cell.initSamples(r.samples[v].size());
        for (auto k : kj::indices(r.samples[v])) samples.set(k, r.samples[v][k]);
        if (!r.step && summary.min != summary.max) varies = true;
        summaries.add(summary);
      }
      bool differs = false;
      for (auto& s : summaries) {
        differs = differs || s.present != summaries[0].present || s.median != summaries[0].median;
      }
      row.setRatio(summaries.size() >= 2 ? ratio(summaries[0], summaries.back()) : 1);
      row.setDiffers(differs);
      row.setVaries(varies);
    }
  };

  // Steps that never take time (checks) would only add rows of zeros.
  kj::Vector<Row*> timed;
  for (auto& r : steps_) {
    bool any = false;
    for (auto& v : r->samples) for (auto x : v) any = any || x != 0;
    if (any) timed.add(r.get());
  }
  fillRows(timed, report.initSteps(timed.size()));
  kj::Vector<Row*> otherTimed;
  for (auto& r : otherSteps_) {
    bool any = false;
    for (auto& v : r->samples) for (auto x : v) any = any || x != 0;
    if (any) otherTimed.add(r.get());
  }
  fillRows(otherTimed, report.initOtherSteps(otherTimed.size()));
  auto counters = KJ_MAP(r, counters_) -> Row* { return r.get(); };
  fillRows(counters, report.initCounters(counters.size()));
  for (auto& r : stepCounters_) {
    for (auto v : kj::indices(r->samples)) {
      while (r->samples[v].size() < r->stepRow->samples[v].size()) r->samples[v].add(0);
    }
  }
  auto stepCounters = KJ_MAP(r, stepCounters_) -> Row* { return r.get(); };
  auto out = report.initStepCounters(stepCounters.size());
  fillRows(stepCounters, out);
  for (auto i : kj::indices(stepCounters)) out[i].setStep(stepCounters[i]->stepLabel);
}

kj::String variantName(rpc::ExperimentReport::Reader report, rpc::ExperimentReport::Variant::Reader variant) {
  if (report.getKind() == rpc::ExperimentReport::Kind::COMPARE) return kj::heapString(variant.getLabel());
  auto swept = kj::str(report.getParam(), "=", variant.getValue());
  if (report.getSeries().size() == 0) return swept;
  return kj::str(report.getSeries(), "=", variant.getSeriesValue(), " ", swept);
}

kj::String rowName(rpc::ExperimentReport::Row::Reader row, bool step) {
  if (row.getStep().size() > 0) {
    return kj::str(baseName(row.getGroup()), ":", row.getLine(), " ", row.getStep(), ": ", row.getName());
  }
  if (step) {
    return kj::str(kj::repeat(' ', 2 * row.getDepth()), baseName(row.getGroup()), ":", row.getLine(), " ",
                   row.getName());
  }
  return kj::str(row.getGroup(), ".", row.getName());
}

// ======================================================================================
// Text

namespace {

kj::String number(double v, bool step) {
  char buf[32];
  if (step) {
    // Modeled times go down to nanoseconds: small values keep three decimals of a microsecond.
    snprintf(buf, sizeof(buf), v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.3f", v);
  } else {
    snprintf(buf, sizeof(buf), "%.0f", v);
  }
  return kj::str(buf);
}

kj::String cellText(rpc::ExperimentReport::Cell::Reader c, bool step) {
  if (!c.getPresent()) return kj::str("-");
  if (c.getSamples().size() <= 1 || c.getMin() == c.getMax()) return number(c.getMedian(), step);
  return kj::str(number(c.getMedian(), step), " [", number(c.getMin(), step), "-", number(c.getMax(), step), "]");
}

kj::String ratioText(double r) {
  if (std::isnan(r)) return kj::str("-");
  if (std::isinf(r)) return kj::str("inf");
  if (r == 1) return kj::str("1");
  char buf[32];
  snprintf(buf, sizeof(buf), r >= 100 ? "%.0f" : r >= 10 ? "%.1f" : "%.3f", r);
  return kj::str(buf);
}

kj::String truncated(kj::StringPtr s, size_t width) {
  if (s.size() <= width) return kj::heapString(s);
  return kj::str(s.slice(0, width - 3), "...");
}

constexpr size_t NAME_WIDTH = 56;

}  // namespace

kj::String formatExperiment(rpc::ExperimentReport::Reader report) {
  bool compare = report.getKind() == rpc::ExperimentReport::Kind::COMPARE;
  auto variants = report.getVariants();
  kj::Vector<kj::String> lines;

  auto runs = report.getRepeats();
  if (compare) {
    lines.add(kj::str("nestbed compare: ", runs, " run", runs == 1 ? "" : "s", " of each, alternating A B; ",
                      runs > 1 ? "median [min-max] over runs" : "one run",
                      report.getTimeBase() == "wall"
                          ? "; steps in wall time (this machine)"
                          : "; steps in modeled time (the same on every run: no repeats needed)"));
  } else {
    lines.add(kj::str("nestbed sweep: ", report.getParam(),
                      report.hasSeries() && report.getSeries().size()
                          ? kj::str(" for each ", report.getSeries(), " (columns: series/value)") : kj::str(),
                      ", ", variants.size(), " variants, ", runs, " run", runs == 1 ? "" : "s", " each",
                      runs > 1 ? "; median [min-max] over runs" : "",
                      report.getTimeBase() == "wall" ? "; steps in wall time (this machine)"
                                                     : "; steps in modeled time (no repeats needed)"));
  }
  lines.add(kj::str("  ", report.getProvenance().getVersion()));
  for (auto v : variants) {
    if (compare) lines.add(kj::str("  ", v.getLabel(), "  ", v.getManifest()));
  }
  if (!compare && variants.size()) lines.add(kj::str("  manifest ", variants[0].getManifest()));
  for (auto o : report.getOverrides()) lines.add(kj::str("  --set ", o));
  for (auto s : report.getScenarios()) lines.add(kj::str("  scenario ", s));
  for (auto p : report.getProvenance().getParams()) lines.add(kj::str("  --define ", p));
  for (auto v : variants) {
    auto who = variantName(report, v);
    if (v.getOk()) continue;
    for (auto f : v.getFailures()) lines.add(kj::str("  FAIL ", who, ": ", f));
  }
  lines.add(kj::str());

  auto table = [&](kj::StringPtr title, capnp::List<rpc::ExperimentReport::Row>::Reader rows, bool step) {
    // Column texts first, then widths.
    size_t columns = variants.size() + 1 + (compare ? 1 : 0);
    kj::Vector<kj::Array<kj::String>> cells;
    auto header = kj::heapArrayBuilder<kj::String>(columns);
    header.add(kj::heapString(title));
    for (auto v : variants) header.add(kj::heapString(v.getLabel()));
    if (compare) header.add(kj::str("B/A"));
    cells.add(header.finish());
    for (auto r : rows) {
      auto line = kj::heapArrayBuilder<kj::String>(columns);
      line.add(truncated(rowName(r, step), NAME_WIDTH));
      for (auto c : r.getCells()) line.add(cellText(c, step));
      if (compare) line.add(ratioText(r.getRatio()));
      cells.add(line.finish());
    }
    auto widths = kj::heapArray<size_t>(columns);
    for (auto& w : widths) w = 0;
    for (auto& line : cells) {
      for (auto i : kj::indices(line)) widths[i] = kj::max(widths[i], line[i].size());
    }
    for (auto k : kj::indices(cells)) {
      auto& line = cells[k];
      kj::Vector<char> text;
      text.addAll(kj::StringPtr("  "));
      for (auto i : kj::indices(line)) {
        size_t pad = widths[i] - line[i].size();
        if (i == 0) {
          text.addAll(line[i]);
          for (size_t p = 0; p < pad; p++) text.add(' ');
        } else {
          text.addAll(kj::StringPtr("  "));
          for (size_t p = 0; p < pad; p++) text.add(' ');
          text.addAll(line[i]);
        }
      }
      if (k > 0) {
        auto r = rows[k - 1];
        if (r.getVaries()) text.addAll(kj::StringPtr("  ! varies"));
        else if (!compare && !step && r.getDiffers()) text.addAll(kj::StringPtr("  *"));
      }
      text.add('\0');
      lines.add(kj::String(text.releaseAsArray()));
    }
    lines.add(kj::str());
  };
  table(report.getTimeBase() == "wall" ? "step (wall us per iteration)"
                                       : "step (modeled us per iteration)",
        report.getSteps(), true);
  table("counter", report.getCounters(), false);
  if (report.getStepCounters().size() > 0) table("what each step changed", report.getStepCounters(), false);

  size_t differing = 0, varying = 0;
  kj::Vector<kj::String> varied;
  for (auto r : report.getCounters()) {
    differing += r.getDiffers();
    if (r.getVaries()) varied.add(kj::str(r.getGroup(), ".", r.getName()));
  }
  varying = varied.size();
  lines.add(kj::str(differing, " of ", report.getCounters().size(), " counters differ between ",
                    compare ? "A and B" : "values", "; ",
                    varying == 0 ? kj::str("every counter is identical over runs (deterministic)")
                                 : kj::str(varying, " vary over runs of one ", compare ? "side" : "value",
                                           " (marked !): ", kj::strArray(varied, ", "))));
  if (!compare) lines.add(kj::str("* = the counter differs between values"));
  return kj::str(kj::strArray(lines, "\n"), "\n");
}

// ======================================================================================
// CSV

namespace {

kj::String csvField(kj::StringPtr s) {
  bool quote = false;
  for (char c : s) quote = quote || c == ',' || c == '"' || c == '\n';
  if (!quote) return kj::heapString(s);
  kj::Vector<char> out;
  out.add('"');
  for (char c : s) {
    if (c == '"') out.add('"');
    out.add(c);
  }
  out.add('"');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String csvNumber(double v) {
  if (std::isnan(v)) return kj::str();
  if (std::isinf(v)) return kj::str("inf");
  char buf[32];
  snprintf(buf, sizeof(buf), "%.10g", v);
  return kj::str(buf);
}

}  // namespace

kj::String experimentCsv(rpc::ExperimentReport::Reader report) {
  kj::Vector<kj::String> lines;
  kj::Vector<kj::String> header;
  for (auto h : {"kind", "group", "name", "line"}) header.add(kj::str(h));
  for (auto v : report.getVariants()) {
    for (auto s : {"median", "min", "max"}) header.add(csvField(kj::str(v.getLabel(), "_", s)));
  }
  for (auto h : {"ratio", "differs", "varies"}) header.add(kj::str(h));
  lines.add(kj::strArray(header, ","));
  auto rows = [&](kj::StringPtr kind, capnp::List<rpc::ExperimentReport::Row>::Reader rows) {
    for (auto r : rows) {
      kj::Vector<kj::String> f;
      f.add(kj::heapString(kind));
      f.add(csvField(r.getGroup()));
      f.add(csvField(r.getName()));
      f.add(kj::str(r.getLine()));
      for (auto c : r.getCells()) {
        if (c.getPresent()) {
          f.add(csvNumber(c.getMedian()));
          f.add(csvNumber(c.getMin()));
          f.add(csvNumber(c.getMax()));
        } else {
          for (int i = 0; i < 3; i++) f.add(kj::str());
        }
      }
      f.add(csvNumber(r.getRatio()));
      f.add(kj::str(r.getDiffers() ? 1 : 0));
      f.add(kj::str(r.getVaries() ? 1 : 0));
      lines.add(kj::strArray(f, ","));
    }
  };
  rows("step_us", report.getSteps());   // in `timeBase`; the other base follows
  rows(report.getTimeBase() == "wall" ? "step_modeled_us" : "step_wall_us", report.getOtherSteps());
  rows("counter", report.getCounters());
  rows("step_counter", report.getStepCounters());
  // Provenance rows: kind "provenance", the key as group, the value as name.
  auto provenance = report.getProvenance();
  auto fact = [&](kj::StringPtr key, kj::StringPtr value) {
    lines.add(kj::str("provenance,", csvField(key), ",", csvField(value), ",0"));
  };
  fact("version", provenance.getVersion());
  fact("commit", provenance.getCommit());
  fact("build_mode", provenance.getBuildMode());
  if (provenance.getTiming().size() > 0) fact("timing", provenance.getTiming());
  for (auto m : provenance.getManifests()) {
    fact(kj::str("manifest ", m.getLabel()), m.getFile());
    for (auto o : m.getOverrides()) fact(kj::str("set ", m.getLabel()), o);
  }
  for (auto p : provenance.getParams()) fact("define", p);
  return kj::str(kj::strArray(lines, "\n"), "\n");
}

}  // namespace nb::experiment
