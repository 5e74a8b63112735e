// hw/vm: the VM model served over RPC. See component.h.
//
// Changes to the memory map run one at a time, in arrival order (a promise chain, `tail`): each
// is checked against the map as the previous change left it, claims or returns frames, and
// notifies every listener before it takes effect and after, awaiting all of them both times —
// so a stage-2 shadow has unmapped and invalidated before a page leaves the map, and has
// remapped before the change's caller hears it is done. Queries, pins and guest accesses are
// not queued: they see the map as it is (the old map until a change is applied). While a
// change's before-notices are out, pins touching its range are refused (eBusy), as KVM blocks
// new faults while an invalidation is in progress.

#include "hw/vm/component.h"

#include "hw/vm/memslots.h"
#include "hw/vm/settings.h"
#include "interfaces/vm.capnp.h"
#include "util/bits.h"

#include <toml++/toml.h>

namespace nb::vm {

namespace {

constexpr uint64_t MAX_ACCESS = 1 << 20;      // read/write bytes per call: bulk data goes direct
constexpr uint64_t MAX_ALLOC_ALIGN = 1 << 30;  // the largest stage-2 block with a 4K granule

kj::String hex(uint64_t v) { return kj::str("0x", kj::hex(v)); }
kj::String range(uint64_t start, uint64_t size) {
  return kj::str("[", hex(start), ", ", hex(start + size), ")");
}

// The alignment an allocated backing should have so that stage 2 can map the slot with blocks:
// the GPA's own alignment, no more than the slot's size rounds down to, at most 1 GiB.
uint64_t preferredAlign(uint64_t gpa, uint64_t size) {
  uint64_t align = MAX_ALLOC_ALIGN;
  if (gpa != 0) align = kj::min(align, gpa & -gpa);
  align = kj::min(align, uint64_t(1) << log2Exact(size));
  return kj::max(align, PAGE_SIZE);
}

void fillMemslot(rpc::Memslot::Builder out, const Memslot& s) {
  out.setSlot(s.id);
  out.setGpa(s.gpa);
  out.setSize(s.size);
  out.setPa(s.pa);
  out.setReadonly(s.readonly);
  out.setAllocated(s.allocated);
}

// A change's result, kept apart from the RPC context: the change runs even if its caller has
// gone away.
struct Outcome {
  rpc::Errno code = rpc::Errno::OK;
  kj::String message;
  kj::Maybe<Memslot> slot;
};

Outcome refuse(rpc::Errno code, kj::String message) { return Outcome{code, kj::mv(message)}; }

struct Span {
  uint64_t gpa, size;
};

struct Change {
  rpc::MemslotChangeKind kind;
  uint32_t slot;
  Span before;  // the GPA range about to change
  Span after;   // the GPA range that changed
  kj::Maybe<Memslot> oldSlot, newSlot;
  uint64_t seq = 0;  // set when it runs
};

enum class Phase { BEFORE, AFTER };

// ======================================================================================
// The VM's state, shared by the main capability and its subscriptions

class VmState final : public kj::Refcounted {
public:
  VmState(kj::StringPtr name, unsigned ipaBits, PhysMem& mem, rpc::FrameAllocator::Client frames,
          MemslotMap map)
      : name(kj::heapString(name)),
        ipaBits(ipaBits),
        mem(mem),
        frames(kj::mv(frames)),
        map(kj::mv(map)) {}

  kj::String name;
  unsigned ipaBits;
  PhysMem& mem;
  rpc::FrameAllocator::Client frames;
  MemslotMap map;
  PinCounts pins;

  struct Listener {
    uint64_t id;
    rpc::MemslotListener::Client client;
    bool lost = false;   // its subscription was dropped without cancel(): see vm.capnp
  };
  kj::Vector<Listener> listeners;
  uint64_t nextListenerId = 1;
  uint64_t seq = 0;  // changes run so far: the last MemslotChange.seq
  // The GPA range whose before-notices are out (and the change's seq): pins touching it are
  // refused.
  struct Invalidating {
    Span span;
    uint64_t seq;
  };
  kj::Maybe<Invalidating> invalidating;

  struct Counters {
    uint64_t adds = 0, deletes = 0, moves = 0, flagChanges = 0, unchanged = 0, refused = 0;
    uint64_t noticesBefore = 0, noticesAfter = 0, listenerFailures = 0;
    uint64_t pins = 0, unpins = 0, pinsRefused = 0;
    uint64_t translations = 0, reads = 0, writes = 0, bytesRead = 0, bytesWritten = 0;
    uint64_t accessFaults = 0;
  } counters;

