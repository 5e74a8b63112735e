// The trace recorder. See trace.h.

#include "system/experiment/trace.h"

#include <capnp/membrane.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <algorithm>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

namespace nb::experiment {

namespace {

using Clock = std::chrono::steady_clock;

// A method ID no schema uses: a call on it is never sent. identify() makes one on a membrane
// capability so its policy reveals itself (MembranePolicy has no other way to be found from the
// capability it wraps).
constexpr uint64_t PROBE_INTERFACE_ID = 0xe7c1a5d3b9f20417ull;

// Trace-event threads on an SMMU's timeline (callers get 1, 2, ...).
constexpr uint32_t COMMANDS_TID = 1000;
constexpr uint32_t EVENTS_TID = 1001;
constexpr uint32_t STEPS_TID = 1;

kj::String jsonString(kj::StringPtr s) {
  kj::Vector<char> out(s.size() + 2);
  out.add('"');
  for (char c : s) {
    switch (c) {
      case '"': out.addAll(kj::StringPtr("\\\"")); break;
      case '\\': out.addAll(kj::StringPtr("\\\\")); break;
      case '\n': out.addAll(kj::StringPtr("\\n")); break;
      case '\t': out.addAll(kj::StringPtr("\\t")); break;
      case '\r': out.addAll(kj::StringPtr("\\r")); break;
      default:
        if (uint8_t(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", unsigned(uint8_t(c)));
          out.addAll(kj::StringPtr(buf));
        } else {
          out.add(c);
        }
    }
  }
  out.add('"');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String micros(double us) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.3f", us);
  return kj::str(buf);
}

// Interface schemas by ID: every interface reachable from the registry's main interfaces
// through method parameters and results (a PageTable returned by PageTableEngine.create, ...).
class Names {
public:
  explicit Names(const Registry& registry) {
    for (auto name : registry.names()) add(KJ_ASSERT_NONNULL(registry.find(name)).interface);
    add(capnp::Schema::from<rpc::FrameAllocator>());
  }

  kj::String method(uint64_t interfaceId, uint16_t methodId) const {
    KJ_IF_MAYBE(schema, interfaces_.find(interfaceId)) {
      auto methods = schema->getMethods();
      auto name = interfaceName(interfaceId);
      if (methodId < methods.size()) return kj::str(name, ".", methods[methodId].getProto().getName());
      return kj::str(name, ".@", methodId);
    }
    return kj::str("0x", kj::hex(interfaceId), ".@", methodId);
  }

  kj::String interfaceName(uint64_t interfaceId) const {
    KJ_IF_MAYBE(schema, interfaces_.find(interfaceId)) { return kj::heapString(schema->getShortDisplayName()); }
    return kj::str("0x", kj::hex(interfaceId));
  }

private:
  void add(capnp::InterfaceSchema schema) {
    if (interfaces_.find(schema.getProto().getId()) != nullptr) return;
    interfaces_.insert(schema.getProto().getId(), schema);
    for (auto super : schema.getSuperclasses()) add(super);
    for (auto m : schema.getMethods()) {
      add(m.getParamType());
      add(m.getResultType());
    }
  }
  void add(capnp::StructSchema schema) {
    if (structs_.find(schema.getProto().getId()) != nullptr) return;
    structs_.insert(schema.getProto().getId(), true);
    for (auto f : schema.getFields()) add(f.getType());
  }
  void add(capnp::Type type) {
    if (type.isStruct()) add(type.asStruct());
    else if (type.isInterface()) add(type.asInterface());
    else if (type.isList()) add(type.asList().getElementType());
  }

  kj::HashMap<uint64_t, capnp::InterfaceSchema> interfaces_;
  kj::HashMap<uint64_t, bool> structs_;
};

}  // namespace

// ======================================================================================

struct Tracer::Impl {
  // One timeline ("process" in the trace) per instance per run.
  struct Party {
    kj::String name;
    kj::String impl;
    uint32_t pid;
    kj::HashMap<kj::String, uint32_t> callerTids;
    kj::HashMap<kj::String, uint64_t> counters;   // as of the last counters() call
  };
  struct Run {
    kj::String label;
    kj::Vector<kj::Own<Party>> parties;
    Party* modeled = nullptr;   // the modeled machine's timeline (steps and calls in modeled time)
    bool baseline = true;
  };

