// components/smmu_queue/smmuv3: HostQueue's implementation class, shared by its two halves —
// bring-up and the CMDQ producer (host-queue.c++), the EVTQ consumer and event routing
// (host-events.c++). Not part of the package's API: include host-queue.h.

#pragma once

#include "components/smmu_queue/smmuv3/host-queue.h"
#include "util/smmuv3/commands.h"
#include "util/smmuv3/events.h"
#include "util/smmuv3/registers.h"
#include "util/smmuv3/ste.h"

#include <capnp/message.h>
#include <kj/map.h>
#include <deque>

namespace nb::smmuq {

struct MmioAccess {
  // One access of an Mmio.batch.
  uint32_t offset;
  bool write;
  uint64_t value = 0;
  uint8_t size = 4;
};

inline MmioAccess rd(uint32_t offset, uint8_t size = 4) { return {offset, false, 0, size}; }
inline MmioAccess wr(uint32_t offset, uint64_t value, uint8_t size = 4) {
  return {offset, true, value, size};
}

class Routing final : public kj::Refcounted {
  // Who takes the events of a StreamID. Refcounted: subscriptions may outlive the queue.
public:
  struct Subscriber {
    rpc::EventSink::Client sink;
    uint64_t token;
  };
  kj::HashMap<uint32_t, Subscriber> subscribers;
  kj::HashMap<uint32_t, VmasterSink*> vmasters;
  uint64_t nextToken = 1;
};

class HostQueueImpl final : public HostQueue, private kj::TaskSet::ErrorHandler {
public:
  HostQueueImpl(PhysMem& mem, rpc::FrameAllocator::Client frames, rpc::Smmuv3::Client smmu,
                kj::Timer& timer, HostOptions options);
  ~HostQueueImpl() noexcept(false);

  kj::Promise<void> bringUp();
  // Probe, allocation and the reset sequence (host-queue.c++).

  // implements HostQueue ---------------------------------------------------------------------
  kj::Promise<SubmitOutcome> submit(kj::Array<Command> commands,
                                    kj::Maybe<SyncPolicy> policy = nullptr) override;
  const SmmuCaps& caps() const override { return caps_; }
  rpc::QueueInfo::Reader info() override { return infoMessage.getRoot<rpc::QueueInfo>(); }
  kj::Promise<Drained> drainEvents() override;
  kj::Own<void> subscribe(uint32_t sid, rpc::EventSink::Client sink) override;
  bool subscribed(uint32_t sid) const override;
  void unrouted(rpc::SmmuQueue::UnroutedResults::Builder results, bool clear) override;
  void setVmaster(uint32_t sid, VmasterSink& sink) override;
  void clearVmaster(uint32_t sid) override;
  const HostStats& stats() const override { return stats_; }
  kj::Promise<void> shutdown() override;

  // Called by the IrqSink server.
  void interrupt(rpc::SmmuIrq irq);

private:
  // ---- MMIO -------------------------------------------------------------------------------
  kj::Promise<kj::Array<uint64_t>> mmio(kj::ArrayPtr<const MmioAccess> accesses);
  // One Mmio.batch round trip; the values read, one per access (0 for writes).
  kj::Promise<void> writeAndWait(kj::Array<MmioAccess> writes, uint32_t ackOffset,
                                 uint32_t expected, uint32_t mask, kj::StringPtr what);
  // Performs `writes`, then reads `ackOffset` until (value & mask) == expected (CR0ACK,
  // GBPA.UPDATE, IRQ_CTRL_ACK; facts 1.8), at most syncTimeout.

  // ---- bring-up (host-queue.c++) ----------------------------------------------------------
  void decodeCaps(kj::ArrayPtr<const uint64_t> idr);
  kj::Promise<void> allocate();
  kj::Promise<void> reset();
  kj::Promise<bool> adopt();       // false: the SMMU's state is not one to take over
  void publishLayout();            // the stream table and queues, into info()
  kj::Promise<void> enableInterrupts();
  void fillInfo(rpc::SmmuInfo::Reader smmuInfo);

  // ---- CMDQ producer (host-queue.c++) -----------------------------------------------------
  struct Submission {
    uint64_t id;
    kj::Array<Command> commands;
    kj::TimePoint arrival = kj::origin<kj::TimePoint>();
    size_t written = 0;          // commands written into the ring
    unsigned sinceSync = 0;      // commands written since the last SYNC (PER_BATCH) or the
                                 // last batch boundary (LINUX)
    bool perBatch = false;       // SyncPolicy::PER_BATCH
    bool finalSyncWritten = false;
    uint32_t syncsWritten = 0;
    uint32_t syncsDone = 0;
    size_t covered = 0;          // commands before the last completed SYNC
    kj::Vector<uint32_t> illegal;
    kj::Own<kj::PromiseFulfiller<SubmitOutcome>> fulfiller;
  };
  struct SlotOwner {
    // What one ring slot holds: a submission's command, a submission's SYNC (`index` = the
    // commands it covers), or nothing of interest (0: a CERROR_ILL replacement).
    uint64_t submission = 0;
    uint32_t index = 0;
    bool sync = false;
  };

