// The scenario runner: checks a loaded scenario against a composed system, runs its steps, and
// builds the report.
//
// Owns: step semantics (call, repeat, check), named values, expectations, per-step timing and
// the report. Drives the system only through the composer's root capability and components'
// interfaces (dynamic calls by method name), as an external client would.
// Does not own: parsing (scenario-file.h) or composing (system/composer).

#pragma once

#include "interfaces/composer.capnp.h"
#include "interfaces/scenario.capnp.h"
#include "system/runtime/contract.h"
#include "system/script/scenario-file.h"

#include <capnp/dynamic.h>
#include <kj/function.h>
#include <kj/map.h>
#include <chrono>

namespace nb {

// Limits check() enforces on `repeat`: its count, and how often nested repeats run a step.
constexpr uint64_t MAX_REPEAT_COUNT = 1000000;
constexpr uint64_t MAX_REPEAT_ITERATIONS = 10000000;

class ScenarioRunner {
public:
  // `registry` maps the interface IDs the root reports to schemas.
  // `memory`: the system's physical memory, for guest steps that write guest memory (a guest's
  // VCMDQ ring); without it those steps fail.
  // `statsRoot`: where each step's counter changes are read, when not through `root` (whose
  // calls a tracer records).
  ScenarioRunner(kj::WaitScope& waitScope, rpc::Root::Client root, const Registry& registry,
                 kj::Maybe<PhysMem&> memory = nullptr,
                 kj::Maybe<rpc::Root::Client> statsRoot = nullptr);
  ~ScenarioRunner() noexcept(false);

  // Semantic checks before anything runs: unknown instance or method, a step needing an
  // instance the manifest lacks, a name used before it is set, bad result paths. All of them.
  kj::Array<ScenarioError> check(const LoadedScenario& scenario);

  // Runs every step; the report's `ok` says whether every expectation held, and each step's
  // `deltas` what it changed in every instance's counters (read once the system settles). Values the scenario
  // saved are gone for the next scenario, but capabilities among them stay referenced until
  // the runner is destroyed: counters read in between see them alive, whatever the placement.
  void run(const LoadedScenario& scenario, rpc::ScenarioReport::Builder report);

  // Why a call by instance name, method name and text arguments cannot be made, if it cannot:
  // no such instance or method (with a did-you-mean), or arguments that are not its parameters.
  kj::Maybe<kj::String> checkCall(kj::StringPtr instance, kj::StringPtr method, kj::StringPtr args);

  // One call by instance name, method name and text arguments; returns the results as Cap'n
  // Proto text, addresses and registers in hex.
  kj::String call(kj::StringPtr instance, kj::StringPtr method, kj::StringPtr args);

  // What one step did, told as soon as it has run (every iteration inside a repeat, then the
  // repeat as a whole): `nestbed --trace` puts steps on the scenario's timeline and attributes
  // counter changes to them. Expectations have been checked; `ok` is the step's state so far.
  struct StepSpan {
    kj::StringPtr file;       // the scenario file
    uint32_t line;
    kj::StringPtr label;      // as the report shows it
    uint8_t depth;            // nesting level, as in StepReport
    uint32_t iteration;       // within the enclosing repeat (0 outside one)
    bool isRepeat;
    bool ok;
    std::chrono::steady_clock::time_point start, end;
    uint64_t modeledStart = 0, modeledEnd = 0;      // on the modeled clock, ns
    const ModeledClock::Totals* modeled = nullptr;  // what this iteration's modeled time went to
  };
  void observeSteps(kj::Function<void(const StepSpan&)> observer);

  // The modeled machine's clock (the composer's): every step reports the modeled time it took
  // and what it went to, and ends only when the background work it caused (an interrupt and
  // its handler) is done, waiting on `timer` for it. Without a clock, modeled times are zero.
  void setClock(ModeledClock& clock, kj::StringPtr profileName, kj::Timer& timer);

  // What the composer knows of component processes. With one, `kill` steps run, and a step that
  // meets a dead capability (DISCONNECTED) names what died; without one, `kill` steps are
  // refused by check() and such errors read as the RPC system words them.
  class Supervisor {
  public:
    virtual ~Supervisor() noexcept(false) = default;
    // Ends a process-placed instance's process; resolves once that was seen (and a restart,
    // if any, is done).
    virtual kj::Promise<void> kill(kj::StringPtr instance, int signal) = 0;
    // How many instances have ended so far, and one line naming each and what became of it.
    virtual size_t lossCount() = 0;
    virtual kj::Maybe<kj::String> losses() = 0;
    // Whether a child process has exited and the composer has not yet seen it.
    virtual bool exitPending() = 0;
  };
  void setSupervisor(Supervisor& supervisor);

  // Whether each step's `deltas` are read (default true): every instance's counters before and
  // after every step, a cost that grows with the number of instances. Benchmarks of per-step
  // costs in large systems (tests/bench:scale) turn it off; steps then report no deltas.
  void setStepCounters(bool on);

  struct Node;
  struct Impl;

private:
  kj::Own<Impl> impl_;
};

// The report as text, for people: each step with pass/fail, time and line, failed expectations
// with expected vs actual.
kj::String formatScenarioReport(rpc::ScenarioReport::Reader report);

}  // namespace nb