  // A complete event ("X"). Written out last: a thread's slices must nest, so slices that
  // overlap without nesting (calls in flight together) are moved to extra threads then.
  struct Slice {
    uint32_t pid;
    uint32_t tid;
    kj::String threadName;   // what the thread is called ("calls from ep0")
    double start, end;       // microseconds since the epoch
    kj::String head;         // the event up to its tid: {"name":...,"pid":N
    kj::String tail;         // after its tid: ,"args":{...}}
  };

  const Names names;
  const void* membraneBrand;
  Clock::time_point epoch = Clock::now();
  kj::Vector<kj::String> events;     // everything but slices
  kj::Vector<Slice> slices;
  kj::Vector<kj::Own<Run>> runs;     // kept to the end: policies of past runs may still call
  kj::Maybe<Run&> current;
  uint32_t nextPid = 1;
  uint64_t rpcs = 0;
  uint64_t smmuCommands = 0;
  ModeledClock* clock = &ModeledClock::off();

  // Set by a policy answering a probe (identify()).
  struct Probed {
    kj::Maybe<capnp::Capability::Client> target;
    Party* owner = nullptr;
  };
  kj::Maybe<Probed&> probe;

  explicit Impl(const Registry& registry) : names(registry), membraneBrand(findMembraneBrand()) {}

  static const void* findMembraneBrand();

  double at(Clock::time_point t) const {
    return std::chrono::duration<double, std::micro>(t - epoch).count();
  }

  Run& run() { return KJ_REQUIRE_NONNULL(current, "no trace run begun"); }

  Party& party(Run& r, kj::StringPtr name) {
    for (auto& p : r.parties) if (p->name == name) return *p;
    return addParty(r, name, "", "");
  }

  Party& addParty(Run& r, kj::StringPtr name, kj::StringPtr impl, kj::StringPtr detail) {
    auto p = kj::heap<Party>(Party{kj::heapString(name), kj::heapString(impl), nextPid++, {}, {}});
    auto title = kj::str(r.label.size() ? kj::str(r.label, " ") : kj::str(), name,
                         detail.size() ? kj::str(" (", detail, ")") : kj::str());
    events.add(kj::str("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":", p->pid,
                       ",\"args\":{\"name\":", jsonString(title), "}}"));
    events.add(kj::str("{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":", p->pid,
                       ",\"args\":{\"sort_index\":", p->pid, "}}"));
    auto& ref = *p;
    r.parties.add(kj::mv(p));
    return ref;
  }

  void threadName(Party& p, uint32_t tid, kj::StringPtr name) {
    events.add(kj::str("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":", p.pid, ",\"tid\":", tid,
                       ",\"args\":{\"name\":", jsonString(name), "}}"));
  }

  uint32_t tidFor(Party& callee, kj::StringPtr caller) {
    KJ_IF_MAYBE(t, callee.callerTids.find(caller)) { return *t; }
    uint32_t tid = callee.callerTids.size() + 2;   // 1 is the scenario's steps thread
    callee.callerTids.insert(kj::heapString(caller), tid);
    threadName(callee, tid, kj::str("calls from ", caller));
    return tid;
  }

