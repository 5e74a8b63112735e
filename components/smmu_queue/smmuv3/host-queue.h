// components/smmu_queue/smmuv3: the host side of one SMMU — its CMDQ producer and EVTQ consumer.
//
// Owns: bringing the SMMU up (Linux's reset sequence, facts 1.8) through its MMIO capability
// only; the stream table, CMDQ and EVTQ memory (frames from hw/mem); writing commands into the
// CMDQ ring with a CMD_SYNC per batch and waiting on it (ring wrap, full queue, CERROR_ILL/ABT
// recovery, SYNC timeout; facts 1.5-1.7); reading the EVTQ (overflow, facts 3.3) and routing
// each record: stage-1 events of a StreamID with a vmaster (a vDEVICE's device) to that
// vmaster, everything else to the StreamID's subscriber or a bounded unrouted log.
// Does not own: building commands (commands.h), the RPC face (component.c++), vIOMMUs
// (viommu.h: they use this class as their only way to the SMMU).

#pragma once

#include "system/runtime/modeled-time.h"

#include "components/smmu_queue/smmuv3/commands.h"
#include "hw/mem/phys-mem.h"
#include "interfaces/mem.capnp.h"
#include "interfaces/smmu-queue.capnp.h"
#include "interfaces/smmuv3.capnp.h"
#include <kj/async.h>
#include <kj/function.h>
#include <kj/timer.h>
#include <kj/vector.h>

namespace nb::smmuq {

enum class SyncPolicy : uint8_t {
  // Where CMD_SYNCs go in a submission (the component's `sync_policy`).
  LINUX,      // arm_smmu_cmdq_batch_add/submit (linux-invalidation-facts 3.1): full batches of
              // `batchSize` issued without a SYNC, exactly one CMD_SYNC ending the submission.
  PER_BATCH,  // a CMD_SYNC after every `batchSize` commands and at the end (nestbed's first
              // producer; also the shape of a vIOMMU's chunks, ≤ 63 + SYNC, facts 3.4).
};

struct HostOptions {
  // From the component's manifest table.
  unsigned cmdqLog2Size = 8;        // capped by IDR1.CMDQS; Linux refuses <= 64 entries
  unsigned evtqLog2Size = 7;        // capped by IDR1.EVTQS
  unsigned batchSize = 64;          // commands per batch (CMDQ_BATCH_ENTRIES)
  SyncPolicy syncPolicy = SyncPolicy::LINUX;
  bool twoLevelStreamTable = true;  // when IDR0.ST_LVL allows it
  unsigned streamTableSplit = 8;    // two-level: SIDs per level-2 table = 2^split
  kj::Duration syncTimeout = 1 * kj::SECONDS;   // ARM_SMMU_POLL_TIMEOUT_US
  unsigned maxDoorbellsInFlight = 1;  // Mmio batches (PROD writes + CONS reads) outstanding
  size_t unroutedLog = 256;         // events kept for unrouted()
  bool adoptEnabled = true;         // an SMMU found enabled is taken over, not reset (restart)
  ModeledClock* clock = &ModeledClock::off();  // charged for each command written to the ring
};

struct SmmuCaps {
  // The features the driver uses, decoded from IDR0..IDR5 (facts 1.8) — never from anything
  // but the registers.
  uint32_t idr[6] = {};
  bool stage1 = false, stage2 = false, nesting = false;  // nesting = S1P && S2P
  bool ril = false, ats = false, hyp = false, twoLevelStreamTable = false;
  bool asid16 = false, vmid16 = false;
  unsigned sidBits = 0, ssidBits = 0, cmdqLog2Max = 0, evtqLog2Max = 0;
  unsigned oas = 0;                 // bits
  uint64_t pgsizeBitmap = 0;        // 4K | 16K | 64K granules (and their block sizes)
};

struct SubmitOutcome {
  rpc::Errno errno_ = rpc::Errno::OK;
  uint32_t executed = 0;            // submitted commands executed (not skipped, not pending)
  uint32_t syncs = 0;               // CMD_SYNCs appended
  kj::Vector<uint32_t> illegal;     // indices (into the submission) refused with CERROR_ILL
  kj::String message;               // empty (null) when errno_ is OK
  kj::Array<Command> commands;      // the submission, handed back (e.g. to report `illegal`)
};

struct EventRecord {
  uint64_t dw[4];                   // the 32-byte EVTQ record, as read
};

void decodeEvent(const EventRecord& record, rpc::Fault::Builder out);
// The record's fields (facts 3.2) into the schema's Fault, read at their positions whatever the
// event type (dw3 is the fetch address of a fetch fault, else the IPA when S2 = 1); `raw`
// holds the 4 qwords.

class VmasterSink {
  // A vIOMMU, for the StreamIDs of its vDEVICEs: receives their stage-1, non-stall events
  // (facts 3.3, arm_vmaster_report_event). Called synchronously while the EVTQ is drained.
public:
  virtual void stage1Event(const EventRecord& record) = 0;
protected:
  ~VmasterSink() = default;
};

struct HostStats {
  uint64_t submissions = 0;
  uint64_t commands = 0;            // caller commands written into the ring
  uint64_t syncs = 0;               // CMD_SYNCs written
  uint64_t batches = 0;             // batches issued (issue_cmdlist calls): full ones and the
                                    // submission's last, which carries the SYNC
  uint64_t doorbells = 0;           // CMDQ_PROD writes
  uint64_t consPolls = 0;           // CMDQ_CONS re-reads without a doorbell (SYNC not yet passed)
  uint64_t illegal = 0;             // CERROR_ILL recovered
  uint64_t fetchAborts = 0;         // CERROR_ABT retried
  uint64_t timeouts = 0;            // submissions failed with eTimedOut (SYNC not completed)
  uint64_t queueFullWaits = 0;      // times a producer waited for CONS to free space
  uint64_t globalErrors = 0;        // GERROR bits other than CMDQ_ERR acknowledged
  uint64_t eventsRead = 0;
  uint64_t eventsRouted = 0;        // to a subscriber
  uint64_t eventsToGuests = 0;      // to a vmaster
  uint64_t eventsUnrouted = 0;
  uint64_t unroutedDropped = 0;     // pushed out of the full unrouted log
  uint64_t deliveryFailures = 0;    // EventSink.deliver calls that failed
  uint64_t evtqOverflows = 0;
  uint64_t adopted = 0;             // 1: brought up by taking over an enabled SMMU's tables and
                                    // queues (a restart), not by the reset sequence
};

class HostQueue {
public:
  static kj::Promise<kj::Own<HostQueue>> create(PhysMem& mem, rpc::FrameAllocator::Client frames,
                                                 rpc::Smmuv3::Client smmu, kj::Timer& timer,
                                                 HostOptions options);
  // Probes the SMMU (IDR0..5), allocates the stream table (every STE zero: V = 0, which
  // aborts), CMDQ and EVTQ, runs the reset sequence, subscribes to its interrupts.

