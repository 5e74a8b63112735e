// components/stage2_shadow/pinned_pfn: the MapSource with its own record. See component.h.
//
// Shadow time: Vm.memslots() says which ranges exist; each slot is pinned (all pins in flight at
// once) and the PinnedRuns the VM returns — the frames behind each GPA — become the record.
// Afterwards the record is the only source of GPA → PA: an added slot enters it from the
// notice's slot (or, holding pins, from pinning it), a deleted slot leaves it, a moved slot's
// runs are re-keyed at the new GPA with the frames the record already has (checked against the
// notice: a disagreement counts as record_mismatches), a flag change updates its permission.
// Updates cost no VM call (unless hold_pins pins an added slot), and lookups are binary searches
// of the record (record_lookups).

#include "components/stage2_shadow/pinned_pfn/component.h"

#include "components/stage2_shadow/common/shadow.h"

#include <kj/debug.h>

namespace nb::s2 {

namespace {

class PinnedPfn final : public MapSource {
public:
  PinnedPfn(rpc::Vm::Client vm, Counters& counters, bool holdPins)
      : vm(kj::mv(vm)), counters(counters), holdPins(holdPins) {}

  ~PinnedPfn() noexcept(false) { counters.pinnedBytes -= heldBytes(); }

  uint64_t pinnedBytes() const override { return heldBytes(); }

  kj::Promise<Snapshot> snapshot() override {
    counters.vmCalls++;
    return vm.memslotsRequest(capnp::MessageSize{4, 0}).send().then([this](auto&& r) {
      auto slots = KJ_MAP(s, r.getSlots()) { return runOf(s).span(); };
      auto pins = KJ_MAP(span, slots) { return pin(span); };
      return kj::joinPromises(kj::mv(pins)).then(
          [this, slots = kj::mv(slots)](kj::Array<Pinned>&& pinned) mutable
          -> kj::Promise<Snapshot> {
            kj::Maybe<Snapshot> refusal;
            for (auto i : kj::indices(pinned)) {
              if (pinned[i].errno_ == rpc::Errno::OK) {
                held.add(slots[i]);
                for (auto& run : pinned[i].runs) record.insert(run);
              } else if (refusal == nullptr) {
                refusal = Snapshot{pinned[i].errno_,
                                   kj::str("pinning slot at 0x", kj::hex(slots[i].gpa), ": ",
                                           pinned[i].message)};
              }
            }
            counters.pinnedBytes += heldBytes();
            KJ_IF_MAYBE (r, refusal) {
              // Hold nothing behind a refused shadow.
              record.clear();
              return unpinAll().then([r = kj::mv(*r)]() mutable { return kj::mv(r); });
            }
            auto done = holdPins ? kj::Promise<void>(kj::READY_NOW) : unpinAll();
            return done.then([this]() {
              return Snapshot{rpc::Errno::OK, nullptr, kj::heapArray(record.runs())};
            });
          });
    });
  }

  kj::Promise<kj::Array<Run>> resolve(const SlotChange& change,
                                      kj::ArrayPtr<const Span> spans) override {
    auto wanted = kj::heapArray(spans);
    return apply(change).then([this, wanted = kj::mv(wanted)]() {
      kj::Vector<Run> out;
      for (auto& span : wanted) {
        for (auto& run : record.overlapping(span, counters.recordLookups)) {
          KJ_IF_MAYBE (piece, clip(run, span)) { out.add(*piece); }
        }
      }
      return out.releaseAsArray();
    });
  }

  kj::Promise<void> release() override { return unpinAll(); }

private:
  struct Pinned {
    rpc::Errno errno_ = rpc::Errno::OK;
    kj::String message;
    kj::Array<Run> runs;
  };

  kj::Promise<Pinned> pin(Span span) {
    counters.vmCalls++;
    auto req = vm.pinRequest(capnp::MessageSize{8, 0});
    req.setGpa(span.gpa);
    req.setSize(span.size);
    return req.send().then([this](auto&& r) {
      if (r.getErrno() != rpc::Errno::OK) {
        return Pinned{r.getErrno(), kj::heapString(r.getMessage()), nullptr};
      }
      counters.pins++;
      auto runs = KJ_MAP(p, r.getRuns()) {
        return Run{p.getGpa(), p.getPa(), p.getSize(), p.getReadonly(), p.getSlot()};
      };
      return Pinned{rpc::Errno::OK, nullptr, kj::mv(runs)};
    });
  }