  void recordCall(Party& caller, Party& callee, uint64_t interfaceId, uint16_t methodId,
                  Clock::time_point start, Clock::time_point end, kj::Maybe<const kj::Exception&> error,
                  uint64_t modeledStart, uint64_t modeledEnd) {
    KJ_IF_MAYBE(r, current) {
      if (r->modeled != nullptr) {
        // The same call on the modeled timeline, in a thread per callee.
        auto& m = *r->modeled;
        auto key = kj::str("into ", callee.name);
        uint32_t tid;
        KJ_IF_MAYBE(t, m.callerTids.find(key)) {
          tid = *t;
        } else {
          tid = m.callerTids.size() + 2;
          threadName(m, tid, kj::str("calls into ", callee.name));
          m.callerTids.insert(kj::heapString(key), tid);
        }
        auto name = names.method(interfaceId, methodId);
        addSlice(m, tid, kj::str("calls into ", callee.name), double(modeledStart) / 1000,
                 double(modeledEnd) / 1000,
                 kj::str("{\"name\":", jsonString(name), ",\"cat\":\"modeled\""),
                 kj::str(",\"args\":{\"caller\":", jsonString(caller.name), ",\"callee\":",
                         jsonString(callee.name), ",\"modeled_ns\":", modeledEnd - modeledStart, "}}"));
      }
    }
    rpcs++;
    auto name = names.method(interfaceId, methodId);
    auto interface = names.interfaceName(interfaceId);
    auto method = name.slice(interface.size() + 1);
    auto failure = kj::str();
    KJ_IF_MAYBE(e, error) { failure = kj::str(",\"exception\":", jsonString(kj::str(e->getType()))); }
    addSlice(callee, tidFor(callee, caller.name), kj::str("calls from ", caller.name), at(start), at(end),
             kj::str("{\"name\":", jsonString(name), ",\"cat\":\"rpc\""),
             kj::str(",\"args\":{\"caller\":", jsonString(caller.name), ",\"callee\":", jsonString(callee.name),
                     ",\"interface\":", jsonString(interface), ",\"method\":", jsonString(method), failure, "}}"));
  }

  void addSlice(Party& party, uint32_t tid, kj::String threadName, double start, double end, kj::String head,
                kj::String tail) {
    slices.add(Slice{party.pid, tid, kj::mv(threadName), start, end,
                     kj::str(head, ",\"ph\":\"X\",\"ts\":", micros(start), ",\"dur\":", micros(end - start),
                             ",\"pid\":", party.pid),
                     kj::mv(tail)});
  }

  // Every slice as an event, each thread's slices nested: one that overlaps another without
  // containing it goes to the first extra lane where it nests ("calls from ep0 (2)").
  void writeSlices(kj::Vector<kj::String>& out) {
    constexpr uint32_t LANE_STRIDE = 10000;
    auto order = kj::heapArray<size_t>(slices.size());
    for (auto i : kj::indices(order)) order[i] = i;
    std::sort(order.begin(), order.end(), [this](size_t a, size_t b) {
      auto& x = slices[a];
      auto& y = slices[b];
      if (x.pid != y.pid) return x.pid < y.pid;
      if (x.tid != y.tid) return x.tid < y.tid;
      if (x.start != y.start) return x.start < y.start;
      return x.end > y.end;   // the enclosing slice first
    });
    kj::Vector<kj::Vector<double>> lanes;   // per lane, the ends of the slices open on it
    for (size_t k = 0; k < order.size(); k++) {
      auto& slice = slices[order[k]];
      if (k == 0 || slices[order[k - 1]].pid != slice.pid || slices[order[k - 1]].tid != slice.tid) lanes.clear();
      size_t lane = 0;
      for (; lane < lanes.size(); lane++) {
        auto& open = lanes[lane];
        while (!open.empty() && open.back() <= slice.start) open.removeLast();
        if (open.empty() || open.back() >= slice.end) break;
      }
      if (lane == lanes.size()) {
        lanes.add();
        if (lane > 0) {
          out.add(kj::str("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":", slice.pid, ",\"tid\":",
                          slice.tid + LANE_STRIDE * lane, ",\"args\":{\"name\":",
                          jsonString(kj::str(slice.threadName, " (", lane + 1, ")")), "}}"));
        }
      }
      lanes[lane].add(slice.end);
      out.add(kj::str(slice.head, ",\"tid\":", slice.tid + LANE_STRIDE * lane, slice.tail));
    }
  }

  // A capability handed to `holder`, served by `owner`: calls on it are recorded.
  capnp::Capability::Client wrap(capnp::Capability::Client cap, Party& holder, Party& owner);

  // If `cap` is one of ours, what it wraps and who serves that.
  kj::Maybe<Probed> identify(capnp::Capability::Client cap);

