// components/stage2_shadow/common: the Stage2Shadow server and one Shadow per VM. See shadow.h.
//
// Order of a shadow's work: its build and every notice go through one promise chain (`tail`),
// so a notice that arrives while the shadow is still being built waits for the build, and
// notices run in the order the VM sends them (it sends one change at a time anyway). The VM
// waits for both notices of a change: a before-notice returns only once Domain.unmap has
// returned — that is, once the TLB invalidations and their CMD_SYNC have completed — so the
// change never takes effect while a DMA can still reach the old pages.
//
// Nothing a notice does may throw back to the VM (a listener that throws is dropped and never
// hears of later changes): failures are counted, logged and reported in ShadowInfo.errors.

#include "components/stage2_shadow/common/shadow.h"

#include <kj/debug.h>
#include <algorithm>

namespace nb::s2 {

Run runOf(rpc::Memslot::Reader slot) {
  return Run{slot.getGpa(), slot.getPa(), slot.getSize(), slot.getReadonly(), slot.getSlot()};
}

SlotChange decodeChange(rpc::MemslotChange::Reader change) {
  SlotChange out;
  out.kind = change.getKind();
  out.seq = change.getSeq();
  out.slot = change.getSlot();
  out.range = Span{change.getRange().getGpa(), change.getRange().getSize()};
  if (change.hasOldSlot()) out.oldSlot = runOf(change.getOldSlot());
  if (change.hasNewSlot()) out.newSlot = runOf(change.getNewSlot());
  return out;
}

namespace {

kj::String hex(uint64_t v) { return kj::str("0x", kj::hex(v)); }

// Spans sorted and merged where they overlap or touch.
kj::Vector<Span> mergeSpans(kj::Vector<Span> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.gpa < b.gpa; });
  kj::Vector<Span> out(spans.size());
  for (auto& s : spans) {
    if (s.size == 0) continue;
    if (out.size() > 0 && s.gpa <= out.back().end()) {
      out.back().size = kj::max(out.back().end(), s.end()) - out.back().gpa;
    } else {
      out.add(s);
    }
  }
  return out;
}

struct Outcome {
  rpc::Errno errno_ = rpc::Errno::OK;
  kj::String message;
};

class ShadowState;

// What every shadow of one component instance shares.
class Shared final : public kj::Refcounted {
public:
  Shared(kj::StringPtr impl, rpc::DomainAllocator::Client allocator, SourceFactory factory)
      : impl(impl), allocator(kj::mv(allocator)), factory(kj::mv(factory)) {}

  kj::StringPtr impl;  // the registry's name: it outlives every instance
  rpc::DomainAllocator::Client allocator;
  SourceFactory factory;
  Counters counters;
  kj::Vector<ShadowState*> live;  // every shadow state alive (for shutdown)
};

// ======================================================================================
// One VM's shadow

class ShadowState final : public kj::Refcounted {
public:
  struct DomainFacts {
    uint32_t id = 0;
    uint16_t vmid = 0;
    uint64_t pgsizeBitmap = 0;
  };

  ShadowState(kj::Own<Shared> sharedRef, rpc::Domain::Client domain, DomainFacts facts,
              kj::String vmName, kj::Own<MapSource> source)
      : shared(kj::mv(sharedRef)),
        domain(kj::mv(domain)),
        facts(facts),
        vmName(kj::mv(vmName)),
        source(kj::mv(source)) {
    shared->live.add(this);
  }

  ~ShadowState() noexcept(false) {
    auto& live = shared->live;
    for (auto i : kj::indices(live)) {
      if (live[i] == this) {
        live[i] = live.back();
        live.removeLast();
        break;
      }
    }
  }

