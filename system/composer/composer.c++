// The composer. See composer.h.

#include "system/composer/composer.h"

#include "hw/mem/frame-allocator-server.h"
#include "interfaces/host.capnp.h"

#include <capnp/membrane.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <signal.h>
#include <sstream>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace nb {

namespace {

// A capability whose target can be replaced: what dependants of a restartable component hold,
// so a restart rewires them without their noticing (calls in flight when the old process died
// still fail with DISCONNECTED, as they must).
class Redirector final : public capnp::Capability::Server {
public:
  explicit Redirector(capnp::Capability::Client target) : target_(kj::mv(target)) {}
  void retarget(capnp::Capability::Client target) { target_ = kj::mv(target); }

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    auto params = context.getParams();
    auto request = target_.typelessRequest(interfaceId, methodId, params.targetSize());
    request.set(params);
    context.releaseParams();
    return {context.tailCall(kj::mv(request)), false};
  }

private:
  capnp::Capability::Client target_;
};

// Modeled crossings: every call entering an instance whose `boundary` has a cost charges it.
// One child policy per instance, all under one root, so that a capability keeps its identity
// however it travels: one served by X is wrapped by X's policy whenever it is outside X (its
// calls charge X's crossing), and unwrapped when it goes back into X (X finds its own object).
// A call out of an instance on a capability it was given is charged where that capability
// enters its server, if it was ever wrapped; a callback object passed in parameters and never
// wrapped (a listener) costs no crossing.
class CrossingPolicy;

class CrossingRoot final : public capnp::MembranePolicy, public kj::Refcounted {
public:
  CrossingPolicy* probed = nullptr;   // set by a policy answering isCrossing()'s probe