  virtual ~HostQueue() noexcept(false) = default;

  virtual kj::Promise<SubmitOutcome> submit(kj::Array<Command> commands,
                                            kj::Maybe<SyncPolicy> policy = nullptr) = 0;
  // Writes `commands` into the ring in order, CMD_SYNCs placed by `policy` (default: the
  // queue's `syncPolicy`): under LINUX one at the end, under PER_BATCH one after every
  // `batchSize` commands and at the end. Resolves once the last SYNC completed (or the
  // submission failed).
  // Submissions are served in call order; a batch and its SYNC are never interleaved with
  // another submission's commands.

  virtual const SmmuCaps& caps() const = 0;
  // What IDR0..5 advertise, as probed at reset.

  virtual rpc::QueueInfo::Reader info() = 0;
  // Everything QueueInfo reports (stream table, rings, features), valid while `this` lives.

  struct Drained {
    uint32_t read = 0;   // records read
    bool lost = false;   // the SMMU reported an EVTQ overflow since the last drain
  };
  virtual kj::Promise<Drained> drainEvents() = 0;
  // Reads every record the EVTQ holds now and routes it; resolves once the subscribers'
  // deliveries completed (vmasters are called synchronously).

  virtual kj::Own<void> subscribe(uint32_t sid, rpc::EventSink::Client sink) = 0;
  // Routes events of `sid` not taken by a vmaster to `sink` until the returned object is
  // dropped. Precondition (checked by the caller, which answers eExist / eInval): `sid` has no
  // subscriber and is below 2^sidBits.
  virtual bool subscribed(uint32_t sid) const = 0;

  virtual void unrouted(rpc::SmmuQueue::UnroutedResults::Builder results, bool clear) = 0;

  virtual void setVmaster(uint32_t sid, VmasterSink& sink) = 0;
  virtual void clearVmaster(uint32_t sid) = 0;
  // Routes stage-1 events of `sid` to `sink` (a vDEVICE's device) until cleared.

  virtual const HostStats& stats() const = 0;

  virtual kj::Promise<void> shutdown() = 0;
  // Quiesces the SMMU (CR0 = 0: no translation, no queues) and frees the stream table and the
  // queues. Submissions still queued fail. Errors from a peer already gone are ignored.
};

}  // namespace nb::smmuq
