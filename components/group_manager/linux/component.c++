// The group_manager component: groups, ownership and each group's domain. See component.h.
//
// Every change of a group — a claim, a release, an attach, a PASID — runs alone: operations on
// one group are queued behind each other (GroupState::tail), because each is several RPCs to the
// domain allocator (one per device) and a half-applied change must never be visible to the
// next. Changes that touch several devices put the devices already changed back when one fails
// (Linux's __iommu_group_set_domain_internal, set_dev_pasid rollback).

#include "components/group_manager/linux/component.h"

#include "components/group_manager/linux/grouping.h"
#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/group-manager.capnp.h"
#include "util/bdf.h"

#include <kj/debug.h>
#include <kj/map.h>
#include <kj/one-of.h>
#include <toml++/toml.h>

namespace nb::groups {

namespace {

using rpc::Errno;

struct Result {
  Errno errno_ = Errno::OK;
  kj::String message;
};

struct DomainRef {
  // A domain and its DomainInfo.id: a value, copied freely (a capability client copies only
  // from a non-const reference, because the copy changes its refcount).
  rpc::Domain::Client cap;
  uint32_t id;

  DomainRef(rpc::Domain::Client cap, uint32_t id) : cap(kj::mv(cap)), id(id) {}
  DomainRef(const DomainRef& o) : cap(const_cast<rpc::Domain::Client&>(o.cap)), id(o.id) {}
  DomainRef(DomainRef&&) = default;
  DomainRef& operator=(const DomainRef& o) {
    cap = const_cast<rpc::Domain::Client&>(o.cap);
    id = o.id;
    return *this;
  }
  DomainRef& operator=(DomainRef&&) = default;
};

struct Device {
  uint32_t group;
  uint32_t maxPasids;  // 0: PCIe PASID cannot be enabled (or no SSIDs)
};

struct GroupState {
  Group formed;
  kj::String smmu;
  rpc::DefaultDomainType defaultType = rpc::DefaultDomainType::TRANSLATED;
  kj::Maybe<DomainRef> defaultDomain;  // set once the group has booted
  kj::Maybe<DomainRef> current;
  rpc::GroupDomain on = rpc::GroupDomain::DEFAULT_DOMAIN;
  uint32_t owners = 0;  // owner_cnt
  uint64_t owner = 0;
  bool exclusive = false;
  kj::TreeMap<uint32_t, DomainRef> pasids;  // pasid_array
  kj::ForkedPromise<void> tail = kj::Promise<void>(kj::READY_NOW).fork();

  uint32_t maxPasids(kj::ArrayPtr<const Device> devices) const {
    uint32_t m = 0;
    for (auto i : formed.members) m = kj::max(m, devices[i].maxPasids);
    return m;
  }
};

// A sequence of per-device steps, undone in reverse order when one fails.
struct Sweep {
  kj::Vector<size_t> devices;
  kj::Function<kj::Promise<Result>(size_t)> apply;
  kj::Function<kj::Promise<Result>(size_t)> undo;
};

struct Counters {
  uint64_t claims = 0, claimErrors = 0, releases = 0;
  uint64_t attaches = 0, attachErrors = 0, replaces = 0, replaceErrors = 0, detaches = 0;
  uint64_t pasidAttaches = 0, pasidErrors = 0, pasidDetaches = 0;
  uint64_t deviceDomainSets = 0, devicePasidSets = 0, rollbacks = 0, rollbackFailures = 0;
  uint64_t defaultTypeConflicts = 0, taskFailures = 0;
};

class Shared final : public kj::Refcounted, public kj::TaskSet::ErrorHandler {
public:
  explicit Shared(rpc::DomainAllocator::Client allocator) : allocator(kj::mv(allocator)) {}

  void taskFailed(kj::Exception&& e) override {
    counters.taskFailures++;
    KJ_LOG(ERROR, "group_manager: background work failed", e);
  }

  rpc::DomainAllocator::Client allocator;
  kj::Maybe<DomainRef> blocked;
  kj::Vector<Function> functions;
  kj::Vector<Device> devices;  // parallel to `functions`
  kj::Vector<kj::Own<GroupState>> groups;
  Counters counters;
  kj::TaskSet tasks{*this};

  DomainRef blockedDomain() { return KJ_ASSERT_NONNULL(blocked); }

  // ---- names

  // A BDF, with or without its segment (without: it must be unique across segments).
  kj::OneOf<size_t, Errno> find(kj::StringPtr text) {
    KJ_IF_MAYBE(name, parseBdfName(text)) {
      kj::Maybe<size_t> found;
      for (auto i : kj::indices(functions)) {
        auto& f = functions[i];
        if (f.rid != name->rid) continue;
        KJ_IF_MAYBE(s, name->segment) {
          if (*s != f.segment) continue;
        }
        if (found != nullptr) return Errno::E_INVAL;  // ambiguous without a segment
        found = i;
      }
      KJ_IF_MAYBE(i, found) { return *i; }
      return Errno::E_NO_DEV;
    }
    return Errno::E_INVAL;
  }