  // Drops every pin held (all in flight at once). Failures are logged: the VM may be gone.
  kj::Promise<void> unpinAll() {
    counters.pinnedBytes -= heldBytes();
    auto spans = kj::mv(held);
    held = kj::Vector<Span>();
    auto unpins = KJ_MAP(span, spans) {
      counters.vmCalls++;
      auto req = vm.unpinRequest(capnp::MessageSize{8, 0});
      req.setGpa(span.gpa);
      req.setSize(span.size);
      return req.send().then(
          [this, span](auto&& r) {
            if (r.getErrno() == rpc::Errno::OK) {
              counters.unpins++;
            } else {
              KJ_LOG(WARNING, "stage2_shadow/pinned_pfn: unpin refused", span.gpa, span.size,
                     r.getMessage());
            }
          },
          [](kj::Exception&& e) {
            KJ_LOG(WARNING, "stage2_shadow/pinned_pfn: unpin failed", e);
          });
    };
    return kj::joinPromises(kj::mv(unpins));
  }

  uint64_t heldBytes() const {
    if (!holdPins) return 0;
    uint64_t total = 0;
    for (auto& s : held) total += s.size;
    return total;
  }

  // The record follows the change, from the notice alone (or a pin of an added slot).
  kj::Promise<void> apply(const SlotChange& change) {
    switch (change.kind) {
      case rpc::MemslotChangeKind::ADD: {
        Run slot = KJ_REQUIRE_NONNULL(change.newSlot, "an add notice without its slot");
        if (!holdPins) {
          record.insert(slot);
          return kj::READY_NOW;
        }
        return pin(slot.span()).then([this, slot](Pinned&& p) {
          if (p.errno_ != rpc::Errno::OK) {
            // Not pinned: map it from the notice all the same, as the VM now has it.
            KJ_LOG(WARNING, "stage2_shadow/pinned_pfn: pinning an added slot failed",
                   slot.slot, p.message);
            record.insert(slot);
            return;
          }
          held.add(slot.span());
          counters.pinnedBytes += slot.size;
          for (auto& run : p.runs) record.insert(run);
        });
      }
      case rpc::MemslotChangeKind::DELETE:
        record.removeSlot(change.slot, counters.recordLookups);
        return kj::READY_NOW;
      case rpc::MemslotChangeKind::MOVE: {
        Run moved = KJ_REQUIRE_NONNULL(change.newSlot, "a move notice without its slot");
        Run old = KJ_REQUIRE_NONNULL(change.oldSlot, "a move notice without its old slot");
        auto runs = record.removeSlot(change.slot, counters.recordLookups);
        if (runs.size() == 0) {
          counters.recordMismatches++;
          record.insert(moved);
          return kj::READY_NOW;
        }
        for (auto& run : runs) {
          // The frames stay; only the GPA changes.
          run.gpa = run.gpa - old.gpa + moved.gpa;
          if (run.pa != moved.pa + (run.gpa - moved.gpa)) counters.recordMismatches++;
          record.insert(run);
        }
        return kj::READY_NOW;
      }
      case rpc::MemslotChangeKind::FLAGS: {
        Run updated = KJ_REQUIRE_NONNULL(change.newSlot, "a flags notice without its slot");
        auto runs = record.removeSlot(change.slot, counters.recordLookups);
        if (runs.size() == 0) counters.recordMismatches++;
        for (auto& run : runs) {
          run.readonly = updated.readonly;
          record.insert(run);
        }
        return kj::READY_NOW;
      }
    }
    KJ_UNREACHABLE;
  }

  rpc::Vm::Client vm;
  Counters& counters;
  bool holdPins;
  RunRecord record;        // GPA -> PFN runs: the only source of translations after shadow time
  kj::Vector<Span> held;   // ranges pinned now (until unpinned)
};

kj::Promise<rpc::Component::Client> makePinnedPfn(ComponentContext& ctx) {
  bool holdPins = ctx.settings.boolean("hold_pins", false);
  return makeShadowComponent(
      ctx, [holdPins](rpc::Vm::Client vm, Counters& counters) -> kj::Own<MapSource> {
        return kj::heap<PinnedPfn>(kj::mv(vm), counters, holdPins);
      });
}

}  // namespace

ComponentType pinnedPfnType() {
  return ComponentType{
      "stage2_shadow/pinned_pfn",
      "per VM, a nest-parent stage-2 domain mirroring its memslots, kept coherent on memslot "
      "notices; GPA -> PA from its own record of the frames pinned at shadow time",
      capnp::Schema::from<rpc::Stage2Shadow>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"hold_pins", SettingType::BOOLEAN, false, nullptr,
                      "keep shadowed slots pinned (the VM then refuses to delete or move them, "
                      "eBusy, as iommufd's pinned IOAS does); default false: pin to learn the "
                      "frames, record them, unpin"},
      }),
      shadowRoles(),
      makePinnedPfn};
}

}  // namespace nb::s2
