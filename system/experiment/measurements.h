// Measurements over runs: every step timing and every counter of every run of each variant
// (compare: A and B; sweep: one per value), summarised per variant as median and min-max, and
// rendered as a text table, CSV, or the ExperimentReport that `--json` prints.
//
// Owns: which rows exist (steps that take time, every counter of every instance), the
// statistics, the ratio and the flags (`differs`, `varies`), and the text and CSV layouts.
// Does not own: running (session.h) or plotting (plot.h).

#pragma once

#include "interfaces/report.capnp.h"
#include "system/experiment/session.h"

#include <capnp/message.h>
#include <kj/map.h>

namespace nb::experiment {

struct VariantSpec {
  kj::String label;      // "A", "B", or a swept value ("series/value" with a series)
  kj::String manifest;
  kj::String value = nullptr;         // sweep: the value of the swept key
  kj::String seriesValue = nullptr;   // sweep with --series: the value of the series key
};

class Measurements {
public:
  Measurements(rpc::ExperimentReport::Kind kind, kj::Array<VariantSpec> variants);
  ~Measurements() noexcept(false);
  KJ_DISALLOW_COPY(Measurements);

  // One run of variant `variant` (its `run`-th, 1-based, for messages). A run that did not
  // reach its scenarios adds no samples; one whose scenarios failed adds them and a failure.
  void add(size_t variant, uint32_t run, const RunResult& result);
  // The same from a point's record (compare and sweep add every run this way; `merge` adds the
  // points it reads).
  void add(rpc::ExperimentPoint::Reader point);

  // Step rows in wall time (this machine's) instead of the modeled machine's time.
  void useWallTime(bool wall) { wall_ = wall; }

  // The report; `scenarios`, `overrides`, `param` and `repeats` describe the experiment.
  void fill(rpc::ExperimentReport::Builder report, kj::ArrayPtr<const kj::String> scenarios,
            kj::ArrayPtr<const kj::String> overrides, kj::StringPtr param, uint32_t repeats,
            kj::StringPtr series = nullptr);

  struct Row;

private:
  Row& row(kj::Vector<kj::Own<Row>>& rows, kj::String key, bool step);
  // A run that reached its scenarios (`startError` null) or did not start.
  void addRun(size_t variant, uint32_t run, rpc::RunReport::Reader report, kj::Maybe<kj::StringPtr> startError);

  rpc::ExperimentReport::Kind kind_;
  bool wall_ = false;
  kj::Array<VariantSpec> variants_;
  kj::Array<kj::Vector<kj::String>> failures_;   // per variant
  kj::Vector<kj::Own<Row>> steps_;
  kj::Vector<kj::Own<Row>> otherSteps_;   // the same steps in the other time base
  kj::Vector<kj::Own<Row>> counters_;
  kj::Vector<kj::Own<Row>> stepCounters_;
  kj::HashMap<kj::String, Row*> byKey_;
  kj::Array<kj::Own<capnp::MallocMessageBuilder>> manifests_;   // per variant, its first run's
  kj::String timing_;                                           // the first run's cost profile
};

// For people: the rows side by side, median [min-max] when there are several runs, the ratio,
// flags, and a summary of what differs and what varies.
kj::String formatExperiment(rpc::ExperimentReport::Reader report);

// The same rows as CSV, one line per row: kind, group, name, line, then median, min and max per
// variant, then ratio, differs, varies.
kj::String experimentCsv(rpc::ExperimentReport::Reader report);

// How messages name a variant: "B", "hw.smmuv3.0.iotlb_entries=64", or with a series
// "components.q.impl=smmu_queue/native hw.smmuv3.0.iotlb_entries=64".
kj::String variantName(rpc::ExperimentReport::Reader report, rpc::ExperimentReport::Variant::Reader variant);

// A row's display name: "page_table.capnp:42 label" for steps, "instance.counter" for counters,
// "page_table.capnp:42 label: instance.counter" for step counters (rows with `step` set).
kj::String rowName(rpc::ExperimentReport::Row::Reader row, bool step);

}  // namespace nb::experiment