  // ---- serialisation

  kj::Promise<Result> serialized(GroupState& g, kj::Function<kj::Promise<Result>()> op) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    auto previous = kj::mv(g.tail);
    g.tail = paf.promise.fork();
    return previous.addBranch()
        .then([op = kj::mv(op)]() mutable { return op(); })
        .attach(kj::defer([f = kj::mv(paf.fulfiller)]() mutable { f->fulfill(); }));
  }

  // Resolves once every change queued so far (on any group) has finished: reads wait for it, so
  // a client sees what it asked for before — including a release caused by dropping a claim.
  kj::Promise<void> settled() {
    auto branches = KJ_MAP(g, groups) { return g->tail.addBranch(); };
    return kj::joinPromises(kj::mv(branches));
  }

  // ---- per-device steps through the domain allocator

  kj::Promise<Result> attachDevice(size_t device, DomainRef domain) {
    counters.deviceDomainSets++;
    auto req = allocator.attachDeviceRequest();
    req.setDevice(functions[device].bdf);
    req.setDomain(domain.cap);
    return req.send().then([this, device](auto r) {
      if (r.getErrno() == Errno::OK) return Result{};
      return Result{r.getErrno(), kj::str(functions[device].bdf, ": ", r.getMessage())};
    });
  }

  kj::Promise<Result> setPasid(size_t device, uint32_t pasid, DomainRef domain) {
    counters.devicePasidSets++;
    auto req = allocator.setPasidRequest();
    req.setDevice(functions[device].bdf);
    req.setPasid(pasid);
    req.setDomain(domain.cap);
    return req.send().then([this, device, pasid](auto r) {
      if (r.getErrno() == Errno::OK) return Result{};
      return Result{r.getErrno(),
                    kj::str(functions[device].bdf, " pasid ", pasid, ": ", r.getMessage())};
    });
  }

  kj::Promise<Result> sweep(kj::Own<Sweep> s) {
    auto& ref = *s;
    return sweepFrom(ref, 0).attach(kj::mv(s));
  }

  kj::Promise<Result> sweepFrom(Sweep& s, size_t k) {
    if (k == s.devices.size()) return Result{};
    return s.apply(s.devices[k]).then([this, &s, k](Result r) -> kj::Promise<Result> {
      if (r.errno_ == Errno::OK) return sweepFrom(s, k + 1);
      counters.rollbacks++;
      return undoBelow(s, k).then([r = kj::mv(r)]() mutable { return kj::mv(r); });
    });
  }

  kj::Promise<void> undoBelow(Sweep& s, size_t k) {
    if (k == 0) return kj::READY_NOW;
    return s.undo(s.devices[k - 1]).then([this, &s, k](Result r) {
      if (r.errno_ != Errno::OK) {
        counters.rollbackFailures++;
        KJ_LOG(ERROR, "group_manager: rollback failed", r.message);
      }
      return undoBelow(s, k - 1);
    });
  }

  // __iommu_group_set_domain: every device of `g` onto `target`, or none of them.
  kj::Promise<Result> setGroupDomain(GroupState& g, DomainRef target) {
    auto old = KJ_ASSERT_NONNULL(g.current);
    auto s = kj::heap<Sweep>();
    for (auto i : g.formed.members) s->devices.add(i);
    s->apply = [this, target](size_t d) mutable { return attachDevice(d, target); };
    s->undo = [this, old](size_t d) mutable { return attachDevice(d, old); };
    return sweep(kj::mv(s)).then([this, &g, target](Result r) {
      if (r.errno_ == Errno::OK) {
        g.current = target;
        g.on = classify(g, target.id);
      }
      return kj::mv(r);
    });
  }

  rpc::GroupDomain classify(GroupState& g, uint32_t id) {
    KJ_IF_MAYBE(d, g.defaultDomain) {
      if (d->id == id) return rpc::GroupDomain::DEFAULT_DOMAIN;
    }
    if (blockedDomain().id == id) return rpc::GroupDomain::BLOCKING_DOMAIN;
    return rpc::GroupDomain::ATTACHED;
  }

  kj::Vector<size_t> pasidDevices(GroupState& g) {
    kj::Vector<size_t> out;
    for (auto i : g.formed.members) {
      if (devices[i].maxPasids > 0) out.add(i);
    }
    return out;
  }

  kj::Promise<Result> setGroupPasid(GroupState& g, uint32_t pasid, DomainRef target,
                                    DomainRef old) {
    auto s = kj::heap<Sweep>();
    s->devices = pasidDevices(g);
    s->apply = [this, pasid, target](size_t d) mutable { return setPasid(d, pasid, target); };
    s->undo = [this, pasid, old](size_t d) mutable { return setPasid(d, pasid, old); };
    return sweep(kj::mv(s));
  }