  // `cap` moves to `holder`; if it is not one of ours, `from` serves it.
  capnp::Capability::Client handTo(Party& holder, capnp::Capability::Client cap, Party& from) {
    // Look through promises that have resolved (a component may hand on a Client built from a
    // promise of one of ours); decide for one still unresolved when it resolves, so what it
    // turns out to be is recognised too.
    auto hook = capnp::ClientHook::from(kj::mv(cap));
    for (;;) {
      KJ_IF_MAYBE(resolved, hook->getResolved()) {
        hook = resolved->addRef();
      } else {
        break;
      }
    }
    if (hook->getBrand() != membraneBrand) {
      KJ_IF_MAYBE(promise, hook->whenMoreResolved()) {
        return capnp::Capability::Client(promise->then([this, &holder, &from](kj::Own<capnp::ClientHook> next) {
          return handTo(holder, capnp::Capability::Client(kj::mv(next)), from);
        }));
      }
    }
    capnp::Capability::Client settled(kj::mv(hook));
    KJ_IF_MAYBE(p, identify(settled)) {
      auto target = KJ_ASSERT_NONNULL(kj::mv(p->target));
      // Back home: the instance that serves it gets its own object, unwrapped.
      if (p->owner == &holder) return target;
      return wrap(kj::mv(target), holder, *p->owner);
    }
    if (&from == &holder) return settled;
    return wrap(kj::mv(settled), holder, from);
  }
};

namespace {

using Party = Tracer::Impl::Party;

class DummyPolicy final : public capnp::MembranePolicy, public kj::Refcounted {
public:
  kj::Maybe<capnp::Capability::Client> inboundCall(uint64_t, uint16_t, capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Maybe<capnp::Capability::Client> outboundCall(uint64_t, uint16_t, capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Own<capnp::MembranePolicy> addRef() override { return kj::addRef(*this); }
};

// The policy of one wrapped capability: `holder` calls, `owner` serves. Calls are redirected to
// a TimedCall; the call itself crosses a second, pass-through membrane (Crossing) so the
// capabilities in its parameters and results are re-wrapped for whoever receives them.
class EdgePolicy final : public capnp::MembranePolicy, public kj::Refcounted {
public:
  EdgePolicy(Tracer::Impl& tracer, Party& holder, Party& owner) : tracer(tracer), holder(holder), owner(owner) {}

  kj::Maybe<capnp::Capability::Client> inboundCall(uint64_t interfaceId, uint16_t methodId,
                                                   capnp::Capability::Client target) override;
  kj::Maybe<capnp::Capability::Client> outboundCall(uint64_t, uint16_t, capnp::Capability::Client) override {
    return nullptr;   // never used in reverse: every wrapped capability faces its holder
  }
  kj::Own<capnp::MembranePolicy> addRef() override { return kj::addRef(*this); }

  Tracer::Impl& tracer;
  Party& holder;
  Party& owner;
};

// Pass-through for one call from `holder` to `owner`: parameters go to the owner, results to
// the holder, each capability wrapped (or unwrapped) for its receiver.
class CrossingPolicy final : public capnp::MembranePolicy, public kj::Refcounted {
public:
  explicit CrossingPolicy(kj::Own<EdgePolicy> edge) : edge(kj::mv(edge)) {}

  kj::Maybe<capnp::Capability::Client> inboundCall(uint64_t, uint16_t, capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Maybe<capnp::Capability::Client> outboundCall(uint64_t, uint16_t, capnp::Capability::Client) override {
    return nullptr;
  }
  kj::Own<capnp::MembranePolicy> addRef() override { return kj::addRef(*this); }

  // A capability in the parameters: from the holder to the owner.
  capnp::Capability::Client importExternal(capnp::Capability::Client external) override {
    return edge->tracer.handTo(edge->owner, kj::mv(external), edge->holder);
  }
  // A capability in the results: from the owner to the holder.
  capnp::Capability::Client exportInternal(capnp::Capability::Client internal) override {
    return edge->tracer.handTo(edge->holder, kj::mv(internal), edge->owner);
  }

  kj::Own<EdgePolicy> edge;
};

// Forwards one call to the owner's object and records it when it completes.
class TimedCall final : public capnp::Capability::Server {
public:
  TimedCall(kj::Own<EdgePolicy> edge, capnp::Capability::Client target)
      : edge(kj::mv(edge)), target(kj::mv(target)) {}

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    auto& clock = *edge->tracer.clock;
    uint64_t modeledStart = clock.now();
    auto start = Clock::now();
    auto params = context.getParams();
    auto request = target.typelessRequest(interfaceId, methodId, params.targetSize());
    request.set(params);
    context.releaseParams();
    // Sent and copied back rather than tail-called: a tail call relayed for a process-placed
    // caller dropped the RPC layer's pipeline fulfiller unfulfilled (an uncaught exception).
    auto done = request.send().then([context](capnp::Response<capnp::AnyPointer>&& response) mutable {
      context.getResults(response.targetSize()).set(response);
    });
    auto recorded = done.then(
        [e = kj::addRef(*edge), interfaceId, methodId, start, modeledStart]() {
          e->tracer.recordCall(e->holder, e->owner, interfaceId, methodId, start, Clock::now(), nullptr,
                               modeledStart, e->tracer.clock->now());
        },
        [e = kj::addRef(*edge), interfaceId, methodId, start, modeledStart](kj::Exception&& exception) {
          e->tracer.recordCall(e->holder, e->owner, interfaceId, methodId, start, Clock::now(), exception,
                               modeledStart, e->tracer.clock->now());
          kj::throwFatalException(kj::mv(exception));
        });
    return {kj::mv(recorded), false};
  }

private:
  kj::Own<EdgePolicy> edge;
  capnp::Capability::Client target;
};

kj::Maybe<capnp::Capability::Client> EdgePolicy::inboundCall(uint64_t interfaceId, uint16_t methodId,
                                                             capnp::Capability::Client target) {
  if (interfaceId == PROBE_INTERFACE_ID) {
    KJ_IF_MAYBE(p, tracer.probe) {
      p->target = kj::mv(target);
      p->owner = &owner;
    }
    return capnp::Capability::Client(capnp::newBrokenCap("nestbed trace probe"));
  }
  // The call's own wrapper is made by the base class: CrossingPolicy's exportInternal() is for
  // what crosses in results, and would wrap `target` for recording again.
  auto crossing = kj::refcounted<CrossingPolicy>(kj::addRef(*this));
  auto forward = crossing->capnp::MembranePolicy::exportInternal(kj::mv(target));
  return capnp::Capability::Client(kj::heap<TimedCall>(kj::addRef(*this), kj::mv(forward)));
}

}  // namespace

const void* Tracer::Impl::findMembraneBrand() {
  auto cap = capnp::membrane(capnp::Capability::Client(capnp::newBrokenCap("brand")),
                             kj::refcounted<DummyPolicy>());
  return capnp::ClientHook::from(kj::mv(cap))->getBrand();
}

capnp::Capability::Client Tracer::Impl::wrap(capnp::Capability::Client cap, Party& holder, Party& owner) {
  return capnp::membrane(kj::mv(cap), kj::refcounted<EdgePolicy>(*this, holder, owner));
}

kj::Maybe<Tracer::Impl::Probed> Tracer::Impl::identify(capnp::Capability::Client cap) {
  auto hook = capnp::ClientHook::from(kj::mv(cap));
  if (hook->getBrand() != membraneBrand) return nullptr;
  Probed probed;
  probe = probed;
  // Only the membrane's policy sees this request; it is dropped unsent.
  { auto unsent = hook->newCall(PROBE_INTERFACE_ID, 0, capnp::MessageSize{4, 0}); }
  probe = nullptr;
  if (probed.owner == nullptr) return nullptr;   // another membrane than ours
  return kj::mv(probed);
}

// ======================================================================================

namespace {

// The root the scenario runner sees: instances' main capabilities come wrapped, with the
// scenario as their holder. Lifecycle capabilities (stats) are not.
class ScenarioRoot final : public rpc::Root::Server {
public:
  ScenarioRoot(Tracer::Impl& tracer, Party& scenario, rpc::Root::Client inner)
      : tracer(tracer), scenario(scenario), inner(kj::mv(inner)) {}

protected:
  kj::Promise<void> list(ListContext context) override { return context.tailCall(inner.listRequest()); }