  // Last member: destroyed first, so no queued change outlives what it uses.
  kj::ForkedPromise<void> tail = kj::Promise<void>(kj::READY_NOW).fork();

  uint64_t subscribe(rpc::MemslotListener::Client client) {
    uint64_t id = nextListenerId++;
    listeners.add(Listener{id, kj::mv(client)});
    return id;
  }

  void lose(uint64_t id) {
    for (auto& l : listeners) {
      if (l.id == id) {
        l.lost = true;
        l.client = capnp::Capability::Client(capnp::newBrokenCap(KJ_EXCEPTION(
            DISCONNECTED, kj::str("memslot listener ", id, " is gone without cancelling its "
                                  "subscription (its process ended?): what it mirrored may "
                                  "still reach the memory this change takes away"))))
                       .castAs<rpc::MemslotListener>();
      }
    }
  }

  void unsubscribe(uint64_t id) {
    for (auto i : kj::indices(listeners)) {
      if (listeners[i].id == id) {
        for (size_t j = i; j + 1 < listeners.size(); j++) listeners[j] = kj::mv(listeners[j + 1]);
        listeners.removeLast();
        return;
      }
    }
  }

  // Runs `change` after every change queued before it; its outcome (or exception) goes to the
  // returned promise. The queue never holds an error: one failed change does not block others.
  kj::Promise<Outcome> enqueue(kj::Function<kj::Promise<Outcome>()> change) {
    auto paf = kj::newPromiseAndFulfiller<Outcome>();
    auto& fulfiller = *paf.fulfiller;
    auto done = tail.addBranch()
                    .then([change = kj::mv(change)]() mutable { return change(); })
                    .then([&fulfiller](Outcome&& o) { fulfiller.fulfill(kj::mv(o)); },
                          [&fulfiller](kj::Exception&& e) { fulfiller.reject(kj::mv(e)); })
                    .attach(kj::mv(paf.fulfiller));
    tail = done.fork();
    return kj::mv(paf.promise);
  }

  // ---- the four changes (each runs from the queue, against the map the previous one left)

  kj::Promise<Outcome> add(Memslot slot, kj::Maybe<uint64_t> fixedPa) {
    if (slot.id > MAX_SLOT_ID) {
      return refused(rpc::Errno::E_INVAL, kj::str("slot id ", slot.id, " is above ", MAX_SLOT_ID));
    }
    if (slot.size == 0 || !isAligned(slot.gpa, PAGE_SIZE) || !isAligned(slot.size, PAGE_SIZE)) {
      return refused(rpc::Errno::E_INVAL,
                     kj::str("gpa ", hex(slot.gpa), " and size ", hex(slot.size),
                             " must be multiples of 4 KiB, the size non-zero"));
    }
    KJ_IF_MAYBE (s, map.find(slot.id)) {
      return refused(rpc::Errno::E_EXIST,
                     kj::str("slot ", slot.id, " exists at ", range(s->gpa, s->size)));
    }
    KJ_IF_MAYBE (refusal, checkPlacement(slot.id, slot.gpa, slot.size)) {
      counters.refused++;
      return kj::mv(*refusal);
    }
    kj::Promise<kj::Maybe<uint64_t>> claim = nullptr;
    Outcome failure;
    KJ_IF_MAYBE (pa, fixedPa) {
      if (!isAligned(*pa, PAGE_SIZE) || !mem.contains(*pa, slot.size)) {
        return refused(rpc::Errno::E_INVAL,
                       kj::str("the backing ", range(*pa, slot.size),
                               " is misaligned or outside physical memory ",
                               range(mem.base(), mem.size())));
      }
      claim = reserve(*pa, slot.size).then([pa = *pa](bool ok) -> kj::Maybe<uint64_t> {
        if (ok) return pa;
        return nullptr;
      });
      failure = refuse(rpc::Errno::E_BUSY, kj::str("frames of ", range(*pa, slot.size),
                                                   " are in use"));
    } else {
      slot.allocated = true;
      claim = allocate(slot.gpa, slot.size);
      failure = refuse(rpc::Errno::E_NO_MEM,
                       kj::str("no contiguous run of ", hex(slot.size), " bytes is free"));
    }
    return claim.then([this, slot, failure = kj::mv(failure)](
                          kj::Maybe<uint64_t> pa) mutable -> kj::Promise<Outcome> {
      KJ_IF_MAYBE (p, pa) {
        slot.pa = *p;
        if (slot.allocated) mem.zero(slot.pa, slot.size);  // frames can come back dirty
        Span span{slot.gpa, slot.size};
        Change change{rpc::MemslotChangeKind::ADD, slot.id, span, span, nullptr, slot};
        return perform(kj::mv(change), [this, slot]() {
                 map.insert(slot);
                 counters.adds++;
               }).then([slot]() { return Outcome{rpc::Errno::OK, nullptr, slot}; });
      }
      counters.refused++;
      return kj::mv(failure);
    });
  }