  kj::Promise<DomainRef> identify(rpc::Domain::Client domain) {
    return domain.infoRequest(capnp::MessageSize{4, 0}).send().then([domain](auto r) mutable {
      return DomainRef{kj::mv(domain), r.getInfo().getId()};
    });
  }

  // __iommu_attach_group (and iommu_attach_device when `singletonRequired`).
  kj::Promise<Result> attach(uint32_t group, rpc::Domain::Client domain, bool singletonRequired) {
    auto& g = *groups[group];
    return serialized(g, [this, &g, domain, singletonRequired]() mutable -> kj::Promise<Result> {
      if (singletonRequired && g.formed.members.size() != 1) {
        return Result{Errno::E_INVAL, kj::str("iommu_attach_device: group ", g.formed.id, " has ",
                                              g.formed.members.size(), " devices")};
      }
      if (g.on == rpc::GroupDomain::ATTACHED) {
        return Result{Errno::E_BUSY, kj::str("group ", g.formed.id,
                                             " already has a domain attached: replace or detach")};
      }
      return identify(kj::mv(domain)).then([this, &g](DomainRef ref) {
        return setGroupDomain(g, kj::mv(ref));
      });
    });
  }

  // __iommu_group_set_core_domain: blocking while owned, default otherwise.
  kj::Promise<Result> setCoreDomain(GroupState& g) {
    return setGroupDomain(g, g.owners > 0 ? blockedDomain() : KJ_ASSERT_NONNULL(g.defaultDomain));
  }

  // ---- ownership (facts 6: __iommu_take_dma_ownership / __iommu_release_dma_ownership)

  kj::Promise<Result> claim(uint32_t group, uint64_t owner, bool exclusive) {
    auto& g = *groups[group];
    return serialized(g, [this, &g, owner, exclusive]() -> kj::Promise<Result> {
      if (g.owners > 0) {
        if (exclusive || g.exclusive || g.owner != owner) {
          return Result{Errno::E_PERM, kj::str("group ", g.formed.id, " is owned (owner ", g.owner,
                                               g.exclusive ? ", exclusive)" : ")")};
        }
        g.owners++;
        return Result{};
      }
      if (g.on != rpc::GroupDomain::DEFAULT_DOMAIN) {
        return Result{Errno::E_BUSY,
                      kj::str("group ", g.formed.id, " is not on its default domain")};
      }
      return setGroupDomain(g, blockedDomain()).then([&g, owner, exclusive](Result r) {
        if (r.errno_ == Errno::OK) {
          g.owners = 1;
          g.owner = owner;
          g.exclusive = exclusive;
        }
        return kj::mv(r);
      });
    });
  }

  kj::Promise<void> release(uint32_t group) {
    counters.releases++;
    auto& g = *groups[group];
    auto released = serialized(g, [this, &g]() -> kj::Promise<Result> {
      KJ_ASSERT(g.owners > 0, "release without a claim", g.formed.id);
      if (--g.owners > 0) return Result{};
      // The owner should have detached its PASIDs (Linux warns otherwise): detach what is left.
      kj::Promise<void> pasids = kj::READY_NOW;
      for (auto& entry : g.pasids) {
        uint32_t pasid = entry.key;
        auto domain = entry.value;
        pasids = pasids.then([this, &g, pasid, domain]() {
          return setGroupPasid(g, pasid, blockedDomain(), domain).ignoreResult();
        });
      }
      auto restored = pasids.then([this, &g]() {
        g.pasids.clear();
        g.owner = 0;
        g.exclusive = false;
        return setGroupDomain(g, KJ_ASSERT_NONNULL(g.defaultDomain));
      });
      return restored.then([](Result r) {
        KJ_REQUIRE(r.errno_ == Errno::OK, "returning a group to its default domain failed",
                   r.message);
        return kj::mv(r);
      });
    });
    return released.ignoreResult();
  }

  // Shutdown: every domain reference goes (ownerships still held fail from now on).
  void dropDomains() {
    stopped = true;
    for (auto& g : groups) {
      g->defaultDomain = nullptr;
      g->current = nullptr;
      g->pasids.clear();
    }
    blocked = nullptr;
  }
  bool stopped = false;

  // ---- reporting