  kj::Own<Shared> shared;
  rpc::Domain::Client domain;
  DomainFacts facts;
  kj::String vmName;
  kj::Own<MapSource> source;
  RunRecord mapped;              // what the domain maps for us now
  LeafSplit leaves;              // the leaves those runs occupy
  kj::Vector<Span> remap;        // unmapped by a before-notice: looked up again after
  uint64_t changes = 0, lastSeq = 0, errors = 0;
  bool following = true;         // false once the shadow is dropped (or failed to build)
  kj::ForkedPromise<void> tail = kj::Promise<void>(kj::READY_NOW).fork();

  Counters& counters() { return shared->counters; }

  // Runs `work` after everything queued before it. A failure is an update error, counted, and
  // the caller's: the VM's memory change it was notified of fails rather than leave the stage 2
  // (and the SMMU's caches) translating to memory the VM no longer has there. The queue goes on.
  kj::Promise<void> enqueue(kj::Function<kj::Promise<void>()> work) {
    auto done = tail.addBranch()
                    .then([work = kj::mv(work)]() mutable { return work(); })
                    .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
                      failed(kj::str("an update threw: ", e.getDescription()));
                      return kj::mv(e);
                    })
                    .fork();
    tail = done.addBranch().catch_([](kj::Exception&&) {}).fork();
    return done.addBranch();
  }

  void failed(kj::String why) {
    errors++;
    counters().updateErrors++;
    KJ_LOG(ERROR, "stage2_shadow: the shadow may no longer match the VM", vmName, why);
  }

  // ---- mapping through the domain

  kj::Promise<Outcome> mapRuns(kj::Array<Run> runs) {
    if (runs.size() == 0) return Outcome{};
    counters().domainCalls++;
    auto req = domain.mapRequest(capnp::MessageSize{16 + 8 * runs.size(), 0});
    auto list = req.initRuns(uint32_t(runs.size()));
    for (auto i : kj::indices(runs)) {
      auto out = list[uint32_t(i)];
      out.setIova(runs[i].gpa);
      out.setPa(runs[i].pa);
      out.setSize(runs[i].size);
      auto prot = out.initProt();
      prot.setRead(true);
      prot.setWrite(!runs[i].readonly);
      prot.setCache(true);
    }
    return req.send().then([this, runs = kj::mv(runs)](auto&& r) -> Outcome {
      const auto errno_ = r.getErrno();
      size_t done = runs.size();
      if (errno_ != rpc::Errno::OK) {
        done = r.getFailedIndex() >= 0 ? kj::min(size_t(r.getFailedIndex()), runs.size()) : 0;
      }
      uint64_t before = 0;
      for (size_t i = 0; i < done; i++) {
        recordMapped(runs[i]);
        before += runs[i].size;
      }
      if (errno_ == rpc::Errno::OK) return Outcome{};
      if (done < runs.size() && r.getBytesMapped() > before) {
        // The failing run's head was mapped: record it, so it is unmapped like the rest.
        Run head = runs[done];
        head.size = kj::min(head.size, r.getBytesMapped() - before);
        recordMapped(head);
      }
      return Outcome{errno_, kj::str("mapping ", hex(done < runs.size() ? runs[done].gpa : 0),
                                     " failed after ", r.getBytesMapped(), " bytes")};
    });
  }

  kj::Promise<Outcome> unmapRuns(kj::Array<Run> runs) {
    if (runs.size() == 0) return Outcome{};
    counters().domainCalls++;
    auto req = domain.unmapRequest(capnp::MessageSize{8 + 4 * runs.size(), 0});
    auto list = req.initRanges(uint32_t(runs.size()));
    for (auto i : kj::indices(runs)) {
      list[uint32_t(i)].setIova(runs[i].gpa);
      list[uint32_t(i)].setSize(runs[i].size);
    }
    return req.send().then([this, runs = kj::mv(runs)](auto&& r) -> Outcome {
      counters().tlbiCommands += r.getCommands();
      const auto errno_ = r.getErrno();
      size_t done = runs.size();
      if (errno_ != rpc::Errno::OK) {
        done = r.getStoppedIndex() >= 0 ? kj::min(size_t(r.getStoppedIndex()), runs.size()) : 0;
      }
      for (size_t i = 0; i < done; i++) recordUnmapped(runs[i]);
      if (errno_ == rpc::Errno::OK) return Outcome{};
      return Outcome{errno_, kj::str("unmapping ", hex(done < runs.size() ? runs[done].gpa : 0),
                                     " failed after ", r.getBytesUnmapped(), " bytes")};
    });
  }

  void recordMapped(const Run& run) {
    mapped.insert(run);
    LeafSplit split;
    splitLeaves(run.gpa, run.pa, run.size, facts.pgsizeBitmap, split);
    for (unsigned i = 0; i < 64; i++) leaves.counts[i] += split.counts[i];
    auto& c = counters();
    c.runsMapped++;
    c.leafWrites += split.total();
    c.bytesMapped += run.size;
  }

  void recordUnmapped(const Run& run) {
    KJ_ASSERT(mapped.remove(run), "unmapped a run the shadow had not mapped", run.gpa, run.size);
    LeafSplit split;
    splitLeaves(run.gpa, run.pa, run.size, facts.pgsizeBitmap, split);
    for (unsigned i = 0; i < 64; i++) leaves.counts[i] -= split.counts[i];
    auto& c = counters();
    c.runsUnmapped++;
    c.leafClears += split.total();
    c.bytesUnmapped += run.size;
  }

  // ---- the build and the notices (each runs from `tail`)

  kj::Promise<Outcome> build() {
    return source->snapshot().then([this](Snapshot&& snap) -> kj::Promise<Outcome> {
      if (snap.errno_ != rpc::Errno::OK) return Outcome{snap.errno_, kj::mv(snap.message)};
      return mapRuns(kj::mv(snap.runs)).then([this](Outcome&& o) -> kj::Promise<Outcome> {
        if (o.errno_ == rpc::Errno::OK) return kj::mv(o);
        // Leave nothing mapped behind a refused shadow.
        auto all = kj::heapArray(mapped.runs());
        return unmapRuns(kj::mv(all)).then([o = kj::mv(o)](Outcome&&) mutable {
          return kj::mv(o);
        });
      });
    });
  }

  kj::Promise<void> before(SlotChange change) {
    counters().noticesBefore++;
    if (!following) return kj::READY_NOW;
    source->before(change);
    auto victims = mapped.overlapping(change.range, counters().recordLookups);
    if (victims.size() == 0) return kj::READY_NOW;
    for (auto& v : victims) remap.add(v.span());
    return unmapRuns(victims.releaseAsArray()).then([seq = change.seq](Outcome&& o) {
      KJ_REQUIRE(o.errno_ == rpc::Errno::OK,
                 kj::str("stage2_shadow: change ", seq, ": unmapping what the VM is about to "
                         "change failed: ", o.message));
    });
  }

  kj::Promise<void> after(SlotChange change) {
    counters().noticesAfter++;
    changes++;
    lastSeq = change.seq;
    if (!following) return kj::READY_NOW;
    auto spans = kj::mv(remap);
    spans.add(change.range);
    auto merged = mergeSpans(kj::mv(spans)).releaseAsArray();
    auto resolved = source->resolve(change, merged);
    return resolved.attach(kj::mv(merged))
        .then([this, seq = change.seq](kj::Array<Run>&& runs) -> kj::Promise<void> {
          // Never map over what is mapped (the domain would refuse with eExist anyway).
          kj::Vector<Run> wanted(runs.size());
          for (auto& r : runs) {
            if (mapped.overlapping(r.span(), counters().recordLookups).size() == 0) {
              wanted.add(r);
            } else {
              failed(kj::str("change ", seq, ": ", hex(r.gpa), " is still mapped"));
            }
          }
          return mapRuns(wanted.releaseAsArray()).then([seq](Outcome&& o) {
            KJ_REQUIRE(o.errno_ == rpc::Errno::OK,
                       kj::str("stage2_shadow: change ", seq, ": mapping the VM's new memory "
                               "failed: ", o.message));
          });
        });
  }

  // The shadow was dropped: stop following, leave nothing mapped, give back what is held.
  kj::Promise<void> release() {
    following = false;
    auto all = kj::heapArray(mapped.runs());
    return unmapRuns(kj::mv(all))
        .then([this](Outcome&& o) {
          if (o.errno_ != rpc::Errno::OK) failed(kj::str("release: ", o.message));
          return source->release();
        });
  }

  void fillInfo(rpc::ShadowInfo::Builder info) {
    info.setImpl(shared->impl);
    info.setVm(vmName);
    info.setDomain(facts.id);
    info.setVmid(facts.vmid);
    info.setRuns(uint32_t(mapped.size()));
    info.setMappedBytes(mapped.bytes());
    unsigned sizes = 0;
    for (auto c : leaves.counts) sizes += c != 0;
    auto list = info.initLeaves(sizes);
    unsigned at = 0;
    for (unsigned i = 0; i < 64; i++) {
      if (leaves.counts[i] == 0) continue;
      list[at].setSize(uint64_t(1) << i);
      list[at].setCount(leaves.counts[i]);
      at++;
    }
    info.setChanges(changes);
    info.setLastSeq(lastSeq);
    info.setErrors(errors);
    info.setFollowing(following);
    info.setPinnedBytes(source->pinnedBytes());
  }
};

