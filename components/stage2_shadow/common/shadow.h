// components/stage2_shadow/common: what both stage2_shadow implementations share — the
// Stage2Shadow server, one Shadow per VM (its nest-parent domain, the runs it has mapped, the
// memslot listener that unmaps before a change and remaps after, the order of its updates), leaf
// accounting and the counters (interfaces/stage2-shadow.capnp).
//
// An implementation supplies only where GPA → PA comes from: a `MapSource` per shadowed VM.
// kvm_read's reads the VM's memslots on every update; pinned_pfn's keeps a record of the
// frames it pinned. Everything else — allocation through domain_allocator, coherence, the RPC
// face — is here, so the two differ in exactly what the debate is about.
//
// Visible to components/stage2_shadow only.

#pragma once

#include "components/stage2_shadow/common/runs.h"
#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/stage2-shadow.capnp.h"
#include "interfaces/vm.capnp.h"
#include "system/runtime/contract.h"

#include <kj/function.h>

namespace nb::s2 {

// ======================================================================================
// Counters: one set per component instance, summed over its shadows, in stats() order.

struct Counters {
  uint64_t shadowsCreated = 0;  // shadow() calls that returned a shadow
  uint64_t shadowsRefused = 0;  // shadow() calls answered with an errno
  uint64_t shadowsAlive = 0;    // Shadow capabilities not yet dropped
  uint64_t noticesBefore = 0;   // before-notices handled
  uint64_t noticesAfter = 0;    // after-notices handled: memslot changes followed
  uint64_t vmCalls = 0;         // RPCs to VMs (memslots, pin, unpin)
  uint64_t slotsRead = 0;       // memslot entries read from a VM and walked (kvm_read)
  uint64_t recordLookups = 0;   // record entries examined (pinned_pfn's record, mapped runs)
  uint64_t domainCalls = 0;     // map and unmap RPCs to domains
  uint64_t runsMapped = 0;
  uint64_t runsUnmapped = 0;
  uint64_t leafWrites = 0;      // leaf descriptors the domains' maps wrote (leaf split)
  uint64_t leafClears = 0;      // leaf descriptors their unmaps cleared
  uint64_t bytesMapped = 0;
  uint64_t bytesUnmapped = 0;
  uint64_t tlbiCommands = 0;    // invalidation commands the unmaps issued (Domain.unmap)
  uint64_t pins = 0;            // Vm.pin calls that pinned
  uint64_t unpins = 0;
  uint64_t pinnedBytes = 0;     // held now (pinned_pfn with hold_pins)
  uint64_t recordMismatches = 0;  // a notice's slot disagreed with pinned_pfn's record
  uint64_t updateErrors = 0;    // maps or unmaps that failed during updates
};

// ======================================================================================
// Where GPA → PA comes from

struct SlotChange {
  // A MemslotChange, decoded.
  rpc::MemslotChangeKind kind;
  uint64_t seq = 0;
  uint32_t slot = 0;
  Span range;                 // before(): the range about to change; after(): the one changed
  kj::Maybe<Run> oldSlot;     // unset for add
  kj::Maybe<Run> newSlot;     // unset for delete
};

SlotChange decodeChange(rpc::MemslotChange::Reader change);
Run runOf(rpc::Memslot::Reader slot);

struct Snapshot {
  rpc::Errno errno_ = rpc::Errno::OK;
  kj::String message;
  kj::Array<Run> runs;        // by ascending GPA
};

class MapSource {
  // One shadowed VM's GPA → PA, as an implementation learns it. Calls come one at a time, in
  // the order of the VM's changes (the shadow serialises them).
public:
  virtual ~MapSource() noexcept(false) = default;

  virtual kj::Promise<Snapshot> snapshot() = 0;
  // Shadow time: every memslot. An errno refuses the shadow (nothing is held afterwards).

  virtual void before(const SlotChange& change) {}
  // A change is about to take effect (its range is being unmapped).

  virtual kj::Promise<kj::Array<Run>> resolve(const SlotChange& change,
                                              kj::ArrayPtr<const Span> spans) = 0;
  // After `change` took effect: what backs `spans` now, clipped to them, by ascending GPA.

  virtual kj::Promise<void> release() { return kj::READY_NOW; }
  // The shadow is going away: give back whatever is held (pins). Errors are logged, not thrown.

  virtual uint64_t pinnedBytes() const { return 0; }
  // Guest bytes held pinned now (ShadowInfo.pinnedBytes).
};

using SourceFactory = kj::Function<kj::Own<MapSource>(rpc::Vm::Client vm, Counters& counters)>;
// Makes the MapSource of one shadowed VM. Made by an implementation's factory from its settings;
// lives as long as the component.

rpc::Component::Client makeShadowComponent(ComponentContext& ctx, SourceFactory factory);
// The Stage2Shadow server over the `domains` role (a DomainAllocator), with `factory` making
// each shadow's MapSource.

kj::Array<RoleSpec> shadowRoles();
// `domains`: the DomainAllocator the stage-2 domains come from.

}  // namespace nb::s2