  void fillGroup(rpc::GroupInfo::Builder out, GroupState& g) {
    out.setId(g.formed.id);
    auto devs = out.initDevices(g.formed.members.size());
    for (auto i : kj::indices(g.formed.members)) devs.set(i, functions[g.formed.members[i]].bdf);
    out.setSmmu(g.smmu);
    out.setReason(g.formed.reason);
    out.setDefaultType(g.defaultType);
    KJ_IF_MAYBE(d, g.defaultDomain) { out.setDefaultDomain(d->id); }
    out.setOn(g.on);
    KJ_IF_MAYBE(c, g.current) { out.setDomain(c->id); }
    out.setOwners(g.owners);
    out.setOwner(g.owner);
    out.setExclusive(g.exclusive);
    auto pasids = out.initPasids(g.pasids.size());
    size_t k = 0;
    for (auto& e : g.pasids) {
      pasids[k].setPasid(e.key);
      pasids[k].setDomain(e.value.id);
      k++;
    }
    out.setMaxPasids(g.maxPasids(devices));
  }
};

// ======================================================================================
// Ownership

class OwnershipServer final : public rpc::Ownership::Server {
public:
  OwnershipServer(kj::Own<Shared> shared, uint32_t group, kj::Maybe<size_t> device)
      : shared_(kj::mv(shared)), group_(group), device_(device) {}

  ~OwnershipServer() noexcept(false) {
    // Dropped without release(): the claim goes with it (also when the holder's process died).
    if (!released_ && !shared_->stopped) shared_->tasks.add(shared_->release(group_));
  }

protected:
  kj::Promise<void> info(InfoContext context) override {
    requireClaim();
    return shared_->settled().then([this, context]() mutable {
      auto results = context.getResults();
      shared_->fillGroup(results.initGroup(), group());
      KJ_IF_MAYBE(d, device_) { results.setDevice(shared_->functions[*d].bdf); }
    });
  }

  kj::Promise<void> attach(AttachContext context) override {
    requireClaim();
    shared_->counters.attaches++;
    return shared_->attach(group_, context.getParams().getDomain(), false)
        .then([this, context](Result r) mutable {
          if (r.errno_ != Errno::OK) shared_->counters.attachErrors++;
          return done(context, kj::mv(r));
        });
  }

  kj::Promise<void> replace(ReplaceContext context) override {
    requireClaim();
    auto& g = group();
    auto domain = context.getParams().getDomain();
    shared_->counters.replaces++;
    auto& s = *shared_;
    return s
        .serialized(g,
                    [&s, &g, domain]() mutable {
                      return s.identify(kj::mv(domain))
                          .then([&s, &g](DomainRef ref) -> kj::Promise<Result> {
                            if (KJ_ASSERT_NONNULL(g.current).id == ref.id) return Result{};
                            return s.setGroupDomain(g, kj::mv(ref));
                          });
                    })
        .then([this, context](Result r) mutable {
          if (r.errno_ != Errno::OK) shared_->counters.replaceErrors++;
          return done(context, kj::mv(r));
        });
  }

  kj::Promise<void> detach(DetachContext context) override {
    requireClaim();
    shared_->counters.detaches++;
    auto& s = *shared_;
    auto& g = group();
    return s.serialized(g, [&s, &g]() { return s.setCoreDomain(g); })
        .then([context](Result r) mutable { context.getResults().setErrno(r.errno_); });
  }

  kj::Promise<void> attachPasid(AttachPasidContext context) override {
    requireClaim();
    auto params = context.getParams();
    uint32_t pasid = params.getPasid();
    auto domain = params.getDomain();
    uint32_t max = maxPasids();
    shared_->counters.pasidAttaches++;
    auto& s = *shared_;
    auto& g = group();
    return s
        .serialized(
            g,
            [&s, &g, pasid, domain, max]() mutable -> kj::Promise<Result> {
              if (pasid == 0 || pasid >= max) {
                return Result{Errno::E_INVAL,
                              kj::str("pasid ", pasid, " outside 1..", max == 0 ? 0 : max - 1)};
              }
              if (g.pasids.find(pasid) != nullptr) {
                return Result{Errno::E_BUSY, kj::str("pasid ", pasid, " already has a domain")};
              }
              return s.identify(kj::mv(domain)).then([&s, &g, pasid](DomainRef ref) {
                return s.setGroupPasid(g, pasid, ref, s.blockedDomain())
                    .then([&g, pasid, ref](Result r) {
                      if (r.errno_ == Errno::OK) g.pasids.insert(pasid, ref);
                      return kj::mv(r);
                    });
              });
            })
        .then([this, context](Result r) mutable {
          if (r.errno_ != Errno::OK) shared_->counters.pasidErrors++;
          return done(context, kj::mv(r));
        });
  }

  kj::Promise<void> replacePasid(ReplacePasidContext context) override {
    requireClaim();
    auto params = context.getParams();
    uint32_t pasid = params.getPasid();
    auto domain = params.getDomain();
    auto& s = *shared_;
    auto& g = group();
    return s
        .serialized(
            g,
            [&s, &g, pasid, domain]() mutable -> kj::Promise<Result> {
              DomainRef old = placeholder();
              KJ_IF_MAYBE(o, g.pasids.find(pasid)) {
                old = *o;
              } else {
                return Result{Errno::E_NO_ENT, kj::str("nothing is attached to pasid ", pasid)};
              }
              return s.identify(kj::mv(domain))
                  .then([&s, &g, pasid, old](DomainRef ref) -> kj::Promise<Result> {
                    if (ref.id == old.id) return Result{};
                    return s.setGroupPasid(g, pasid, ref, old).then([&g, pasid, ref](Result r) {
                      if (r.errno_ == Errno::OK)
                        g.pasids.upsert(pasid, ref,
                                        [](DomainRef& a, DomainRef&& b) { a = kj::mv(b); });
                      return kj::mv(r);
                    });
                  });
            })
        .then([this, context](Result r) mutable {
          if (r.errno_ != Errno::OK) shared_->counters.pasidErrors++;
          return done(context, kj::mv(r));
        });
  }