  kj::Promise<void> get(GetContext context) override {
    auto name = kj::heapString(context.getParams().getName());
    auto request = inner.getRequest();
    request.setName(name);
    return request.send().then([this, context, name = kj::mv(name)](auto response) mutable {
      auto results = context.getResults();
      results.setComponent(response.getComponent());
      auto& owner = tracer.party(tracer.run(), name);
      results.setMain(tracer.wrap(response.getMain(), scenario, owner));
    });
  }

  kj::Promise<void> memory(MemoryContext context) override {
    return inner.memoryRequest().send().then([this, context](auto response) mutable {
      auto results = context.getResults();
      results.setBase(response.getBase());
      results.setSize(response.getSize());
      auto& memory = tracer.party(tracer.run(), "memory");
      capnp::Capability::Client frames = tracer.wrap(response.getFrames(), scenario, memory);
      results.setFrames(frames.castAs<rpc::FrameAllocator>());
    });
  }

private:
  Tracer::Impl& tracer;
  Party& scenario;
  rpc::Root::Client inner;
};

}  // namespace

Tracer::Tracer(const Registry& registry) : impl_(kj::heap<Impl>(registry)) {}
Tracer::~Tracer() noexcept(false) {}

void Tracer::beginRun(kj::StringPtr label, const Plan& plan) {
  auto run = kj::heap<Impl::Run>();
  run->label = kj::heapString(label);
  auto& r = *run;
  impl_->runs.add(kj::mv(run));
  impl_->current = r;
  auto& scenario = impl_->addParty(r, "scenario", "", "");
  impl_->threadName(scenario, STEPS_TID, "steps");
  impl_->addParty(r, "memory", "hw/mem", "hw/mem");
  for (auto& inst : plan.instances) {
    auto& p = impl_->addParty(r, inst.name, inst.impl, kj::str(inst.impl, ", ", placementName(inst.placement)));
    if (inst.impl == "hw/smmuv3") {
      impl_->threadName(p, COMMANDS_TID, "commands consumed");
      impl_->threadName(p, EVENTS_TID, "events produced");
    }
  }
}

void Tracer::endRun() { impl_->current = nullptr; }

void Tracer::useClock(ModeledClock& clock) {
  impl_->clock = &clock;
  auto& r = impl_->run();
  if (clock.enabled() && r.modeled == nullptr) {
    // Timestamps on this timeline are modeled time (its "us" are modeled microseconds).
    r.modeled = &impl_->addParty(r, "(modeled time)", "", "the modeled machine's clock");
    impl_->threadName(*r.modeled, STEPS_TID, "steps");
  }
}

Interposer Tracer::interposer() {
  return [impl = impl_.get()](kj::StringPtr caller, kj::StringPtr callee, capnp::Capability::Client cap) {
    auto& r = impl->run();
    return impl->wrap(kj::mv(cap), impl->party(r, caller), impl->party(r, callee));
  };
}

rpc::Root::Client Tracer::scenarioRoot(rpc::Root::Client root) {
  auto& r = impl_->run();
  return kj::heap<ScenarioRoot>(*impl_, impl_->party(r, "scenario"), kj::mv(root));
}

void Tracer::step(const ScenarioRunner::StepSpan& span) {
  auto& r = impl_->run();
  auto& scenario = impl_->party(r, "scenario");
  auto file = span.file;
  KJ_IF_MAYBE(slash, file.findLast('/')) { file = file.slice(*slash + 1); }
  impl_->addSlice(scenario, STEPS_TID, kj::str("steps"), impl_->at(span.start), impl_->at(span.end),
                  kj::str("{\"name\":", jsonString(span.label), ",\"cat\":\"step\""),
                  kj::str(",\"args\":{\"file\":", jsonString(file), ",\"line\":", span.line, ",\"iteration\":",
                          span.iteration, ",\"ok\":", span.ok ? "true" : "false", "}}"));
  if (r.modeled == nullptr) return;
  auto& m = *r.modeled;
  impl_->addSlice(m, STEPS_TID, kj::str("steps"), double(span.modeledStart) / 1000,
                  double(span.modeledEnd) / 1000,
                  kj::str("{\"name\":", jsonString(span.label), ",\"cat\":\"step\""),
                  kj::str(",\"args\":{\"file\":", jsonString(file), ",\"line\":", span.line,
                          ",\"modeled_ns\":", span.modeledEnd - span.modeledStart, "}}"));
  // What the step's modeled time went to, as counters on the modeled timeline (a step that is
  // not a repeat; a repeat's children were the steps).
  if (span.isRepeat || span.modeled == nullptr) return;
  kj::Vector<kj::String> args;
  for (size_t c = 0; c < COST_CLASSES; c++) {
    if (span.modeled->ns[c]) args.add(kj::str(jsonString(costKey(Cost(c))), ":", span.modeled->ns[c]));
  }
  if (span.modeled->wait) args.add(kj::str("\"wait\":", span.modeled->wait));
  if (args.empty()) return;
  impl_->events.add(kj::str("{\"name\":\"modeled ns by class\",\"cat\":\"modeled\",\"ph\":\"C\",\"ts\":",
                            micros(double(span.modeledStart) / 1000), ",\"pid\":", m.pid,
                            ",\"args\":{", kj::strArray(args, ","), "}}"));
}

void Tracer::counters(kj::Array<InstanceStats> stats, std::chrono::steady_clock::time_point at) {
  auto& r = impl_->run();
  auto ts = micros(impl_->at(at));
  bool baseline = r.baseline;
  r.baseline = false;
  for (auto& s : stats) {
    auto& p = impl_->party(r, s.name);
    bool smmu = s.impl == "hw/smmuv3";
    for (auto& c : s.counters) {
      uint64_t previous = 0;
      KJ_IF_MAYBE(v, p.counters.find(c.name)) { previous = *v; }
      p.counters.upsert(kj::heapString(c.name), c.value, [](uint64_t& a, uint64_t b) { a = b; });
      if (c.value == previous && !(baseline && c.value != 0)) continue;
      impl_->events.add(kj::str("{\"name\":", jsonString(c.name), ",\"cat\":\"counter\",\"ph\":\"C\",\"ts\":", ts,
                                ",\"pid\":", p.pid, ",\"args\":{\"value\":", c.value, "}}"));
      if (!smmu || baseline || c.value < previous) continue;
      // SMMU commands consumed and event-queue outcomes in this step (see trace.h).
      uint64_t count = c.value - previous;
      kj::Maybe<kj::String> name;
      uint32_t tid = COMMANDS_TID;
      if (c.name.startsWith("cmdq_op_")) {
        kj::String op = kj::heapString(c.name.slice(strlen("cmdq_op_")));
        for (char& ch : op) ch = toupper(ch);
        name = kj::str("CMD_", op);
        impl_->smmuCommands += count;
      } else if (c.name.startsWith("evtq_")) {
        name = kj::str("EVTQ ", c.name.slice(strlen("evtq_")));
        tid = EVENTS_TID;
      } else if (c.name == "cmdq_illegal" || c.name == "cmdq_fetch_aborts") {
        name = kj::str(c.name == "cmdq_illegal" ? "CERROR_ILL" : "CERROR_ABT");
      }
      KJ_IF_MAYBE(n, name) {
        impl_->events.add(kj::str("{\"name\":", jsonString(*n), ",\"cat\":\"smmu\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", ts,
                                  ",\"pid\":", p.pid, ",\"tid\":", tid, ",\"args\":{\"count\":", count, "}}"));
      }
    }
  }
}

uint64_t Tracer::rpcEvents() const { return impl_->rpcs; }
uint64_t Tracer::smmuCommands() const { return impl_->smmuCommands; }

kj::String Tracer::json() {
  kj::Vector<kj::String> all;
  for (auto& e : impl_->events) all.add(kj::heapString(e));
  impl_->writeSlices(all);
  return kj::str("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"nestbed\",\"rpc_events\":", impl_->rpcs,
                 ",\"smmu_commands\":", impl_->smmuCommands, "},\n\"traceEvents\":[\n", kj::strArray(all, ",\n"),
                 "\n]}\n");
}

kj::Maybe<kj::String> Tracer::write(kj::StringPtr path) {
  auto text = json();
  FILE* f = fopen(path.cStr(), "w");
  if (f == nullptr) return kj::str("cannot write ", path, ": ", strerror(errno));
  bool ok = fwrite(text.begin(), 1, text.size(), f) == text.size();
  if (fclose(f) != 0) ok = false;
  if (!ok) return kj::str("cannot write ", path, ": ", strerror(errno));
  return nullptr;
}

}  // namespace nb::experiment