  kj::Maybe<capnp::Capability::Client> inboundCall(uint64_t, uint16_t,
                                                   capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Maybe<capnp::Capability::Client> outboundCall(uint64_t, uint16_t,
                                                    capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Own<capnp::MembranePolicy> addRef() override { return kj::addRef(*this); }

  // A capability wrapped by `exportPolicy` (X's) enters `importPolicy`'s instance: back home it
  // is X's own object; anywhere else it stays a capability into X.
  capnp::Capability::Client importInternal(capnp::Capability::Client internal,
                                           capnp::MembranePolicy& exportPolicy,
                                           capnp::MembranePolicy& importPolicy) override {
    if (&exportPolicy == &importPolicy) return internal;
    return capnp::membrane(kj::mv(internal), exportPolicy.addRef());
  }
};

// Method IDs no schema uses: membranes are probed with calls on them that are never sent
// (`--trace` probes its own; these membranes answer theirs).
constexpr uint64_t TRACE_PROBE_INTERFACE_ID = 0xe7c1a5d3b9f20417ull;
constexpr uint64_t CROSSING_PROBE_INTERFACE_ID = 0xb54f0c2e9a7d3e61ull;

class CrossingPolicy final : public capnp::MembranePolicy, public kj::Refcounted {
public:
  CrossingPolicy(CrossingRoot& root, ModeledClock& clock, Cost cost)
      : root(kj::addRef(root)), clock(clock), cost(cost) {}
  kj::Maybe<capnp::Capability::Client> inboundCall(uint64_t interfaceId, uint16_t,
                                                   capnp::Capability::Client) override {
    if (interfaceId == CROSSING_PROBE_INTERFACE_ID) {
      root->probed = this;
    } else if (interfaceId != TRACE_PROBE_INTERFACE_ID) {
      clock.charge(cost);
    }
    return nullptr;
  }
  // A capability going out of this instance that already leads into another one (it came in
  // wrapped and is handed on): it stays as it is, charging its own server's crossing.
  capnp::Capability::Client exportInternal(capnp::Capability::Client internal) override {
    if (isCrossing(internal)) return internal;
    return capnp::MembranePolicy::exportInternal(kj::mv(internal));
  }
  kj::Maybe<capnp::Capability::Client> outboundCall(uint64_t, uint16_t,
                                                    capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Own<capnp::MembranePolicy> addRef() override { return kj::addRef(*this); }
  capnp::MembranePolicy& rootPolicy() override { return *root; }

private:
  // Whether `cap` is wrapped by one of these membranes (going into its instance).
  bool isCrossing(capnp::Capability::Client& cap) {
    auto hook = capnp::ClientHook::from(kj::cp(cap));
    for (;;) {
      KJ_IF_MAYBE(resolved, hook->getResolved()) {
        hook = resolved->addRef();
      } else {
        break;
      }
    }
    if (hook->getBrand() != membraneBrand()) return false;
    root->probed = nullptr;
    { auto unsent = hook->newCall(CROSSING_PROBE_INTERFACE_ID, 0, capnp::MessageSize{4, 0}); }
    bool found = root->probed != nullptr;
    root->probed = nullptr;
    return found;
  }
  static const void* membraneBrand() {
    static const void* brand = capnp::ClientHook::from(capnp::membrane(
        capnp::Capability::Client(capnp::newBrokenCap("brand")), kj::refcounted<CrossingRoot>()))
        ->getBrand();
    return brand;
  }

  kj::Own<CrossingRoot> root;
  ModeledClock& clock;
  Cost cost;
};

kj::String describeExit(int status) {
  if (WIFEXITED(status)) return kj::str("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return kj::str("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  }
  return kj::str("ended with wait status ", status);
}

}  // namespace

struct Composer::Instance {
  const InstancePlan& plan;
  kj::Maybe<rpc::Component::Client> component;
  kj::Maybe<capnp::Capability::Client> main;  // what dependants and the root hand out
  kj::Maybe<Redirector&> redirector;          // set when restart = on-failure
  kj::Own<ComponentContext> context;          // inline only: outlives the factory's promise
  kj::Maybe<kj::Own<CrossingPolicy>> crossing;  // its boundary's membrane; null: no cost

  // Process placement.
  kj::Maybe<pid_t> pid;                       // cleared by onChildExit when the child is reaped
  pid_t lastPid = 0;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> exited;
  kj::ForkedPromise<void> exitPromise = kj::Promise<void>(kj::READY_NOW).fork();
  kj::ForkedPromise<void> restarted = kj::Promise<void>(kj::READY_NOW).fork();
  unsigned restarts = 0;
  bool started = false;
  bool killAsked = false;       // Composer::kill sent the signal that ends it
  bool shutdownAsked = false;   // shutdown() asked it to exit
  bool killedAtShutdown = false;  // it did not exit within the grace period

  explicit Instance(const InstancePlan& plan) : plan(plan) {}
};

Composer::Composer(kj::AsyncIoContext& io, const Registry& registry, Plan plan, ComposerOptions options)
    : io_(io), registry_(registry), plan_(kj::mv(plan)), options_(kj::mv(options)),
      ownClock_(plan_.timing.enabled ? ModeledClock::create(plan_.timing.profile)
                                     : kj::Own<ModeledClock>()),
      clock_(plan_.timing.enabled ? ownClock_.get() : &ModeledClock::off()) {
  struct ErrorHandler final : public kj::TaskSet::ErrorHandler {
    Composer& composer;
    explicit ErrorHandler(Composer& c) : composer(c) {}
    void taskFailed(kj::Exception&& e) override {
      composer.options_.report(kj::str("composer task failed: ", e.getDescription()));
    }
  };
  auto handler = kj::heap<ErrorHandler>(*this);
  tasks_ = kj::heap<kj::TaskSet>(*handler).attach(kj::mv(handler));
  for (auto& p : plan_.instances) instances_.add(kj::heap<Instance>(p));
}

Composer::~Composer() noexcept(false) {
  // Children still running (a failed start, an abandoned run) must not outlive us.
  for (auto& inst : instances_) {
    KJ_IF_MAYBE(pid, inst->pid) { ::kill(*pid, SIGKILL); }
  }
}

capnp::Capability::Client Composer::crossInto(Instance& callee, capnp::Capability::Client cap) {
  if (callee.crossing == nullptr) {
    KJ_IF_MAYBE(cost, crossingCost(callee.plan.boundary)) {
      if (!clock_->enabled()) return cap;
      if (crossingRoot_.get() == nullptr) crossingRoot_ = kj::refcounted<CrossingRoot>();
      callee.crossing = kj::refcounted<CrossingPolicy>(kj::downcast<CrossingRoot>(*crossingRoot_),
                                                       *clock_, *cost);
    } else {
      return cap;
    }
  }
  return capnp::membrane(kj::mv(cap), KJ_ASSERT_NONNULL(callee.crossing)->addRef());
}

PhysMem& Composer::memory() { return *mem_; }
ModeledClock& Composer::clock() { return *clock_; }
FrameAllocator& Composer::frames() { return *frameAllocator_; }

Composer::Instance& Composer::instance(kj::StringPtr name) {
  for (auto& i : instances_) if (i->plan.name == name) return *i;
  KJ_FAIL_REQUIRE("no such instance", name);
}

kj::Maybe<pid_t> Composer::pidOf(kj::StringPtr name) { return instance(name).pid; }

capnp::Capability::Client Composer::handOut(const Instance& to, kj::StringPtr from,
                                            capnp::Capability::Client cap) {
  KJ_IF_MAYBE(interpose, options_.interpose) { return (*interpose)(to.plan.name, from, kj::mv(cap)); }
  return cap;
}

kj::Promise<void> Composer::start() {
  auto& m = plan_.memory;
  KJ_IF_MAYBE(file, m.file) {
    mem_ = PhysMem::createFile(*file, m.base, m.size);
  } else {
    mem_ = PhysMem::createAnonymous(m.base, m.size);
  }
  frameAllocator_ = kj::heap<FrameAllocator>(m.base, m.size);
  frames_ = serveFrameAllocator(*frameAllocator_);

  kj::Promise<void> chain = kj::READY_NOW;
  for (auto& inst : instances_) {
    chain = chain.then([this, &inst = *inst]() { return startInstance(inst); });
  }
  return chain;
}

kj::Promise<void> Composer::startInstance(Instance& inst) {
  auto started = inst.plan.placement == Placement::INLINE ? startInline(inst) : startProcess(inst);
  return started.then([this, &inst]() {
    auto component = KJ_ASSERT_NONNULL(inst.component);
    return component.mainRequest(capnp::MessageSize{4, 0}).send().then([this, &inst](auto response) {
      auto main = response.getCap();
      KJ_IF_MAYBE(r, inst.redirector) {
        r->retarget(kj::mv(main));
      } else if (inst.plan.restart == Restart::ON_FAILURE) {
        auto redirector = kj::heap<Redirector>(kj::mv(main));
        inst.redirector = *redirector;
        inst.main = capnp::Capability::Client(kj::mv(redirector));
      } else {
        inst.main = kj::mv(main);
      }
      inst.started = true;
    });
  }, [&inst](kj::Exception&& e) -> kj::Promise<void> {
    // Named where the manifest declares the instance: a start error is a manifest error too.
    auto& pos = inst.plan.pos;
    auto where = pos.line == 0 ? kj::str(pos.file, ": ")
                               : kj::str(pos.file, ":", pos.line, ":", pos.column, ": ");
    return kj::Exception(e.getType(), e.getFile(), e.getLine(),
                         kj::str(where, "starting '", inst.plan.name, "' (", inst.plan.impl,
                                 "): ", e.getDescription()));
  });
}

kj::Promise<void> Composer::startInline(Instance& inst) {
  inst.context = kj::heap<ComponentContext>(inst.plan.name, *inst.plan.type, inst.plan.settings, *mem_,
                                            handOut(inst, "memory", KJ_ASSERT_NONNULL(frames_)).castAs<rpc::FrameAllocator>(),
                                            io_.provider->getTimer(), *clock_);
  for (auto& w : inst.plan.uses) {
    auto& callee = instance(w.target);
    inst.context->bind(w.role, handOut(inst, w.target, crossInto(callee, KJ_ASSERT_NONNULL(callee.main))));
  }
  return inst.plan.type->factory(*inst.context).then([&inst](rpc::Component::Client c) {
    inst.component = kj::mv(c);
  });
}

kj::Promise<void> Composer::startProcess(Instance& inst) {
  int fds[2];
  KJ_SYSCALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  // Arguments are built before fork: the child only dup()s and exec()s.
  auto sockArg = kj::str("--socket-fd=", 3);
  kj::String memArgs[] = {kj::str("--mem-fd=", 4), kj::str("--mem-base=", mem_->base()),
                          kj::str("--mem-size=", mem_->size()), kj::str("--name=", inst.plan.name),
                          kj::str("--clock-fd=", 5)};
  // Without timing there is no clock page: the host charges nothing.
  const char* argv[] = {options_.hostBinary.cStr(), sockArg.cStr(), memArgs[0].cStr(),
                        memArgs[1].cStr(),          memArgs[2].cStr(), memArgs[3].cStr(),
                        clock_->enabled() ? memArgs[4].cStr() : nullptr, nullptr};
  int memFd = mem_->fd();
  int clockFd = clock_->enabled() ? clock_->fd() : memFd;
  pid_t pid;
  KJ_SYSCALL(pid = fork());
  if (pid == 0) {
    // Child: fds 3, 4 and 5 become the socket, the memory and the modeled clock.
    int sock = dup(fds[1]);
    int mem = dup(memFd);
    int clk = dup(clockFd);
    if (sock < 0 || mem < 0 || clk < 0 || dup2(sock, 3) < 0 || dup2(mem, 4) < 0 ||
        dup2(clk, 5) < 0) {
      _exit(126);
    }
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  close(fds[1]);
  inst.pid = pid;
  inst.lastPid = pid;
  watchChild(inst);

  inst.stream = io_.lowLevelProvider->wrapSocketFd(fds[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  inst.rpc = kj::heap<capnp::TwoPartyClient>(*inst.stream);
  auto host = inst.rpc->bootstrap().castAs<rpc::ComponentHost>();

  auto req = host.startRequest();
  req.setInstance(inst.plan.name);
  req.setImpl(inst.plan.impl);
  std::ostringstream settings;
  settings << inst.plan.settings;
  req.setSettings(settings.str().c_str());
  auto uses = req.initUses(inst.plan.uses.size());
  for (auto i : kj::indices(inst.plan.uses)) {
    auto& w = inst.plan.uses[i];
    uses[i].setRole(w.role);
    auto& callee = instance(w.target);
    uses[i].setCap(handOut(inst, w.target, crossInto(callee, KJ_ASSERT_NONNULL(callee.main))));
  }
  req.setFrames(handOut(inst, "memory", KJ_ASSERT_NONNULL(frames_)).castAs<rpc::FrameAllocator>());
  return req.send().then([&inst](auto response) { inst.component = response.getComponent(); });
}

void Composer::watchChild(Instance& inst) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  inst.exited = kj::mv(paf.fulfiller);
  inst.exitPromise = paf.promise.fork();
  tasks_->add(io_.unixEventPort.onChildExit(inst.pid).then([this, &inst](int status) -> kj::Promise<void> {
    KJ_IF_MAYBE(f, inst.exited) { (*f)->fulfill(); }
    inst.exited = nullptr;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool expected = inst.killAsked;
    inst.killAsked = false;
    auto what = kj::str("component '", inst.plan.name, "' (pid ", inst.lastPid, ") ",
                        describeExit(status));
    if (stopping_) {
      // Asked to exit and did: nothing to say. Anything else is a death during shutdown.
      if (inst.shutdownAsked && (clean || inst.killedAtShutdown)) {
        if (inst.killedAtShutdown) {
          auto late = kj::str("component '", inst.plan.name, "' (pid ", inst.lastPid,
                              ") did not exit within 2 s of shutdown and was killed");
          options_.report(late);
          losses_.add(Loss{kj::heapString(inst.plan.name), kj::mv(late), false, true});
        }
        return kj::READY_NOW;
      }
      options_.report(kj::str(what, " during shutdown"));
      losses_.add(Loss{kj::heapString(inst.plan.name), kj::str(what, " during shutdown"),
                       expected, true});
      return kj::READY_NOW;
    }
    options_.report(what);
    // Everyone holding its capabilities now gets DISCONNECTED; drop ours.
    inst.component = nullptr;
    inst.rpc = nullptr;
    inst.stream = nullptr;
    if (inst.plan.restart != Restart::ON_FAILURE || clean || !inst.started) {
      losses_.add(Loss{kj::heapString(inst.plan.name), kj::mv(what), expected});
      if (inst.redirector == nullptr) inst.main = nullptr;
      return kj::READY_NOW;
    }
    // Restart, and rewire: the redirector waits for the new process, then forwards to it. Only
    // an implementation that recovers its state (or keeps none) may be restarted (manifest.c++):
    // what the old process handed out fails, named; what was wired to it carries on.
    KJ_ASSERT(inst.plan.type->recovery != Recovery::NONE);
    inst.restarts++;
    size_t lossIndex = losses_.size();
    losses_.add(Loss{kj::heapString(inst.plan.name), kj::heapString(what), expected, false,
                     Loss::After::RESTARTED_RECOVERED});
    auto paf = kj::newPromiseAndFulfiller<capnp::Capability::Client>();
    KJ_ASSERT_NONNULL(inst.redirector).retarget(capnp::Capability::Client(kj::mv(paf.promise)));
    auto fulfiller = kj::mv(paf.fulfiller);
    auto done = startProcess(inst)
        .then([&inst]() {
          return KJ_ASSERT_NONNULL(inst.component).mainRequest().send();
        })
        .then([this, &inst, fulfiller = kj::mv(fulfiller)](auto response) mutable {
          auto main = response.getCap();
          KJ_ASSERT_NONNULL(inst.redirector).retarget(main);
          fulfiller->fulfill(kj::mv(main));
          options_.report(kj::str("component '", inst.plan.name, "' restarted (pid ", inst.lastPid,
                                  ", restart ", inst.restarts, ")"));
        }, [this, &inst, lossIndex, what = kj::mv(what)](kj::Exception&& e) {
          auto failed = kj::str(what, "; its restart failed: ", e.getDescription());
          options_.report(failed);
          KJ_ASSERT_NONNULL(inst.redirector)
              .retarget(capnp::Capability::Client(
                  capnp::newBrokenCap(KJ_EXCEPTION(DISCONNECTED, kj::heapString(failed)))));
          losses_[lossIndex].what = kj::mv(failed);
          losses_[lossIndex].after = Loss::After::DEAD;
          inst.component = nullptr;
        }).fork();
    inst.restarted = done.addBranch().fork();
    return done.addBranch();
  }));
}

kj::Promise<void> Composer::kill(kj::StringPtr name, int signal) {
  auto& inst = instance(name);
  KJ_REQUIRE(signal == SIGKILL || signal == SIGTERM || signal == SIGSEGV || signal == SIGABRT,
             "kill: only SIGKILL (9), SIGTERM (15), SIGSEGV (11) or SIGABRT (6) end a component",
             signal);
  if (inst.plan.placement != Placement::PROCESS) {
    return KJ_EXCEPTION(FAILED, kj::str("kill: '", name, "' is inline-placed; only a "
                                        "process-placed instance can be killed"));
  }
  KJ_IF_MAYBE(pid, inst.pid) {
    inst.killAsked = true;
    ::kill(*pid, signal);
    return inst.exitPromise.addBranch().then([&inst]() {
      // The exit handler has run: a restart, if any, is under way.
      return inst.restarted.addBranch();
    });
  }
  return KJ_EXCEPTION(DISCONNECTED, kj::str("kill: component '", name, "' is not running"));
}

bool Composer::exitPending() const {
  for (auto& inst : instances_) {
    KJ_IF_MAYBE(pid, inst->pid) {
      // WNOWAIT: look without reaping; the event port's SIGCHLD handler reaps it.
      siginfo_t info;
      memset(&info, 0, sizeof(info));
      if (waitid(P_PID, *pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == *pid) {
        return true;
      }
    }
  }
  return false;
}

kj::Maybe<kj::String> Composer::describeLosses() const {
  if (losses_.empty()) return nullptr;
  kj::Vector<kj::String> parts;
  for (auto& l : losses_) {
    switch (l.after) {
      case Loss::After::DEAD:
        parts.add(kj::str(l.what, ": DISCONNECTED"));
        break;
      case Loss::After::RESTARTED_RECOVERED:
        parts.add(kj::str(l.what, ", then restarted and recovered: capabilities it had "
                                  "handed out are DISCONNECTED"));
        break;
    }
  }
  return kj::strArray(parts, "; ");
}

kj::Promise<void> Composer::shutdown() {
  stopping_ = true;
  kj::Promise<void> chain = kj::READY_NOW;
  for (size_t i = instances_.size(); i-- > 0;) {
    auto& inst = *instances_[i];
    chain = chain.then([this, &inst]() -> kj::Promise<void> {
      KJ_IF_MAYBE(c, inst.component) {
        inst.shutdownAsked = true;
        auto done = c->shutdownRequest().send().ignoreResult().catch_([](kj::Exception&&) {});
        if (inst.pid == nullptr) return done;
        // A process-placed host exits after shutdown; give it a moment, then insist.
        return done.then([this, &inst]() {
          return inst.exitPromise.addBranch().exclusiveJoin(
              io_.provider->getTimer().afterDelay(2 * kj::SECONDS).then([&inst]() {
                inst.killedAtShutdown = true;
                KJ_IF_MAYBE(pid, inst.pid) { ::kill(*pid, SIGKILL); }
                return inst.exitPromise.addBranch();
              }));
        });
      }
      return kj::READY_NOW;
    }).then([&inst]() {
      inst.component = nullptr;
      inst.main = nullptr;
      inst.rpc = nullptr;
      inst.stream = nullptr;
      inst.context = nullptr;
    });
  }
  return chain;
}

kj::Promise<kj::Array<InstanceStats>> Composer::stats() {
  auto promises = kj::heapArrayBuilder<kj::Promise<InstanceStats>>(instances_.size());
  for (auto& inst : instances_) {
    KJ_IF_MAYBE(c, inst->component) {
      promises.add(c->statsRequest().send().then([&inst = *inst](auto response) {
        InstanceStats s{kj::heapString(inst.plan.name), kj::heapString(inst.plan.impl), {}};
        for (auto c : response.getCounters()) s.counters.add(Stat{kj::heapString(c.getName()), c.getValue()});
        return s;
      }, [this, &inst = *inst](kj::Exception&& e) {
        // A process that died and is not reaped yet (or being restarted): no counters, and
        // say so, rather than failing everyone's stats.
        options_.report(kj::str("stats of '", inst.plan.name, "' failed: ", e.getDescription()));
        return InstanceStats{kj::heapString(inst.plan.name), kj::heapString(inst.plan.impl), {}};
      }));
    } else {
      promises.add(InstanceStats{kj::heapString(inst->plan.name), kj::heapString(inst->plan.impl), {}});
    }
  }
  return kj::joinPromises(promises.finish()).then([this](kj::Array<InstanceStats> all) {
    auto out = kj::heapArrayBuilder<InstanceStats>(all.size() + 1);
    InstanceStats mem{kj::str("memory"), kj::str("hw/mem"), {}};
    mem.counters.add(Stat{kj::str("size_bytes"), frameAllocator_->size()});
    mem.counters.add(Stat{kj::str("used_bytes"), frameAllocator_->usedBytes()});
    out.add(kj::mv(mem));
    for (auto& s : all) out.add(kj::mv(s));
    return out.finish();
  });
}

kj::Promise<kj::Array<kj::Tuple<kj::String, kj::Array<StructureInfo>>>> Composer::structures() {
  using Entry = kj::Tuple<kj::String, kj::Array<StructureInfo>>;
  auto promises = kj::heapArrayBuilder<kj::Promise<Entry>>(instances_.size());
  for (auto& inst : instances_) {
    KJ_IF_MAYBE(c, inst->component) {
      promises.add(c->structuresRequest().send().then([&inst = *inst](auto response) {
        kj::Vector<StructureInfo> out;
        for (auto s : response.getStructures()) {
          out.add(StructureInfo{kj::heapString(s.getKind()), kj::heapString(s.getName()), s.getPa(),
                                s.getSize(), kj::heapString(s.getDetail())});
        }
        return kj::tuple(kj::heapString(inst.plan.name), out.releaseAsArray());
      }));
    }
  }
  return kj::joinPromises(promises.finish());
}

// ---- The root capability

namespace {

class RootServer final : public rpc::Root::Server {
public:
  RootServer(Composer& composer, kj::ArrayPtr<kj::Own<Composer::Instance>> instances)
      : composer_(composer), instances_(instances) {}

protected:
  kj::Promise<void> list(ListContext context) override;
  kj::Promise<void> get(GetContext context) override;
  kj::Promise<void> memory(MemoryContext context) override;

private:
  Composer& composer_;
  kj::ArrayPtr<kj::Own<Composer::Instance>> instances_;
};

}  // namespace

kj::Promise<void> RootServer::list(ListContext context) {
  auto list = context.getResults().initInstances(instances_.size());
  for (auto i : kj::indices(instances_)) {
    auto& p = instances_[i]->plan;
    auto out = list[i];
    out.setName(p.name);
    out.setImpl(p.impl);
    out.setPlacement(p.placement == Placement::INLINE ? rpc::Placement::INLINE : rpc::Placement::PROCESS);
    out.setInterfaceId(p.type->interface.getProto().getId());
    out.setIsHardware(p.type->isHardware);
    auto wires = out.initUses(p.uses.size());
    for (auto j : kj::indices(p.uses)) {
      wires[j].setRole(p.uses[j].role);
      wires[j].setInstance(p.uses[j].target);
    }
  }
  return kj::READY_NOW;
}

kj::Promise<void> RootServer::get(GetContext context) {
  auto name = context.getParams().getName();
  for (auto& inst : instances_) {
    if (inst->plan.name == name) {
      auto results = context.getResults();
      KJ_IF_MAYBE(c, inst->component) { results.setComponent(*c); }
      // The scenario is a caller too: its calls cross into the instance like a component's.
      KJ_IF_MAYBE(m, inst->main) {
        results.setMain(composer_.crossInto(*inst, *m));
        return kj::READY_NOW;
      }
      kj::String why = kj::str("component '", name, "' is not running");
      KJ_IF_MAYBE(l, composer_.describeLosses()) { why = kj::str(why, ": ", *l); }
      return KJ_EXCEPTION(DISCONNECTED, kj::mv(why));
    }
  }
  KJ_FAIL_REQUIRE("no instance with this name in the manifest", name);
}

kj::Promise<void> RootServer::memory(MemoryContext context) {
  auto results = context.getResults();
  results.setBase(composer_.memory().base());
  results.setSize(composer_.memory().size());
  results.setFrames(serveFrameAllocator(composer_.frames()));
  return kj::READY_NOW;
}

rpc::Root::Client Composer::root() { return kj::heap<RootServer>(*this, instances_.asPtr()); }

}  // namespace nb