  kj::Promise<void> detachPasid(DetachPasidContext context) override {
    requireClaim();
    uint32_t pasid = context.getParams().getPasid();
    shared_->counters.pasidDetaches++;
    auto& s = *shared_;
    auto& g = group();
    return s
        .serialized(
            g,
            [&s, &g, pasid]() -> kj::Promise<Result> {
              DomainRef old = placeholder();
              KJ_IF_MAYBE(o, g.pasids.find(pasid)) {
                old = *o;
              } else {
                return Result{Errno::E_NO_ENT, kj::str("nothing is attached to pasid ", pasid)};
              }
              return s.setGroupPasid(g, pasid, s.blockedDomain(), old).then([&g, pasid](Result r) {
                if (r.errno_ == Errno::OK) g.pasids.erase(pasid);
                return kj::mv(r);
              });
            })
        .then([context](Result r) mutable { context.getResults().setErrno(r.errno_); });
  }

  kj::Promise<void> release(ReleaseContext context) override {
    requireClaim();
    released_ = true;
    return shared_->release(group_);
  }

private:
  GroupState& group() { return *shared_->groups[group_]; }

  void requireClaim() {
    KJ_REQUIRE(!released_, "this ownership has been released");
    KJ_REQUIRE(!shared_->stopped, "group_manager has been shut down");
  }

  uint32_t maxPasids() {
    KJ_IF_MAYBE(d, device_) { return shared_->devices[*d].maxPasids; }
    return group().maxPasids(shared_->devices);
  }

  // A DomainRef to overwrite before use.
  static DomainRef placeholder() { return DomainRef{rpc::Domain::Client(nullptr), 0}; }

  template <typename Context>
  static kj::Promise<void> done(Context& context, Result r) {
    auto results = context.getResults();
    results.setErrno(r.errno_);
    if (r.message.size() > 0) results.setMessage(r.message);
    return kj::READY_NOW;
  }

  kj::Own<Shared> shared_;
  uint32_t group_;
  kj::Maybe<size_t> device_;
  bool released_ = false;
};

// ======================================================================================
// The main capability

class GroupManagerServer final : public rpc::GroupManager::Server, public ComponentCore {
public:
  explicit GroupManagerServer(kj::Own<Shared> shared) : shared_(kj::mv(shared)) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    auto& c = shared_->counters;
    uint64_t owned = 0, attached = 0, pasids = 0;
    for (auto& g : shared_->groups) {
      owned += g->owners > 0;
      attached += g->on == rpc::GroupDomain::ATTACHED;
      pasids += g->pasids.size();
    }
    out.add(Stat{kj::str("groups"), shared_->groups.size()});
    out.add(Stat{kj::str("devices"), shared_->functions.size()});
    out.add(Stat{kj::str("groups_owned"), owned});
    out.add(Stat{kj::str("groups_attached"), attached});
    out.add(Stat{kj::str("pasids_attached"), pasids});
    out.add(Stat{kj::str("claims"), c.claims});
    out.add(Stat{kj::str("claim_errors"), c.claimErrors});
    out.add(Stat{kj::str("releases"), c.releases});
    out.add(Stat{kj::str("attaches"), c.attaches});
    out.add(Stat{kj::str("attach_errors"), c.attachErrors});
    out.add(Stat{kj::str("replaces"), c.replaces});
    out.add(Stat{kj::str("replace_errors"), c.replaceErrors});
    out.add(Stat{kj::str("detaches"), c.detaches});
    out.add(Stat{kj::str("pasid_attaches"), c.pasidAttaches});
    out.add(Stat{kj::str("pasid_detaches"), c.pasidDetaches});
    out.add(Stat{kj::str("pasid_errors"), c.pasidErrors});
    out.add(Stat{kj::str("device_domain_sets"), c.deviceDomainSets});
    out.add(Stat{kj::str("device_pasid_sets"), c.devicePasidSets});
    out.add(Stat{kj::str("rollbacks"), c.rollbacks});
    out.add(Stat{kj::str("rollback_failures"), c.rollbackFailures});
    out.add(Stat{kj::str("default_type_conflicts"), c.defaultTypeConflicts});
    out.add(Stat{kj::str("task_failures"), c.taskFailures});
  }

