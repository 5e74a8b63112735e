// `--trace FILE`: a Chrome trace-event file (JSON; loads in Perfetto and chrome://tracing) of
// one or more runs.
//
// What it records, each run with its own set of timelines (a "process" per instance, the
// scenario and hw/mem's frame allocator "memory"):
//   - every RPC between instances, and from the scenario to instances: a complete event ("X")
//     on the callee's timeline, in a thread per caller, named Interface.method, with caller,
//     callee, interface and method in its args (and the exception type if it failed). Calls in
//     flight together that do not nest go to extra threads ("calls from ep0 (2)"): a thread's
//     slices must nest;
//   - every scenario step: a complete event on the scenario's timeline;
//   - every counter an instance's stats() changed during a step: a counter event ("C");
//   - for hw/smmuv3 instances, the SMMU commands consumed and events produced during each step:
//     an instant event ("i") per opcode (CMD_CFGI_STE, ...) and per event-queue outcome, with
//     the count, on the SMMU's "commands" and "events" threads. These come from the step's
//     stat deltas (cmdq_op_*, evtq_*), so they carry the step's end time, not the command's:
//     the model keeps no per-command log that a process-placed SMMU could hand back.
//
// How RPCs are seen: every capability the composer hands an instance (ComposerOptions::
// interpose) and every main capability the scenario gets from the root is wrapped in a
// capnp::membrane whose policy knows who holds it and who serves it. A call on it is redirected
// through a timing forwarder; capabilities crossing in its parameters or results are re-wrapped
// for their new holder (or unwrapped, when they return to the instance that serves them, so
// identity is kept). Calls between processes already relay through the composer (two-party
// RPC has no three-party handoff), so the same membranes see them: inline and process placement
// are traced alike. Lifecycle calls (stats, shutdown) are not recorded.
//
// Not thread-safe: one event loop.

#pragma once

#include "system/composer/composer.h"
#include "system/script/runner.h"

#include <chrono>

namespace nb::experiment {

class Tracer {
public:
  explicit Tracer(const Registry& registry);   // interface and method names come from its schemas

  // The modeled machine's clock (system/runtime/modeled-time.h): steps and calls also go on a
  // modeled-time timeline.
  void useClock(ModeledClock& clock);
  ~Tracer() noexcept(false);
  KJ_DISALLOW_COPY(Tracer);

  // A run's timelines are named "<label> <instance>" ("<instance>" when the label is empty).
  // Every capability wrapped until endRun() records into this run.
  void beginRun(kj::StringPtr label, const Plan& plan);
  void endRun();

  Interposer interposer();                              // for ComposerOptions::interpose
  rpc::Root::Client scenarioRoot(rpc::Root::Client root);   // the root the scenario runner uses

  void step(const ScenarioRunner::StepSpan& span);
  // Every instance's counters at `at`: the first call of a run is the baseline, later calls
  // record what changed since the previous one.
  void counters(kj::Array<InstanceStats> stats, std::chrono::steady_clock::time_point at);

  uint64_t rpcEvents() const;        // RPCs recorded so far, over all runs
  uint64_t smmuCommands() const;     // SMMU commands counted in command instants, over all runs

  kj::String json();                 // the whole trace file
  kj::Maybe<kj::String> write(kj::StringPtr path);   // null, or why it could not be written

  struct Impl;

private:
  kj::Own<Impl> impl_;
};

}  // namespace nb::experiment