  kj::Promise<Outcome> remove(uint32_t id) {
    KJ_IF_MAYBE (s, map.find(id)) {
      Memslot old = *s;
      if (uint64_t pinned = pins.pinnedBytes(old.gpa, old.size) / PAGE_SIZE) {
        return refused(rpc::Errno::E_BUSY, kj::str("slot ", id, " has ", pinned, " pinned pages"));
      }
      Span span{old.gpa, old.size};
      Change change{rpc::MemslotChangeKind::DELETE, id, span, span, old, nullptr};
      return perform(kj::mv(change),
                     [this, id]() {
                       map.erase(id);
                       counters.deletes++;
                     })
          .then([this, old]() {
            // Frames go back only once every listener has seen the slot gone.
            return release(kj::arrayPtr(&old, 1)).then([old]() {
              return Outcome{rpc::Errno::OK, nullptr, old};
            });
          });
    }
    return refused(rpc::Errno::E_NO_ENT, kj::str("no slot ", id));
  }

  kj::Promise<Outcome> move(uint32_t id, uint64_t gpa) {
    KJ_IF_MAYBE (s, map.find(id)) {
      Memslot old = *s;
      if (!isAligned(gpa, PAGE_SIZE)) {
        return refused(rpc::Errno::E_INVAL, kj::str("gpa ", hex(gpa), " is not 4 KiB aligned"));
      }
      if (gpa == old.gpa) {
        counters.unchanged++;
        return Outcome{rpc::Errno::OK, nullptr, old};
      }
      KJ_IF_MAYBE (refusal, checkPlacement(id, gpa, old.size)) {
        counters.refused++;
        return kj::mv(*refusal);
      }
      if (uint64_t pinned = pins.pinnedBytes(old.gpa, old.size) / PAGE_SIZE) {
        return refused(rpc::Errno::E_BUSY, kj::str("slot ", id, " has ", pinned, " pinned pages"));
      }
      Memslot moved = old;
      moved.gpa = gpa;
      Change change{rpc::MemslotChangeKind::MOVE, id, {old.gpa, old.size}, {gpa, old.size}, old,
                    moved};
      return perform(kj::mv(change),
                     [this, id, gpa]() {
                       map.move(id, gpa);
                       counters.moves++;
                     })
          .then([moved]() { return Outcome{rpc::Errno::OK, nullptr, moved}; });
    }
    return refused(rpc::Errno::E_NO_ENT, kj::str("no slot ", id));
  }

  kj::Promise<Outcome> setFlags(uint32_t id, bool readonly) {
    KJ_IF_MAYBE (s, map.find(id)) {
      Memslot old = *s;
      if (old.readonly == readonly) {
        counters.unchanged++;
        return Outcome{rpc::Errno::OK, nullptr, old};
      }
      Memslot updated = old;
      updated.readonly = readonly;
      Span span{old.gpa, old.size};
      Change change{rpc::MemslotChangeKind::FLAGS, id, span, span, old, updated};
      return perform(kj::mv(change),
                     [this, id, readonly]() {
                       map.setReadonly(id, readonly);
                       counters.flagChanges++;
                     })
          .then([updated]() { return Outcome{rpc::Errno::OK, nullptr, updated}; });
    }
    return refused(rpc::Errno::E_NO_ENT, kj::str("no slot ", id));
  }

  // ---- notices

  // Notifies every listener before, applies, notifies them after. Both rounds are awaited.
  kj::Promise<void> perform(Change change, kj::Function<void()> apply) {
    struct Pending {
      Change change;
      kj::Array<uint64_t> listeners;  // who hears both notices: those subscribed at the start
    };
    change.seq = ++seq;
    invalidating = Invalidating{change.before, change.seq};
    auto pending = kj::heap<Pending>(
        Pending{kj::mv(change), KJ_MAP(l, listeners) { return l.id; }});
    auto& p = *pending;
    return notify(Phase::BEFORE, p.change, p.listeners)
        .then([this, &p, apply = kj::mv(apply)]() mutable {
          invalidating = nullptr;
          apply();
          return notify(Phase::AFTER, p.change, p.listeners);
        })
        .attach(kj::mv(pending), kj::defer([this, current = seq]() {
                  // Only if the notices failed or were cancelled: never a later change's.
                  KJ_IF_MAYBE (i, invalidating) {
                    if (i->seq == current) invalidating = nullptr;
                  }
                }));
  }