  kj::Promise<void> shutdown() override {
    // Let queued changes finish, then let go of every domain (the allocator frees them).
    return shared_->settled().then([this]() { shared_->dropDomains(); });
  }

  // implements GroupManager -----------------------------------------------------------------
protected:
  kj::Promise<void> groups(GroupsContext context) override {
    return shared_->settled().then([this, context]() mutable {
      auto list = context.getResults().initGroups(shared_->groups.size());
      for (auto i : kj::indices(shared_->groups)) shared_->fillGroup(list[i], *shared_->groups[i]);
    });
  }

  kj::Promise<void> groupOf(GroupOfContext context) override {
    return shared_->settled().then([this, context]() mutable {
      auto results = context.getResults();
      KJ_SWITCH_ONEOF(shared_->find(context.getParams().getDevice())) {
        KJ_CASE_ONEOF(e, Errno) { results.setErrno(e); }
        KJ_CASE_ONEOF(d, size_t) {
          shared_->fillGroup(results.initGroup(), *shared_->groups[shared_->devices[d].group]);
        }
      }
    });
  }

  kj::Promise<void> claimGroup(ClaimGroupContext context) override {
    auto params = context.getParams();
    if (params.getGroup() >= shared_->groups.size()) return refuse(context, Errno::E_NO_ENT);
    return claim(context, params.getGroup(), params.getOwner(), true, nullptr);
  }

  kj::Promise<void> claimDevice(ClaimDeviceContext context) override {
    auto params = context.getParams();
    KJ_SWITCH_ONEOF(shared_->find(params.getDevice())) {
      KJ_CASE_ONEOF(e, Errno) { return refuse(context, e); }
      KJ_CASE_ONEOF(d, size_t) {
        return claim(context, shared_->devices[d].group, params.getOwner(), false, d);
      }
    }
    KJ_UNREACHABLE;
  }

  kj::Promise<void> attachDevice(AttachDeviceContext context) override {
    auto params = context.getParams();
    shared_->counters.attaches++;
    KJ_SWITCH_ONEOF(shared_->find(params.getDevice())) {
      KJ_CASE_ONEOF(e, Errno) {
        shared_->counters.attachErrors++;
        context.getResults().setErrno(e);
        return kj::READY_NOW;
      }
      KJ_CASE_ONEOF(d, size_t) {
        return shared_->attach(shared_->devices[d].group, params.getDomain(), true)
            .then([this, context](Result r) mutable {
              auto results = context.getResults();
              results.setErrno(r.errno_);
              if (r.errno_ != Errno::OK) {
                shared_->counters.attachErrors++;
                results.setMessage(r.message);
              }
            });
      }
    }
    KJ_UNREACHABLE;
  }

  kj::Promise<void> detachDevice(DetachDeviceContext context) override {
    shared_->counters.detaches++;
    KJ_SWITCH_ONEOF(shared_->find(context.getParams().getDevice())) {
      KJ_CASE_ONEOF(e, Errno) {
        context.getResults().setErrno(e);
        return kj::READY_NOW;
      }
      KJ_CASE_ONEOF(d, size_t) {
        auto& s = *shared_;
        auto& g = *s.groups[s.devices[d].group];
        return s
            .serialized(g,
                        [&s, &g]() -> kj::Promise<Result> {
                          if (g.formed.members.size() != 1) {
                            return Result{Errno::E_INVAL,
                                          kj::str("iommu_detach_device: group ", g.formed.id,
                                                  " has ", g.formed.members.size(), " devices")};
                          }
                          return s.setCoreDomain(g);
                        })
            .then([context](Result r) mutable { context.getResults().setErrno(r.errno_); });
      }
    }
    KJ_UNREACHABLE;
  }

private:
  template <typename Context>
  kj::Promise<void> refuse(Context& context, Errno e) {
    shared_->counters.claims++;
    shared_->counters.claimErrors++;
    context.getResults().setErrno(e);
    return kj::READY_NOW;
  }

  template <typename Context>
  kj::Promise<void> claim(Context& context, uint32_t group, uint64_t owner, bool exclusive,
                          kj::Maybe<size_t> device) {
    if (owner == 0) return refuse(context, Errno::E_INVAL);
    shared_->counters.claims++;
    return shared_->claim(group, owner, exclusive)
        .then([this, context, group, device](Result r) mutable {
          auto results = context.getResults();
          results.setErrno(r.errno_);
          if (r.errno_ == Errno::OK) {
            results.setOwnership(kj::heap<OwnershipServer>(kj::addRef(*shared_), group, device));
          } else {
            shared_->counters.claimErrors++;
          }
        });
  }

  kj::Own<Shared> shared_;
};

// ======================================================================================
// Start: topologies -> groups -> default domains on every device

const kj::StringPtr DEFAULT_DOMAIN_CHOICES[] = {"translated", "identity"};