// ======================================================================================
// RPC faces

class Listener final : public rpc::MemslotListener::Server {
  // The VM's notices, queued on the shadow's chain.
public:
  explicit Listener(kj::Own<ShadowState> state) : state(kj::mv(state)) {}

protected:
  kj::Promise<void> before(BeforeContext context) override {
    auto change = decodeChange(context.getParams().getChange());
    auto& s = *state;
    return s.enqueue([&s, change = kj::mv(change)]() mutable { return s.before(kj::mv(change)); });
  }

  kj::Promise<void> after(AfterContext context) override {
    auto change = decodeChange(context.getParams().getChange());
    auto& s = *state;
    return s.enqueue([&s, change = kj::mv(change)]() mutable { return s.after(kj::mv(change)); });
  }

private:
  kj::Own<ShadowState> state;
};

class ShadowServer final : public rpc::Shadow::Server {
public:
  ShadowServer(kj::Own<ShadowState> state, rpc::Vm::Subscription::Client subscription)
      : state(kj::mv(state)), subscription(kj::mv(subscription)) {
    this->state->counters().shadowsAlive++;
  }

  ~ShadowServer() noexcept(false) {
    state->counters().shadowsAlive--;
    retire(kj::mv(state), kj::mv(subscription));
  }

  // Stops following the VM: what is mapped is unmapped in the background, after any notice
  // already queued, then the subscription is cancelled. If the unmap fails the subscription is
  // dropped uncancelled, and the VM refuses changes rather than trust a stage 2 that may still
  // map its memory. Detached rather than put in a TaskSet of the component: the release keeps
  // the state (and so what the component shares) alive, and may outlive the component's server.
  static void retire(kj::Own<ShadowState> state, rpc::Vm::Subscription::Client subscription) {
    auto& s = *state;
    s.following = false;
    s.enqueue([&s]() { return s.release(); })
        .then([subscription = kj::mv(subscription)]() mutable {
          return subscription.cancelRequest(capnp::MessageSize{4, 0}).send().ignoreResult();
        })
        .attach(kj::mv(state))
        .detach([](kj::Exception&& e) {
          KJ_LOG(ERROR, "stage2_shadow: releasing a shadow failed", e);
        });
  }

protected:
  kj::Promise<void> domain(DomainContext context) override {
    context.getResults().setDomain(state->domain);
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    state->fillInfo(context.getResults().initInfo());
    return kj::READY_NOW;
  }

