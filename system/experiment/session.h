// One run: compose a manifest, check and run scenarios on it, collect every component's stats,
// shut it down. What `nestbed run` does once, and `compare` and `sweep` do once per repeat.
//
// Owns: the order of a run (start, check, run, stats, shutdown) and what it returns — the
// report as data (interfaces/report.capnp RunReport), or why there is none. Does not own:
// printing (system/cli), aggregating runs (measurements.h) or tracing (trace.h, driven from
// here when asked).

#pragma once

#include "interfaces/report.capnp.h"
#include "system/composer/composer.h"
#include "system/script/runner.h"

#include <capnp/message.h>

namespace nb::experiment {

class Tracer;

struct RunOptions {
  const Registry& registry;
  kj::StringPtr hostBinary;               // nestbed-host, for process-placed instances
  kj::Function<void(kj::StringPtr)> onEvent;   // each composer event (exits, restarts) as it happens
  kj::Maybe<Tracer&> tracer = nullptr;    // record this run's RPCs and per-step counter changes
  kj::StringPtr traceLabel = nullptr;     // the run's name on the trace ("A#1", "ratio=2")
  // Called after the scenarios, while what they saved is still held, before shutdown
  // (`run --dump-memory`: the tables a scenario created are in the sidecar).
  kj::Maybe<kj::Function<void(Composer&, kj::WaitScope&)>> beforeShutdown = nullptr;
  // Provenance: what the report records beside the plan's manifest.
  kj::ArrayPtr<const Override> overrides = nullptr;   // applied to the plan
  kj::ArrayPtr<const ScenarioParam> params = nullptr; // the scenario parameters given
  bool stepCounters = true;               // each step's deltas (ScenarioRunner::setStepCounters)
};

// The build, the plan's manifest with `overrides` applied, and `params`, as a report records them.
void fillProvenance(rpc::Provenance::Builder out, const Plan& plan, kj::StringPtr label,
                    kj::ArrayPtr<const Override> overrides, kj::ArrayPtr<const ScenarioParam> params);

struct RunResult {
  enum class Outcome {
    RAN,            // the scenarios ran: `report` says whether every expectation held
    START_FAILED,   // an instance could not be started: `error` names it
    CHECK_FAILED,   // a scenario does not fit this manifest: `checkErrors`
  };
  Outcome outcome;
  kj::Own<capnp::MallocMessageBuilder> message;   // owns `report`
  rpc::RunReport::Builder report;                 // scenarios, stats, events (RAN only)
  kj::String error;
  kj::Array<ScenarioError> checkErrors;

  bool ok() const { return outcome == Outcome::RAN && report.asReader().getOk(); }
  // The scenarios that failed, by file (RAN only).
  kj::Array<kj::StringPtr> failedScenarios() const;
};

// Runs `scenarios` (loaded once, reusable across runs) on `plan`. The caller has called
// kj::UnixEventPort::captureChildExit() before creating `io`. Never throws for a failure of the
// system under test: a component that cannot start is a START_FAILED result.
RunResult runOnce(kj::AsyncIoContext& io, Plan plan, kj::ArrayPtr<const LoadedScenario> scenarios,
                  RunOptions& options);

// The stats of a composed system as the report's InstanceStats list.
void fillStats(rpc::RunReport::Builder report, kj::ArrayPtr<const InstanceStats> stats);

}  // namespace nb::experiment