kj::Maybe<rpc::DefaultDomainType> parseType(kj::StringPtr s) {
  if (s == "translated") return rpc::DefaultDomainType::TRANSLATED;
  if (s == "identity") return rpc::DefaultDomainType::IDENTITY;
  return nullptr;
}

void checkDeviceDefaults(const toml::node& value, SettingErrors& errors) {
  auto array = value.as_array();
  if (array == nullptr) return;  // the type check reported it
  for (size_t i = 0; i < array->size(); i++) {
    auto& e = *array->get(i);
    auto t = e.as_table();
    auto at = kj::str(".", i);
    if (t == nullptr) {
      errors.error(
          e, at,
          kj::str("must be a table: { bdf = \"0000:05:00.0\", default_domain = \"identity\" }"));
      continue;
    }
    for (auto&& [k, v] : *t) {
      auto key = kj::heapString(k.str().data(), k.str().size());
      if (key == "bdf") {
        auto s = v.value<std::string>();
        if (!s || parseBdfName(kj::StringPtr(s->c_str())) == nullptr) {
          errors.error(v, kj::str(at, ".bdf"),
                       kj::str("must be a BDF such as \"0000:05:00.0\" or \"05:00.0\""));
        }
      } else if (key == "default_domain") {
        auto s = v.value<std::string>();
        if (!s || parseType(kj::StringPtr(s->c_str())) == nullptr) {
          errors.error(v, kj::str(at, ".default_domain"),
                       kj::str("must be \"translated\" or \"identity\""));
        }
      } else {
        errors.error(v, kj::str(at, ".", key),
                     kj::str("unknown key '", key, "' (bdf, default_domain)"));
      }
    }
    if (!t->contains("bdf"))
      errors.error(e, kj::str(at, ".bdf"), kj::str("missing required key 'bdf'"));
    if (!t->contains("default_domain")) {
      errors.error(e, kj::str(at, ".default_domain"),
                   kj::str("missing required key 'default_domain'"));
    }
  }
}

struct Start {
  kj::Own<Shared> shared;
  rpc::DefaultDomainType globalType;
  kj::Vector<kj::Tuple<BdfName, rpc::DefaultDomainType>> overrides;
  kj::StringPtr typeName;
};

kj::Promise<void> bootGroup(Shared& s, GroupState& g) {
  kj::Promise<DomainRef> domain = nullptr;
  if (g.defaultType == rpc::DefaultDomainType::IDENTITY) {
    domain = s.identify(s.allocator.allocIdentityRequest().send().getDomain());
  } else {
    // Linux's __iommu_group_domain_alloc: the group's first device names the SMMU. A group never
    // spans SMMU instances (one topology sits behind one SMMU), so any device would do.
    auto req = s.allocator.allocPagingRequest();
    req.initTarget().setDevice(s.functions[g.formed.members[0]].bdf);
    domain = req.send().then([&s, &g](auto r) {
      KJ_REQUIRE(r.getErrno() == Errno::OK, "allocating a group's default domain failed",
                 g.formed.id, r.getErrno(), r.getMessage());
      return s.identify(r.getDomain());
    });
  }
  return domain.then([&s, &g](DomainRef ref) {
    g.defaultDomain = ref;
    // Boot attaches to devices that have nothing yet: no rollback target, so one at a time.
    kj::Promise<void> chain = kj::READY_NOW;
    for (auto d : g.formed.members) {
      chain = chain.then([&s, d, ref]() {
        return s.attachDevice(d, ref).then([](Result r) {
          KJ_REQUIRE(r.errno_ == Errno::OK, "attaching a default domain failed", r.message);
        });
      });
    }
    return chain.then([&g, ref]() {
      g.current = ref;
      g.on = rpc::GroupDomain::DEFAULT_DOMAIN;
    });
  });
}