  kj::Promise<void> notify(Phase phase, const Change& change, kj::ArrayPtr<const uint64_t> ids) {
    kj::Vector<kj::Promise<void>> calls(ids.size());
    for (auto id : ids) {
      Listener* listener = find(id);
      if (listener == nullptr) continue;  // unsubscribed or dropped meanwhile
      kj::Promise<void> call = nullptr;
      if (phase == Phase::BEFORE) {
        auto req = listener->client.beforeRequest(capnp::MessageSize{40, 0});
        fillChange(req.initChange(), change, phase);
        call = req.send().ignoreResult();
      } else {
        auto req = listener->client.afterRequest(capnp::MessageSize{40, 0});
        fillChange(req.initChange(), change, phase);
        call = req.send().ignoreResult();
      }
      calls.add(call.then(
          [this, phase]() {
            if (phase == Phase::BEFORE) {
              counters.noticesBefore++;
            } else {
              counters.noticesAfter++;
            }
          },
          [this](kj::Exception&& e) {
            // A listener that could not follow the change (its stage 2 and the IOMMU's caches
            // could still reach the old memory) fails the change: before it takes effect, it
            // is refused; after, the caller learns it. The listener stays: the next change is
            // notified (and fails) the same way, never silently.
            counters.listenerFailures++;
            kj::throwFatalException(kj::Exception(
                e.getType(), e.getFile(), e.getLine(),
                kj::str("a memslot listener failed: ", e.getDescription())));
          }));
    }
    return kj::joinPromises(calls.releaseAsArray());
  }

  static void fillChange(rpc::MemslotChange::Builder out, const Change& change, Phase phase) {
    out.setKind(change.kind);
    out.setSeq(change.seq);
    out.setSlot(change.slot);
    const Span& span = phase == Phase::BEFORE ? change.before : change.after;
    auto r = out.initRange();
    r.setGpa(span.gpa);
    r.setSize(span.size);
    KJ_IF_MAYBE (s, change.oldSlot) { fillMemslot(out.initOldSlot(), *s); }
    KJ_IF_MAYBE (s, change.newSlot) { fillMemslot(out.initNewSlot(), *s); }
  }

  Listener* find(uint64_t id) {
    for (auto& l : listeners) {
      if (l.id == id) return &l;
    }
    return nullptr;
  }

  // Where a slot may go: below 2^ipaBits (eFault, as arm64 KVM) and clear of the other slots
  // (eExist).
  kj::Maybe<Outcome> checkPlacement(uint32_t id, uint64_t gpa, uint64_t size) {
    uint64_t limit = uint64_t(1) << ipaBits;
    if (size > limit || gpa > limit - size) {
      return refuse(rpc::Errno::E_FAULT, kj::str("the slot ", range(gpa, size), " reaches past the ",
                                                 ipaBits, "-bit guest-physical space"));
    }
    KJ_IF_MAYBE (other, map.firstOverlap(gpa, size, id)) {
      return refuse(rpc::Errno::E_EXIST,
                    kj::str("the GPA range ", range(gpa, size), " overlaps slot ", other->id, " ",
                            range(other->gpa, other->size)));
    }
    return nullptr;
  }

  kj::Promise<Outcome> refused(rpc::Errno code, kj::String message) {
    counters.refused++;
    return refuse(code, kj::mv(message));
  }

  // ---- frames

  kj::Promise<bool> reserve(uint64_t pa, uint64_t size) {
    auto req = frames.reserveRequest(capnp::MessageSize{8, 0});
    auto runs = req.initRuns(1);
    runs[0].setPa(pa);
    runs[0].setBytes(size);
    return req.send().then([](auto response) { return response.getErrno() == rpc::Errno::OK; });
  }

  // A contiguous run aligned as preferredAlign says, or less aligned when memory is short.
  kj::Promise<kj::Maybe<uint64_t>> allocate(uint64_t gpa, uint64_t size) {
    return allocateAligned(size, preferredAlign(gpa, size));
  }