  Submission* find(uint64_t id);
  uint32_t ringEntries() const { return uint32_t(1) << cmdqLog2; }
  uint32_t ringMask() const { return (ringEntries() << 1) - 1; }   // index + wrap
  uint32_t used() const { return (prod - cons) & ringMask(); }
  void writeEntry(const Command& c, SlotOwner owner);
  bool fill();
  void kick();
  bool pump();
  void send(bool doorbell);
  void observe(uint32_t consRegister);
  void broken(kj::Exception&& exception);
  bool advance(uint32_t newCons);
  kj::Promise<uint32_t> commandError(uint32_t consRegister);
  kj::Promise<void> lockGerrorn();
  void unlockGerrorn();
  void schedulePoll();
  void complete(Submission& s);
  void fail(Submission& s, rpc::Errno errno_, kj::StringPtr message);
  void failExpired();

  // ---- EVTQ consumer (host-events.c++) ----------------------------------------------------
  kj::Promise<Drained> drainOnce();
  kj::Promise<uint32_t> drainRecords(kj::Vector<kj::Promise<void>>& deliveries,
                                     uint32_t evtqProd, unsigned rounds);
  void route(const EventRecord& record,
             kj::HashMap<uint32_t, kj::Vector<EventRecord>>& bySubscriber);
  kj::Promise<Drained> serializedDrain();
  kj::Promise<void> background(kj::Promise<void> work);
  kj::Promise<void> globalError();

  void taskFailed(kj::Exception&& exception) override;

  PhysMem& mem;
  rpc::FrameAllocator::Client frames;
  rpc::Smmuv3::Client smmu;
  rpc::Mmio::Client mmioCap;
  kj::Timer& timer;
  HostOptions options;

  SmmuCaps caps_;
  HostStats stats_;
  capnp::MallocMessageBuilder infoMessage;
  kj::String smmuName;
  uint32_t gbpa = 0;
  uint32_t cr0 = 0;              // what this driver last wrote to CR0

  // Memory.
  struct Run {
    uint64_t pa = 0;
    uint64_t bytes = 0;
  };
  Run streamTable, cmdqRun, evtqRun;
  bool twoLevel = false;
  unsigned strtabLog2 = 0, split = 0;

  // CMDQ state.
  unsigned cmdqLog2 = 0;
  uint32_t prod = 0;             // next slot to write (index + wrap)
  uint32_t cons = 0;             // CMDQ_CONS as last read (index + wrap)
  uint64_t* ring = nullptr;      // the CMDQ's mapping: 2 qwords per slot
  kj::Array<SlotOwner> owners;   // per ring slot
  std::deque<kj::Own<Submission>> queue;   // FIFO; ids consecutive from the front
  size_t writeCursor = 0;        // queue[writeCursor] is the first not fully written
  uint64_t nextId = 1;
  bool pumpScheduled = false;    // a pump() is queued on the event loop
  unsigned inflight = 0;         // Mmio batches (doorbells, polls) awaiting their CONS
  bool pollScheduled = false;
  bool exclusive = false;        // a command error is being fixed: no doorbells
  kj::Maybe<uint32_t> pendingError;   // the latest CONS reading, when it had ERR set
  bool gerrornBusy = false;      // a GERRORN read-modify-write is in progress
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> gerrornWaiters;
  kj::TimePoint lastProgress = kj::origin<kj::TimePoint>();
  unsigned idlePolls = 0;        // polls without progress since the last progress
  unsigned abortRetries = 0;     // consecutive CERROR_ABT at the same CONS
  bool closeBatch = false;       // a failed submission left a batch without its SYNC
  bool stopped = false;

  // EVTQ state.
  unsigned evtqLog2 = 0;
  uint32_t evtqCons = 0;         // index + wrap | OVACKFLG
  kj::Own<Routing> routing;
  std::deque<EventRecord> unroutedLog;
  bool lostSinceDrain = false;
  bool irqDrainQueued = false;
  kj::ForkedPromise<void> drainTail;

  // Interrupts.
  class IrqSinkServer;
  IrqSinkServer* irqSink = nullptr;
  kj::Maybe<rpc::Subscription::Client> irqSubscription;

  kj::TaskSet tasks;  // last: destroyed first, while everything its promises touch is alive
};

rpc::EventType eventTypeOf(uint8_t id);
// The schema's EventType for an event ID (facts 3.1); unknown for others.

}  // namespace nb::smmuq