kj::Promise<rpc::Component::Client> startGroupManager(ComponentContext& ctx) {
  auto start = kj::heap<Start>();
  start->shared = kj::refcounted<Shared>(ctx.use<rpc::DomainAllocator>("domains"));
  start->globalType =
      KJ_ASSERT_NONNULL(parseType(ctx.settings.string("default_domain", "translated")));
  start->typeName = ctx.type.name;
  if (auto defaults = ctx.settings.table().get("device_defaults")) {
    for (auto& e : *defaults->as_array()) {
      auto& t = *e.as_table();
      auto bdf =
          KJ_ASSERT_NONNULL(parseBdfName(kj::StringPtr(t["bdf"].value<std::string>()->c_str())));
      auto type = KJ_ASSERT_NONNULL(
          parseType(kj::StringPtr(t["default_domain"].value<std::string>()->c_str())));
      start->overrides.add(kj::tuple(bdf, type));
    }
  }

  auto topologies = ctx.useList<rpc::PciTopology>("pci");
  using Devices = capnp::Response<rpc::PciTopology::DevicesResults>;
  auto lists = KJ_MAP(t, topologies)->kj::Promise<Devices> { return t.devicesRequest().send(); };
  auto& shared = *start->shared;
  auto masters = shared.allocator.mastersRequest().send();
  auto blocked = shared.identify(shared.allocator.allocBlockedRequest().send().getDomain());

  return kj::joinPromises(kj::mv(lists))
      .then([start = kj::mv(start), masters = kj::mv(masters),
             blocked = kj::mv(blocked)](auto responses) mutable {
        auto& s = *start->shared;
        for (auto& r : responses) {
          for (auto d : r.getDevices()) s.functions.add(functionFrom(d));
        }
        return blocked.then(
            [start = kj::mv(start), masters = kj::mv(masters)](DomainRef b) mutable {
              start->shared->blocked = b;
              return masters.then([start = kj::mv(start)](auto m) mutable {
                return kj::tuple(kj::mv(start), kj::mv(m));
              });
            });
      })
      .then([](auto pair) {
        auto start = kj::mv(kj::get<0>(pair));
        auto masters = kj::mv(kj::get<1>(pair));
        auto& s = *start->shared;
        // Devices: their group and how many PASIDs they can use.
        kj::HashMap<kj::StringPtr, uint8_t> ssidBits;
        for (auto m : masters.getMasters())
          ssidBits.upsert(m.getDevice(), m.getSsidBits(), [](auto&, auto&&) {});
        auto grouping = formGroups(s.functions);
        for (auto i : kj::indices(s.functions)) {
          auto& f = s.functions[i];
          uint8_t bits = 0;
          KJ_IF_MAYBE(b, ssidBits.find(f.bdf)) { bits = *b; }
          uint32_t max = pasidCapable(f, s.functions) && bits > 0 ? uint32_t(1) << bits : 0;
          s.devices.add(Device{grouping.groupOf[i], max});
        }
        for (auto& formed : grouping.groups) {
          auto g = kj::heap<GroupState>();
          g->smmu = kj::heapString(s.functions[formed.members[0]].smmu);
          // Per-device overrides win when the group's devices agree; a conflict keeps the
          // global type (Linux: "using default").
          kj::Maybe<rpc::DefaultDomainType> wanted;
          bool conflict = false;
          for (auto m : formed.members) {
            auto& f = s.functions[m];
            for (auto& o : start->overrides) {
              auto& name = kj::get<0>(o);
              bool segmentOk = true;
              KJ_IF_MAYBE(seg, name.segment) { segmentOk = *seg == f.segment; }
              if (!segmentOk || name.rid != f.rid) continue;
              KJ_IF_MAYBE(w, wanted) {
                if (*w != kj::get<1>(o)) conflict = true;
              } else {
                wanted = kj::get<1>(o);
              }
            }
          }
          if (conflict) s.counters.defaultTypeConflicts++;
          g->defaultType = conflict ? start->globalType : wanted.orDefault(start->globalType);
          g->formed = kj::mv(formed);
          s.groups.add(kj::mv(g));
        }
        kj::Promise<void> chain = kj::READY_NOW;
        for (auto& g : s.groups) {
          chain = chain.then([&s, &g = *g]() { return bootGroup(s, g); });
        }
        return chain.then([start = kj::mv(start)]() mutable {
          auto server = kj::heap<GroupManagerServer>(kj::mv(start->shared));
          auto& core = *server;
          rpc::GroupManager::Client main = kj::mv(server);
          return makeComponent(start->typeName, capnp::typeId<rpc::GroupManager>(), kj::mv(main),
                               core);
        });
      });
}

kj::Promise<rpc::Component::Client> makeGroupManager(ComponentContext& ctx) {
  return kj::evalNow([&]() { return startGroupManager(ctx); });
}

}  // namespace

ComponentType groupManagerType() {
  return ComponentType{
      "group_manager/linux",
      "iommu groups by Linux's pci_device_group rules, DMA ownership, default and blocking "
      "domains, attach / replace / detach and PASID attach with rollback",
      capnp::Schema::from<rpc::GroupManager>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"default_domain", SettingType::CHOICE, false, DEFAULT_DOMAIN_CHOICES,
                      "every group's default domain: \"translated\" (IOMMU_DOMAIN_DMA, default) or "
                      "\"identity\" (iommu.passthrough=1)"},
          SettingSpec{"device_defaults", SettingType::ARRAY, false, nullptr,
                      "per-device default domain overrides: [{ bdf = \"0000:05:00.0\", "
                      "default_domain = \"identity\" }]",
                      checkDeviceDefaults},
      }),
      kj::heapArray<RoleSpec>({
          RoleSpec{"pci", capnp::Schema::from<rpc::PciTopology>(), true,
                   "the PCIe topologies (hw/pci), one per SMMU instance", true},
          RoleSpec{"domains", capnp::Schema::from<rpc::DomainAllocator>(), true,
                   "the domain allocator"},
      }),
      makeGroupManager};
}

}  // namespace nb::groups