  kj::Promise<kj::Maybe<uint64_t>> allocateAligned(uint64_t size, uint64_t align) {
    auto req = frames.allocRequest(capnp::MessageSize{8, 0});
    req.setBytes(size);
    req.setAlign(align);
    return req.send().then([this, size, align](auto response) -> kj::Promise<kj::Maybe<uint64_t>> {
      if (response.getErrno() == rpc::Errno::OK) {
        return kj::Maybe<uint64_t>(response.getRuns()[0].getPa());
      }
      KJ_REQUIRE(response.getErrno() == rpc::Errno::E_NO_MEM, "frame allocation failed",
                 response.getErrno(), size, align);
      if (align > PAGE_SIZE) return allocateAligned(size, align / 2);
      return kj::Maybe<uint64_t>(nullptr);
    });
  }

  kj::Promise<void> release(kj::ArrayPtr<const Memslot> slots) {
    if (slots.size() == 0) return kj::READY_NOW;
    auto req = frames.freeRequest(capnp::MessageSize{4 + 3 * slots.size(), 0});
    auto runs = req.initRuns(slots.size());
    for (auto i : kj::indices(slots)) {
      runs[i].setPa(slots[i].pa);
      runs[i].setBytes(slots[i].size);
    }
    return req.send().then([](auto response) {
      KJ_ASSERT(response.getErrno() == rpc::Errno::OK, "the VM's frames were not allocated",
                response.getErrno());
    });
  }
};

// ======================================================================================
// The RPC servers

class SubscriptionServer final : public rpc::Vm::Subscription::Server {
public:
  SubscriptionServer(kj::Own<VmState> state, uint64_t id) : state(kj::mv(state)), id(id) {}
  ~SubscriptionServer() noexcept(false) {
    if (!cancelled) state->lose(id);
  }

protected:
  kj::Promise<void> cancel(CancelContext) override {
    if (!cancelled) state->unsubscribe(id);
    cancelled = true;
    return kj::READY_NOW;
  }

private:
  kj::Own<VmState> state;
  uint64_t id;
  bool cancelled = false;
};

template <typename Results>
void answer(Results results, Outcome& outcome) {
  results.setErrno(outcome.code);
  if (outcome.message != nullptr) results.setMessage(outcome.message);
  KJ_IF_MAYBE (s, outcome.slot) { fillMemslot(results.initMemslot(), *s); }
}

class VmServer final : public rpc::Vm::Server, public ComponentCore {
public:
  explicit VmServer(kj::Own<VmState> state) : state(kj::mv(state)) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    auto& s = *state;
    auto& c = s.counters;
    auto add = [&](kj::StringPtr name, uint64_t value) { out.add(Stat{kj::str(name), value}); };
    add("slots", s.map.slots().size());
    add("guest_bytes", s.map.guestBytes());
    add("pinned_pages", s.pins.pinnedPages());
    add("listeners", s.listeners.size());
    add("memslot_adds", c.adds);
    add("memslot_deletes", c.deletes);
    add("memslot_moves", c.moves);
    add("memslot_flag_changes", c.flagChanges);
    add("memslot_unchanged", c.unchanged);
    add("memslot_changes_refused", c.refused);
    add("notices_before", c.noticesBefore);
    add("notices_after", c.noticesAfter);
    add("listener_failures", c.listenerFailures);
    add("pins", c.pins);
    add("unpins", c.unpins);
    add("pins_refused", c.pinsRefused);
    add("translations", c.translations);
    add("guest_reads", c.reads);
    add("guest_writes", c.writes);
    add("guest_bytes_read", c.bytesRead);
    add("guest_bytes_written", c.bytesWritten);
    add("guest_access_faults", c.accessFaults);
  }

  void structures(kj::Vector<StructureInfo>& out) override {
    for (auto& slot : state->map.slots()) {
      out.add(StructureInfo{kj::str("guest_memory"), kj::str(state->name, " slot ", slot.id),
                            slot.pa, slot.size,
                            kj::str("gpa=", hex(slot.gpa), slot.readonly ? " readonly" : "",
                                    slot.allocated ? " allocated" : " fixed")});
    }
  }

  kj::Promise<void> shutdown() override {
    // After the changes already queued, every frame goes back.
    auto& s = *state;
    return s.tail.addBranch().then([&s]() {
      auto slots = kj::heapArray(s.map.slots());
      s.map = MemslotMap();
      s.pins = PinCounts();
      s.listeners.clear();
      auto done = s.release(slots);
      return done.attach(kj::mv(slots));
    });
  }

  // implements Vm ---------------------------------------------------------------------------
protected:
  kj::Promise<void> info(InfoContext context) override {
    auto& s = *state;
    auto info = context.getResults().initInfo();
    info.setName(s.name);
    info.setIpaBits(uint8_t(s.ipaBits));
    info.setSlots(uint32_t(s.map.slots().size()));
    info.setGuestBytes(s.map.guestBytes());
    info.setPinnedPages(s.pins.pinnedPages());
    info.setListeners(uint32_t(s.listeners.size()));
    return kj::READY_NOW;
  }

