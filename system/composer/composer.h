// The composer: a validated Plan -> physical memory -> hardware models and components started in
// dependency order -> wiring -> a root capability.
//
// Owns: every instance's lifetime — inline (a local capability in this process) or process (a
// system/host child over a socketpair carrying two-party RPC), the child-exit watch, the restart
// policy and rewiring, orderly shutdown in reverse order, and the root capability
// (interfaces/composer.capnp Root). Does not own: manifest validation (manifest.h) or any
// component's behaviour.

#pragma once

#include "hw/mem/frame-allocator.h"
#include "interfaces/composer.capnp.h"
#include "system/composer/manifest.h"

#include <capnp/membrane.h>

#include <kj/async-io.h>

namespace nb {

// Sees every capability the composer hands an instance — each wired role and the frame
// allocator — and returns what the instance gets instead (`nestbed --trace` wraps them in a
// recording membrane). `caller` is the instance receiving the capability, `callee` the instance
// serving it ("memory" for the frame allocator).
using Interposer = kj::Function<capnp::Capability::Client(
    kj::StringPtr caller, kj::StringPtr callee, capnp::Capability::Client cap)>;

struct ComposerOptions {
  kj::String hostBinary;                      // the component host executable
  kj::Function<void(kj::StringPtr)> report;   // composer events: exits, signals, restarts
  kj::Maybe<Interposer> interpose = nullptr;  // null: instances get the capabilities themselves
};

// A process-placed instance that ended while the system ran, as the composer saw it.
struct Loss {
  kj::String instance;
  kj::String what;            // "component 'x' (pid N) killed by signal 9 (Killed)"
  bool expected = false;      // asked for (Composer::kill, a scenario's `kill` step)
  bool duringShutdown = false;
  enum class After { DEAD, RESTARTED_RECOVERED };
  After after = After::DEAD;
};

struct InstanceStats {
  kj::String name;
  kj::String impl;
  kj::Vector<Stat> counters;
};

class Composer {
public:
  // The caller must have called kj::UnixEventPort::captureChildExit() before creating `io`.
  Composer(kj::AsyncIoContext& io, const Registry& registry, Plan plan, ComposerOptions options);
  ~Composer() noexcept(false);
  KJ_DISALLOW_COPY(Composer);

  // Creates memory and starts every instance in order. Rejects (naming the instance) if one
  // cannot be started; instances already started are shut down again.
  kj::Promise<void> start();

  // Shuts every instance down in reverse start order; children are waited for (and killed if
  // they do not exit).
  kj::Promise<void> shutdown();

  rpc::Root::Client root();
  const Plan& plan() const { return plan_; }
  PhysMem& memory();
  FrameAllocator& frames();
  // The modeled machine's clock (system/runtime/modeled-time.h), shared with every process.
  ModeledClock& clock();

  // Every instance's counters, plus hw/mem's own, in start order.
  kj::Promise<kj::Array<InstanceStats>> stats();
  kj::Promise<kj::Array<kj::Tuple<kj::String, kj::Array<StructureInfo>>>> structures();

  // Test hook: the pid serving a process-placed instance (null for inline).
  kj::Maybe<pid_t> pidOf(kj::StringPtr name);

  // Fault injection: sends `signal` (SIGKILL, SIGTERM, SIGSEGV or SIGABRT) to a process-placed
  // instance; resolves once its exit was seen and, with restart = "on-failure", once the new
  // process serves (or its restart failed). Rejects naming why for an inline or stopped one.
  kj::Promise<void> kill(kj::StringPtr name, int signal);

  // Every instance that ended unasked for or was killed, in order.
  kj::ArrayPtr<const Loss> losses() const { return losses_; }
  // One line naming what died and what became of it, for an error that met a dead capability
  // (DISCONNECTED); null when nothing died.
  kj::Maybe<kj::String> describeLosses() const;
  // Whether a child has exited that the composer has not yet seen (its exit is being reaped).
  bool exitPending() const;

  struct Instance;
  // `cap` (served by `callee`) as its callers get it: calls on it, and on every capability it
  // hands out, charge the modeled cost of crossing `callee`'s boundary.
  capnp::Capability::Client crossInto(Instance& callee, capnp::Capability::Client cap);

private:
  kj::Promise<void> startInstance(Instance& inst);
  kj::Promise<void> startInline(Instance& inst);
  kj::Promise<void> startProcess(Instance& inst);
  void watchChild(Instance& inst);
  Instance& instance(kj::StringPtr name);
  capnp::Capability::Client handOut(const Instance& to, kj::StringPtr from, capnp::Capability::Client cap);

  kj::AsyncIoContext& io_;
  const Registry& registry_;
  Plan plan_;
  ComposerOptions options_;
  kj::Own<ModeledClock> ownClock_;   // null when timing is off
  kj::Own<capnp::MembranePolicy> crossingRoot_;
  ModeledClock* clock_;
  kj::Own<PhysMem> mem_;
  kj::Own<FrameAllocator> frameAllocator_;
  kj::Maybe<rpc::FrameAllocator::Client> frames_;
  kj::Vector<kj::Own<Instance>> instances_;
  kj::Own<kj::TaskSet> tasks_;
  kj::Vector<Loss> losses_;
  bool stopping_ = false;
};

}  // namespace nb