  kj::Promise<void> mappings(MappingsContext context) override {
    auto runs = state->mapped.runs();
    auto out = context.getResults(capnp::MessageSize{4 + 5 * runs.size(), 0})
                   .initRuns(uint32_t(runs.size()));
    for (auto i : kj::indices(runs)) {
      auto r = out[uint32_t(i)];
      r.setGpa(runs[i].gpa);
      r.setPa(runs[i].pa);
      r.setSize(runs[i].size);
      r.setReadonly(runs[i].readonly);
      r.setSlot(runs[i].slot);
    }
    return kj::READY_NOW;
  }

private:
  kj::Own<ShadowState> state;
  rpc::Vm::Subscription::Client subscription;
};

// One shadow() call's progress.
struct Build {
  rpc::Vm::Client vm;
  kj::Maybe<rpc::Domain::Client> domain;
  ShadowState::DomainFacts facts;
  kj::String vmName;
  unsigned ipaBits = 0;
  unsigned ias = 0;
  kj::Maybe<kj::Own<ShadowState>> state;
  kj::Maybe<rpc::Vm::Subscription::Client> subscription;
  Outcome outcome;
};

class ServiceServer final : public rpc::Stage2Shadow::Server, public ComponentCore {
public:
  explicit ServiceServer(kj::Own<Shared> shared) : shared(kj::mv(shared)) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    const Counters& c = shared->counters;
    const struct {
      const char* name;
      uint64_t value;
    } counters[] = {
        {"shadows_created", c.shadowsCreated},
        {"shadows_refused", c.shadowsRefused},
        {"shadows_alive", c.shadowsAlive},
        {"notices_before", c.noticesBefore},
        {"notices_after", c.noticesAfter},
        {"vm_calls", c.vmCalls},
        {"slots_read", c.slotsRead},
        {"record_lookups", c.recordLookups},
        {"domain_calls", c.domainCalls},
        {"runs_mapped", c.runsMapped},
        {"runs_unmapped", c.runsUnmapped},
        {"leaf_writes", c.leafWrites},
        {"leaf_clears", c.leafClears},
        {"bytes_mapped", c.bytesMapped},
        {"bytes_unmapped", c.bytesUnmapped},
        {"tlbi_commands", c.tlbiCommands},
        {"pins", c.pins},
        {"unpins", c.unpins},
        {"pinned_bytes", c.pinnedBytes},
        {"record_mismatches", c.recordMismatches},
        {"update_errors", c.updateErrors},
    };
    for (auto& counter : counters) out.add(Stat{kj::str(counter.name), counter.value});
  }

  kj::Promise<void> shutdown() override {
    // Stop following every VM and give back pins; stage-2 contents go with their domains.
    kj::Vector<kj::Promise<void>> releases;
    for (auto* state : shared->live) {
      state->following = false;
      releases.add(state->source->release().catch_([](kj::Exception&& e) {
        KJ_LOG(WARNING, "stage2_shadow: releasing at shutdown failed", e);
      }));
    }
    return kj::joinPromises(releases.releaseAsArray());
  }

  // implements Stage2Shadow -----------------------------------------------------------------