  kj::Promise<void> memslots(MemslotsContext context) override {
    auto slots = state->map.slots();
    auto out = context.getResults(capnp::MessageSize{4 + 6 * slots.size(), 0})
                   .initSlots(uint32_t(slots.size()));
    for (auto i : kj::indices(slots)) fillMemslot(out[uint32_t(i)], slots[i]);
    return kj::READY_NOW;
  }

  // ---- changes: parameters are copied out first, since a change outlives a cancelled call

  kj::Promise<void> addMemslot(AddMemslotContext context) override {
    auto p = context.getParams();
    Memslot slot;
    slot.id = p.getSlot();
    slot.gpa = p.getGpa();
    slot.size = p.getSize();
    slot.readonly = p.getReadonly();
    kj::Maybe<uint64_t> pa;
    if (p.isPa()) pa = p.getPa();
    auto& s = *state;
    return s.enqueue([&s, slot, pa]() { return s.add(slot, pa); })
        .then([context](Outcome&& o) mutable { answer(context.getResults(), o); });
  }

  kj::Promise<void> deleteMemslot(DeleteMemslotContext context) override {
    uint32_t id = context.getParams().getSlot();
    auto& s = *state;
    return s.enqueue([&s, id]() { return s.remove(id); }).then([context](Outcome&& o) mutable {
      answer(context.getResults(), o);
    });
  }

  kj::Promise<void> moveMemslot(MoveMemslotContext context) override {
    uint32_t id = context.getParams().getSlot();
    uint64_t gpa = context.getParams().getGpa();
    auto& s = *state;
    return s.enqueue([&s, id, gpa]() { return s.move(id, gpa); })
        .then([context](Outcome&& o) mutable { answer(context.getResults(), o); });
  }

  kj::Promise<void> setMemslotFlags(SetMemslotFlagsContext context) override {
    uint32_t id = context.getParams().getSlot();
    bool readonly = context.getParams().getReadonly();
    auto& s = *state;
    return s.enqueue([&s, id, readonly]() { return s.setFlags(id, readonly); })
        .then([context](Outcome&& o) mutable { answer(context.getResults(), o); });
  }

  kj::Promise<void> subscribe(SubscribeContext context) override {
    uint64_t id = state->subscribe(context.getParams().getListener());
    context.getResults().setSubscription(kj::heap<SubscriptionServer>(kj::addRef(*state), id));
    return kj::READY_NOW;
  }

  // ---- pinning

  kj::Promise<void> pin(PinContext context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa(), size = context.getParams().getSize();
    auto results = context.getResults();
    auto refuse = [&](rpc::Errno code, kj::String message) {
      s.counters.pinsRefused++;
      results.setErrno(code);
      results.setMessage(message);
      return kj::READY_NOW;
    };
    if (!isPageRange(gpa, size)) {
      return refuse(rpc::Errno::E_INVAL, kj::str("gpa ", hex(gpa), " and size ", hex(size),
                                                 " must be multiples of 4 KiB, the size non-zero"));
    }
    KJ_IF_MAYBE (inv, s.invalidating) {
      if (overlaps(inv->span.gpa, inv->span.size, gpa, size)) {
        return refuse(rpc::Errno::E_BUSY, kj::str("a memslot change of ",
                                                  range(inv->span.gpa, inv->span.size),
                                                  " is under way"));
      }
    }
    KJ_IF_MAYBE (runs, s.map.runs(gpa, size)) {
      s.pins.pin(gpa, size);
      s.counters.pins++;
      auto out = results.initRuns(uint32_t(runs->size()));
      for (auto i : kj::indices(*runs)) {
        auto& r = (*runs)[i];
        out[uint32_t(i)].setGpa(r.gpa);
        out[uint32_t(i)].setPa(r.pa);
        out[uint32_t(i)].setSize(r.size);
        out[uint32_t(i)].setSlot(r.slot->id);
        out[uint32_t(i)].setReadonly(r.slot->readonly);
      }
      return kj::READY_NOW;
    }
    return refuse(rpc::Errno::E_FAULT, kj::str(range(gpa, size), " is not all guest memory"));
  }

  kj::Promise<void> unpin(UnpinContext context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa(), size = context.getParams().getSize();
    auto results = context.getResults();
    if (!isPageRange(gpa, size)) {
      s.counters.pinsRefused++;
      results.setErrno(rpc::Errno::E_INVAL);
      results.setMessage(kj::str("gpa ", hex(gpa), " and size ", hex(size),
                                 " must be multiples of 4 KiB, the size non-zero"));
    } else if (!s.pins.unpin(gpa, size)) {
      s.counters.pinsRefused++;
      results.setErrno(rpc::Errno::E_INVAL);
      results.setMessage(kj::str("not every page of ", range(gpa, size), " is pinned"));
    } else {
      s.counters.unpins++;
    }
    return kj::READY_NOW;
  }

  // ---- guest memory

  kj::Promise<void> translate(TranslateContext context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa();
    auto results = context.getResults(capnp::MessageSize{8, 0});
    s.counters.translations++;
    KJ_IF_MAYBE (slot, s.map.lookup(gpa)) {
      results.setPa(slot->pa + (gpa - slot->gpa));
      results.setSlot(slot->id);
      results.setBytes(slot->gpaEnd() - gpa);
      results.setReadonly(slot->readonly);
    } else {
      s.counters.accessFaults++;
      results.setErrno(rpc::Errno::E_FAULT);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> read(ReadContext context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa(), length = context.getParams().getLength();
    auto results = context.getResults(capnp::MessageSize{8 + length / 8, 0});
    if (length == 0 || length > MAX_ACCESS) {
      results.setErrno(rpc::Errno::E_INVAL);
      return kj::READY_NOW;
    }
    KJ_IF_MAYBE (runs, s.map.runs(gpa, length)) {
      auto data = results.initData(uint32_t(length));
      uint64_t offset = 0;
      for (auto& r : *runs) {
        s.mem.read(r.pa, data.slice(offset, offset + r.size));
        offset += r.size;
      }
      s.counters.reads++;
      s.counters.bytesRead += length;
    } else {
      s.counters.accessFaults++;
      results.setErrno(rpc::Errno::E_FAULT);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> write(WriteContext context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa();
    auto data = context.getParams().getData();
    auto results = context.getResults(capnp::MessageSize{4, 0});
    if (data.size() == 0 || data.size() > MAX_ACCESS) {
      results.setErrno(rpc::Errno::E_INVAL);
      return kj::READY_NOW;
    }
    KJ_IF_MAYBE (runs, s.map.runs(gpa, data.size())) {
      bool writable = true;
      for (auto& r : *runs) writable = writable && !r.slot->readonly;
      if (writable) {
        uint64_t offset = 0;
        for (auto& r : *runs) {
          s.mem.write(r.pa, data.slice(offset, offset + r.size));
          offset += r.size;
        }
        s.counters.writes++;
        s.counters.bytesWritten += data.size();
        return kj::READY_NOW;
      }
    }
    s.counters.accessFaults++;
    results.setErrno(rpc::Errno::E_FAULT);
    return kj::READY_NOW;
  }

  kj::Promise<void> load64(Load64Context context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa();
    auto results = context.getResults(capnp::MessageSize{4, 0});
    if (!isAligned(gpa, 8)) {
      results.setErrno(rpc::Errno::E_INVAL);
    } else KJ_IF_MAYBE (slot, s.map.lookup(gpa)) {
      results.setValue(s.mem.load64(slot->pa + (gpa - slot->gpa)));
      s.counters.reads++;
      s.counters.bytesRead += 8;
    } else {
      s.counters.accessFaults++;
      results.setErrno(rpc::Errno::E_FAULT);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> store64(Store64Context context) override {
    auto& s = *state;
    uint64_t gpa = context.getParams().getGpa();
    auto results = context.getResults(capnp::MessageSize{4, 0});
    if (!isAligned(gpa, 8)) {
      results.setErrno(rpc::Errno::E_INVAL);
      return kj::READY_NOW;
    }
    KJ_IF_MAYBE (slot, s.map.lookup(gpa)) {
      if (!slot->readonly) {
        s.mem.store64(slot->pa + (gpa - slot->gpa), context.getParams().getValue());
        s.counters.writes++;
        s.counters.bytesWritten += 8;
        return kj::READY_NOW;
      }
    }
    s.counters.accessFaults++;
    results.setErrno(rpc::Errno::E_FAULT);
    return kj::READY_NOW;
  }

private:
  static bool isPageRange(uint64_t gpa, uint64_t size) {
    return size != 0 && isAligned(gpa, PAGE_SIZE) && isAligned(size, PAGE_SIZE) &&
           gpa + size > gpa;
  }

  kj::Own<VmState> state;
};

// ======================================================================================
// Settings and start

void checkMemslots(const toml::node& value, SettingErrors& errors) {
  parseMemslots(value, errors);
}

// Settings were validated before the factory runs: an error now is a broken contract.
class RejectingErrors final : public SettingErrors {
public:
  void error(const toml::node& at, kj::StringPtr keySuffix, kj::String message) override {
    KJ_FAIL_REQUIRE("hw/vm memslots did not validate", keySuffix, message);
  }
};

// Claims one manifest slot's backing and enters it in the map; throws naming the slot if the
// frames cannot be had.
kj::Promise<void> claimSlot(VmState& s, SlotSpec spec) {
  Memslot slot;
  slot.id = spec.id;
  slot.gpa = spec.gpa;
  slot.size = spec.size;
  slot.readonly = spec.readonly;
  KJ_IF_MAYBE (pa, spec.pa) {
    KJ_REQUIRE(s.mem.contains(*pa, spec.size), "memslot backing outside physical memory",
               spec.id);
    slot.pa = *pa;
    return s.reserve(*pa, spec.size).then([&s, slot](bool ok) {
      KJ_REQUIRE(ok,
                 kj::str("memslot ", slot.id, ": frames of ", range(slot.pa, slot.size),
                         " are in use (held by another instance or VM)"));
      s.map.insert(slot);
    });
  }
  slot.allocated = true;
  return s.allocate(spec.gpa, spec.size).then([&s, slot](kj::Maybe<uint64_t> pa) mutable {
    slot.pa = KJ_REQUIRE_NONNULL(pa, kj::str("memslot ", slot.id, ": no contiguous run of ",
                                             hex(slot.size), " bytes is free in memory"));
    s.mem.zero(slot.pa, slot.size);
    s.map.insert(slot);
  });
}

kj::Promise<rpc::Component::Client> startVm(ComponentContext& ctx) {
  kj::Array<SlotSpec> specs;
  if (auto node = ctx.settings.table().get("memslots")) {
    RejectingErrors errors;
    specs = KJ_ASSERT_NONNULL(parseMemslots(*node, errors));
  }
  auto ipaBits = unsigned(ctx.settings.integer("ipa_bits", DEFAULT_IPA_BITS));
  for (auto& spec : specs) {
    uint64_t limit = uint64_t(1) << ipaBits;
    KJ_REQUIRE(spec.size <= limit && spec.gpa <= limit - spec.size,
               kj::str("memslot ", spec.id, " ", range(spec.gpa, spec.size), " reaches past the ",
                       ipaBits, "-bit guest-physical space (ipa_bits)"));
  }
  auto state = kj::refcounted<VmState>(ctx.instance, ipaBits, ctx.mem, ctx.frames, MemslotMap());
  auto& s = *state;
  kj::Promise<void> claimed = kj::READY_NOW;
  for (auto& spec : specs) {
    claimed = claimed.then([&s, spec]() { return claimSlot(s, spec); });
  }
  kj::StringPtr typeName = ctx.type.name;  // the registry outlives every instance
  return claimed
      .catch_([&s](kj::Exception&& e) -> kj::Promise<void> {
        // Return what was claimed before failing the start.
        auto slots = kj::heapArray(s.map.slots());
        auto done = s.release(slots).attach(kj::mv(slots));
        return done.then([e = kj::mv(e)]() mutable -> kj::Promise<void> { return kj::mv(e); });
      })
      .then([state = kj::mv(state), typeName]() mutable {
        auto server = kj::heap<VmServer>(kj::mv(state));
        auto& core = *server;
        rpc::Vm::Client main = kj::mv(server);
        return makeComponent(typeName, capnp::typeId<rpc::Vm>(), kj::mv(main), core);
      });
}

kj::Promise<rpc::Component::Client> makeVm(ComponentContext& ctx) {
  return kj::evalNow([&]() { return startVm(ctx); });
}

}  // namespace

ComponentType vmType() {
  return ComponentType{
      "hw/vm",
      "a virtual machine's memory as KVM sees it: memslots (GPA -> PA) in shared physical "
      "memory, changes with notices to subscribers before and after, pinning, guest memory "
      "access by GPA",
      capnp::Schema::from<rpc::Vm>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"memslots", SettingType::ARRAY, false, nullptr,
                      "guest memory at start, one table per slot: { slot = 0, gpa = 0, size = "
                      "\"64MiB\", pa = \"allocate\" | <physical address>, readonly = false }",
                      checkMemslots},
          SettingSpec{"ipa_bits", SettingType::INTEGER, false, nullptr,
                      "guest-physical address bits, 32..52 (default 40)", checkIpaBits},
      }),
      nullptr,
      makeVm,
      true};
}

}  // namespace nb::vm