protected:
  kj::Promise<void> shadow(ShadowContext context) override {
    auto params = context.getParams();
    auto b = kj::heap<Build>(Build{params.getVm()});
    auto& build = *b;
    auto req = shared->allocator.allocPagingRequest();
    req.setTarget(params.getTarget());
    req.initFlags().setNestParent(true);
    return req.send()
        .then([this, &build](auto&& alloc) -> kj::Promise<void> {
          if (alloc.getErrno() != rpc::Errno::OK) {
            build.outcome = Outcome{alloc.getErrno(),
                                    kj::str("domain_allocator: ", alloc.getMessage())};
            return kj::READY_NOW;
          }
          auto domain = alloc.getDomain();
          build.domain = domain;
          auto vmInfo = build.vm.infoRequest(capnp::MessageSize{16, 0}).send();
          return domain.infoRequest().send().then(
              [&build, vmInfo = kj::mv(vmInfo)](auto&& d) mutable {
                auto info = d.getInfo();
                KJ_REQUIRE(info.getKind() == rpc::DomainKind::STAGE2 && info.getNestParent(),
                           "allocPaging(nestParent) returned something else",
                           info.getKind(), info.getNestParent());
                build.facts.id = info.getId();
                build.facts.vmid = info.getVmid();
                build.facts.pgsizeBitmap = info.getPgsizeBitmap();
                build.ias = info.getIas();
                return vmInfo.then([&build](auto&& v) {
                  build.vmName = kj::heapString(v.getInfo().getName());
                  build.ipaBits = v.getInfo().getIpaBits();
                });
              });
        })
        .then([this, &build]() -> kj::Promise<void> {
          if (build.outcome.errno_ != rpc::Errno::OK) return kj::READY_NOW;
          if (build.ipaBits > build.ias) {
            build.outcome = Outcome{
                rpc::Errno::E_RANGE,
                kj::str("the VM's ", build.ipaBits, "-bit guest-physical space does not fit the "
                        "stage-2 domain's ", build.ias, "-bit input")};
            return kj::READY_NOW;
          }
          // Subscribe first, then read the map: a change that starts meanwhile is notified,
          // and its notices wait for the build on the shadow's chain.
          auto state = kj::refcounted<ShadowState>(
              kj::addRef(*shared), KJ_ASSERT_NONNULL(build.domain), build.facts,
              kj::heapString(build.vmName), shared->factory(build.vm, shared->counters));
          auto& s = *state;
          auto sub = build.vm.subscribeRequest();
          sub.setListener(kj::heap<Listener>(kj::addRef(s)));
          build.state = kj::mv(state);
          return sub.send().then([&build, &s](auto&& r) {
            build.subscription = r.getSubscription();
            return s.enqueue([&build, &s]() {
              return s.build().then([&build](Outcome&& o) { build.outcome = kj::mv(o); });
            });
          });
        })
        .then([this, &build, context]() mutable {
          auto results = context.getResults();
          if (build.outcome.errno_ != rpc::Errno::OK) {
            shared->counters.shadowsRefused++;
            KJ_IF_MAYBE(s, build.state) {
              KJ_IF_MAYBE(sub, build.subscription) {
                ShadowServer::retire(kj::mv(*s), kj::mv(*sub));
              } else {
                (*s)->following = false;
              }
            }
            results.setErrno(build.outcome.errno_);
            results.setMessage(build.outcome.message);
            return;
          }
          shared->counters.shadowsCreated++;
          auto& state = KJ_ASSERT_NONNULL(build.state);
          results.setDomain(KJ_ASSERT_NONNULL(build.domain));
          results.setShadow(kj::heap<ShadowServer>(
              kj::mv(state), kj::mv(KJ_ASSERT_NONNULL(build.subscription))));
        })
        .attach(kj::mv(b));
  }

private:
  kj::Own<Shared> shared;
};

}  // namespace

kj::Array<RoleSpec> shadowRoles() {
  return kj::heapArray<RoleSpec>({
      RoleSpec{"domains", capnp::Schema::from<rpc::DomainAllocator>(), true,
               "the domain_allocator the nest-parent stage-2 domains come from"},
  });
}

rpc::Component::Client makeShadowComponent(ComponentContext& ctx, SourceFactory factory) {
  auto shared = kj::refcounted<Shared>(ctx.type.name, ctx.use<rpc::DomainAllocator>("domains"),
                                       kj::mv(factory));
  auto server = kj::heap<ServiceServer>(kj::mv(shared));
  auto& core = *server;
  rpc::Stage2Shadow::Client main = kj::mv(server);
  return makeComponent(ctx.type.name, capnp::typeId<rpc::Stage2Shadow>(), kj::mv(main), core);
}

}  // namespace nb::s2
