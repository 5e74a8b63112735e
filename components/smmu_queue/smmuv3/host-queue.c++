// components/smmu_queue/smmuv3: bringing one SMMU up and producing its CMDQ.
//
// The producer is a single owner, as in Linux's lock-free CMDQ the CPU that owns the queue
// gathers every producer's entries and writes PROD once (facts 1.5): submissions queue up in
// FIFO order; pump() writes every pending submission it can fit (SyncPolicy::LINUX: its
// commands in batches of `batchSize`, full ones without a SYNC, one CMD_SYNC at the end;
// PER_BATCH: a CMD_SYNC after every batch) with plain stores into the ring, then rings
// the doorbell and reads CMDQ_CONS back in the same Mmio.batch — one round trip for however
// many submissions were gathered. At most `maxDoorbellsInFlight` such batches are outstanding
// (default 1: what arrives meanwhile is gathered into the next). CONS passing a SYNC completes
// the batch it closes (facts 1.5: SEV/poll completion). When a reading comes back: command
// errors are fixed alone (facts 1.6: CERROR_ILL reported to the submission owning the slot at
// CONS and replaced by a SYNC, CERROR_ABT retried); a full ring is written on as CONS moves;
// an SMMU that does not move is polled (at once, then on the timer) until a submission has
// waited syncTimeout without progress: eTimedOut.

#include "components/smmu_queue/smmuv3/host-queue-internal.h"

#include "util/bits.h"

#include <kj/debug.h>
#include <atomic>

namespace nb::smmuq {

using namespace nb::smmuv3;

namespace {

constexpr unsigned MAX_ABORT_RETRIES = 8;     // CERROR_ABT acknowledged at one CONS, then eIo
constexpr unsigned IMMEDIATE_POLLS = 4;       // CONS re-reads before backing off on the timer
constexpr auto MAX_POLL_DELAY = 8 * kj::MILLISECONDS;
constexpr uint32_t CR0_ALL = uint32_t(CR0::SMMUEN.mask() | CR0::PRIQEN.mask() |
                                      CR0::EVTQEN.mask() | CR0::CMDQEN.mask() |
                                      CR0::ATSCHK.mask());

uint64_t ms(kj::Duration d) { return uint64_t(d / kj::MILLISECONDS); }

}  // namespace

// =============================================================================================
// Interrupts

class HostQueueImpl::IrqSinkServer final : public rpc::IrqSink::Server {
  // The SMMU's interrupt line into this queue. The SMMU may hold it after the queue is gone:
  // the link is cut from whichever side goes first.
public:
  explicit IrqSinkServer(HostQueueImpl& owner) : owner(&owner) { owner.irqSink = this; }
  ~IrqSinkServer() noexcept(false) {
    if (owner != nullptr) owner->irqSink = nullptr;
  }
  HostQueueImpl* owner;

protected:
  kj::Promise<void> interrupt(InterruptContext context) override {
    if (owner != nullptr) owner->interrupt(context.getParams().getIrq());
    return kj::READY_NOW;
  }
};

// An interrupt handler's work: the modeled clock counts it as in progress until it is done (or
// cancelled), so the scenario step that raised the interrupt pays for it in any placement.
kj::Promise<void> HostQueueImpl::background(kj::Promise<void> work) {
  options.clock->backgroundBegin();
  return work.attach(kj::defer([clock = options.clock]() { clock->backgroundEnd(); }));
}

void HostQueueImpl::interrupt(rpc::SmmuIrq irq) {
  switch (irq) {
    case rpc::SmmuIrq::EVTQ:
      // Any drain reads everything present: one queued drain is enough.
      if (!irqDrainQueued) {
        irqDrainQueued = true;
        tasks.add(background(serializedDrain().ignoreResult()));
      }
      return;
    case rpc::SmmuIrq::GERROR:
      tasks.add(background(globalError()));
      return;
    case rpc::SmmuIrq::CMD_SYNC:
      return;  // this driver's SYNCs are CS = SEV and polled
  }
}

// =============================================================================================
// Construction and bring-up

kj::Promise<kj::Own<HostQueue>> HostQueue::create(PhysMem& mem,
                                                  rpc::FrameAllocator::Client frames,
                                                  rpc::Smmuv3::Client smmu, kj::Timer& timer,
                                                  HostOptions options) {
  KJ_REQUIRE(options.batchSize >= 1, "a batch holds at least one command");
  KJ_REQUIRE(options.cmdqLog2Size <= Q_PTR::LOG2SIZE_MAX &&
             options.evtqLog2Size <= Q_PTR::LOG2SIZE_MAX);
  auto impl = kj::heap<HostQueueImpl>(mem, kj::mv(frames), kj::mv(smmu), timer, kj::mv(options));
  auto& ref = *impl;
  return ref.bringUp().then([impl = kj::mv(impl)]() mutable -> kj::Own<HostQueue> {
    return kj::mv(impl);
  });
}

HostQueueImpl::HostQueueImpl(PhysMem& mem, rpc::FrameAllocator::Client frames,
                             rpc::Smmuv3::Client smmu, kj::Timer& timer, HostOptions options)
    : mem(mem),
      frames(kj::mv(frames)),
      smmu(kj::mv(smmu)),
      mmioCap(this->smmu),
      timer(timer),
      options(kj::mv(options)),
      routing(kj::refcounted<Routing>()),
      drainTail(kj::Promise<void>(kj::READY_NOW).fork()),
      tasks(*this) {
  lastProgress = timer.now();
}

HostQueueImpl::~HostQueueImpl() noexcept(false) {
  if (irqSink != nullptr) irqSink->owner = nullptr;
}

void HostQueueImpl::taskFailed(kj::Exception&& exception) {
  KJ_LOG(ERROR, "smmu_queue background task failed", smmuName, exception);
}

kj::Promise<kj::Array<uint64_t>> HostQueueImpl::mmio(kj::ArrayPtr<const MmioAccess> accesses) {
  auto req = mmioCap.batchRequest(capnp::MessageSize{8 + 3 * accesses.size(), 0});
  auto list = req.initAccesses(accesses.size());
  for (auto i : kj::indices(accesses)) {
    list[i].setOffset(accesses[i].offset);
    list[i].setSize(accesses[i].size);
    list[i].setWrite(accesses[i].write);
    list[i].setValue(accesses[i].value);
  }
  return req.send().then([](capnp::Response<rpc::Mmio::BatchResults>&& response) {
    auto values = response.getValues();
    return KJ_MAP(v, values) { return uint64_t(v); };
  });
}

kj::Promise<void> HostQueueImpl::writeAndWait(kj::Array<MmioAccess> writes, uint32_t ackOffset,
                                              uint32_t expected, uint32_t mask,
                                              kj::StringPtr what) {
  // Facts 1.8: each CR0 write is waited on until CR0ACK matches (likewise GBPA.UPDATE and
  // IRQ_CTRL_ACK). The ack read rides in the same batch as the write; only an SMMU that
  // acknowledges late costs more round trips.
  auto accesses = kj::heapArrayBuilder<MmioAccess>(writes.size() + 1);
  accesses.addAll(writes);
  accesses.add(rd(ackOffset));
  auto deadline = timer.now() + options.syncTimeout;
  auto check = [this, ackOffset, expected, mask, what, deadline](
                   auto& self, uint64_t value) -> kj::Promise<void> {
    if ((uint32_t(value) & mask) == expected) return kj::READY_NOW;
    KJ_REQUIRE(timer.now() < deadline, "SMMU did not acknowledge a register write in time", what,
               kj::hex(uint32_t(value)), kj::hex(expected));
    return timer.afterDelay(1 * kj::MILLISECONDS).then([this, ackOffset, &self]() {
      MmioAccess read[] = {rd(ackOffset)};
      return mmio(read).then([&self](kj::Array<uint64_t> v) { return self(self, v[0]); });
    });
  };
  auto checker = kj::heap<decltype(check)>(kj::mv(check));
  auto& ref = *checker;
  return mmio(accesses.finish())
      .then([&ref](kj::Array<uint64_t> v) { return ref(ref, v.back()); })
      .attach(kj::mv(checker));
}

void HostQueueImpl::decodeCaps(kj::ArrayPtr<const uint64_t> idr) {
  // Facts 1.8 (arm_smmu_device_hw_probe): the driver's view of the SMMU, from IDR0..IDR5 only.
  for (unsigned i = 0; i < 6; i++) caps_.idr[i] = uint32_t(idr[i]);
  const uint64_t idr0 = idr[0], idr1 = idr[1], idr3 = idr[3], idr5 = idr[5];
  caps_.stage1 = IDR0::S1P.test(idr0);
  caps_.stage2 = IDR0::S2P.test(idr0);
  caps_.nesting = caps_.stage1 && caps_.stage2;
  caps_.ril = IDR3::RIL.test(idr3);
  caps_.ats = IDR0::ATS.test(idr0);
  caps_.hyp = IDR0::HYP.test(idr0);
  caps_.twoLevelStreamTable = IDR0::ST_LVL.get(idr0) == IDR0::ST_LVL_2LVL;
  caps_.asid16 = IDR0::ASID16.test(idr0);
  caps_.vmid16 = IDR0::VMID16.test(idr0);
  caps_.sidBits = unsigned(IDR1::SIDSIZE.get(idr1));
  caps_.ssidBits = unsigned(IDR1::SSIDSIZE.get(idr1));
  caps_.cmdqLog2Max = unsigned(IDR1::CMDQS.get(idr1));
  caps_.evtqLog2Max = unsigned(IDR1::EVTQS.get(idr1));
  const uint64_t oas = IDR5::OAS.get(idr5);
  // A reserved OAS encoding: Linux assumes 48 bits.
  caps_.oas = oas < kj::size(ADDRESS_SIZE_BITS) ? ADDRESS_SIZE_BITS[oas] : 48;
  // The page and block sizes of each granule (Linux's pgsize_bitmap per IDR5.GRANxx).
  caps_.pgsizeBitmap = 0;
  if (IDR5::GRAN4K.test(idr5)) caps_.pgsizeBitmap |= (1ull << 12) | (1ull << 21) | (1ull << 30);
  if (IDR5::GRAN16K.test(idr5)) caps_.pgsizeBitmap |= (1ull << 14) | (1ull << 25);
  if (IDR5::GRAN64K.test(idr5)) caps_.pgsizeBitmap |= (1ull << 16) | (1ull << 29);
}

kj::Promise<void> HostQueueImpl::bringUp() {
  auto infoPromise = smmu.infoRequest().send();
  MmioAccess probe[] = {rd(IDR0::OFFSET), rd(IDR1::OFFSET), rd(IDR2::OFFSET), rd(IDR3::OFFSET),
                        rd(IDR4::OFFSET), rd(IDR5::OFFSET), rd(CR0::OFFSET), rd(GBPA::OFFSET)};
  return mmio(probe)
      .then([this, infoPromise = kj::mv(infoPromise)](kj::Array<uint64_t> v) mutable {
        decodeCaps(v.slice(0, 6));
        cr0 = uint32_t(v[6]);
        gbpa = uint32_t(v[7]);
        return infoPromise.then([this](capnp::Response<rpc::Smmuv3::InfoResults>&& r) {
          fillInfo(r.getInfo());
        });
      })
      .then([this]() -> kj::Promise<bool> {
        if (CR0::SMMUEN.test(cr0) && options.adoptEnabled) return adopt();
        return false;
      })
      .then([this](bool adopted) -> kj::Promise<void> {
        if (adopted) return kj::READY_NOW;
        return allocate().then([this]() { return reset(); });
      });
}

kj::Promise<bool> HostQueueImpl::adopt() {
  // A previous owner left the SMMU enabled (this component restarted): take over what it set
  // up, the way a live update keeps DMA flowing — the stream table (whose STEs the domain
  // allocator owns), the queues and their indexes, all read back from the registers. Nothing
  // is reset and nothing invalidated: the caches match the tables they were filled from.
  MmioAccess read[] = {rd(STRTAB_BASE::OFFSET, 8), rd(STRTAB_BASE_CFG::OFFSET),
                       rd(CMDQ_BASE::OFFSET, 8),   rd(CMDQ_PROD::OFFSET),
                       rd(CMDQ_CONS::OFFSET),      rd(EVTQ_BASE::OFFSET, 8),
                       rd(EVTQ_PROD::OFFSET),      rd(EVTQ_CONS::OFFSET),
                       rd(GERROR::OFFSET),         rd(GERRORN::OFFSET)};
  return mmio(read).then([this](kj::Array<uint64_t> v) -> kj::Promise<bool> {
    const uint64_t strtabBase = v[0], strtabCfg = v[1], cmdqBase = v[2], evtqBase = v[5];
    const uint32_t cmdqProd = uint32_t(v[3]), cmdqCons = uint32_t(v[4]);
    const uint32_t active = uint32_t(v[8] ^ v[9]) & GERROR::MASK;
    auto refuse = [this](kj::StringPtr why) -> kj::Promise<bool> {
      KJ_LOG(WARNING, "SMMU enabled at start but not adoptable: resetting it", smmuName, why);
      return false;
    };
    const uint32_t needed = uint32_t(CR0::CMDQEN.mask() | CR0::EVTQEN.mask());
    if ((cr0 & needed) != needed) return refuse("CMDQEN or EVTQEN clear");
    if (GERROR::CMDQ_ERR.test(active)) return refuse("a command queue error is pending");

    twoLevel = STRTAB_BASE_CFG::FMT.get(strtabCfg) == STRTAB_BASE_CFG::FMT_2LVL;
    strtabLog2 = unsigned(STRTAB_BASE_CFG::LOG2SIZE.get(strtabCfg));
    split = twoLevel ? unsigned(STRTAB_BASE_CFG::SPLIT.get(strtabCfg)) : 0;
    if (strtabLog2 > caps_.sidBits || split > strtabLog2) return refuse("stream table size");
    const uint64_t strtabBytes = twoLevel ? uint64_t(ste::L1STD_BYTES) << (strtabLog2 - split)
                                          : uint64_t(ste::STE_BYTES) << strtabLog2;
    cmdqLog2 = unsigned(Q_BASE::LOG2SIZE.get(cmdqBase));
    evtqLog2 = unsigned(Q_BASE::LOG2SIZE.get(evtqBase));
    if (cmdqLog2 > caps_.cmdqLog2Max || evtqLog2 > caps_.evtqLog2Max) return refuse("queue size");
    streamTable = Run{STRTAB_BASE::ADDR.get(strtabBase) << STRTAB_BASE::ADDR.lo,
                      alignUp(strtabBytes, 4096)};
    cmdqRun = Run{Q_BASE::ADDR.get(cmdqBase) << Q_BASE::ADDR.lo,
                  alignUp(uint64_t(CMDQ_ENT_BYTES) << cmdqLog2, 4096)};
    evtqRun = Run{Q_BASE::ADDR.get(evtqBase) << Q_BASE::ADDR.lo,
                  alignUp(uint64_t(EVTQ_ENT_BYTES) << evtqLog2, 4096)};
    for (auto* r : {&streamTable, &cmdqRun, &evtqRun}) {
      if (!mem.contains(r->pa, r->bytes)) return refuse("a table or queue outside memory");
    }
    ring = reinterpret_cast<uint64_t*>(mem.bytes().begin() + (cmdqRun.pa - mem.base()));
    owners = kj::heapArray<SlotOwner>(ringEntries());
    for (auto& o : owners) o = SlotOwner{};
    // Commands the old owner left between CONS and PROD are the SMMU's to finish; ours follow.
    prod = cmdqProd & ringMask();
    cons = cmdqCons & ringMask();
    evtqCons = uint32_t(v[7]);
    publishLayout();
    stats_.adopted = 1;
    kj::Promise<void> ack = kj::READY_NOW;
    if (active != 0) {
      KJ_LOG(WARNING, "acknowledging global errors left active", smmuName, kj::hex(active));
      ack = mmio(kj::heapArray<MmioAccess>({wr(GERRORN::OFFSET, v[8])})).ignoreResult();
    }
    const bool eventsWaiting = uint32_t(v[6]) != evtqCons;
    return ack.then([this]() { return enableInterrupts(); }).then([this, eventsWaiting]() {
      // Events that arrived while nobody listened: read them as an interrupt would.
      if (eventsWaiting) interrupt(rpc::SmmuIrq::EVTQ);
      return true;
    });
  });
}

void HostQueueImpl::fillInfo(rpc::SmmuInfo::Reader smmuInfo) {
  smmuName = kj::heapString(smmuInfo.getName());
  auto info = infoMessage.initRoot<rpc::QueueInfo>();
  info.setSmmu(smmuInfo.getName());
  info.setFeatures(smmuInfo.getFeatures());
  auto idr = info.initIdr(6);
  for (unsigned i = 0; i < 6; i++) idr.set(i, caps_.idr[i]);
  info.setBatchSize(uint32_t(options.batchSize));
}

kj::Promise<void> HostQueueImpl::allocate() {
  cmdqLog2 = kj::min(options.cmdqLog2Size, caps_.cmdqLog2Max);
  evtqLog2 = kj::min(options.evtqLog2Size, caps_.evtqLog2Max);

  // Facts 2.1: two-level when IDR0.ST_LVL allows it and the SIDs do not fit one level-2
  // table; at most 2^17 level-1 descriptors. LOG2SIZE = log2(L1 entries) + SPLIT.
  const unsigned sidBits = caps_.sidBits;
  twoLevel = options.twoLevelStreamTable && caps_.twoLevelStreamTable &&
             sidBits > options.streamTableSplit;
  uint64_t strtabBytes;
  if (twoLevel) {
    split = options.streamTableSplit;
    const unsigned l1Log2 = kj::min(sidBits - split, 17u);
    strtabLog2 = l1Log2 + split;
    strtabBytes = uint64_t(ste::L1STD_BYTES) << l1Log2;
  } else {
    split = 0;
    strtabLog2 = sidBits;
    KJ_REQUIRE(sidBits <= 24, "a linear stream table for this many StreamIDs is too large",
               sidBits);
    strtabBytes = uint64_t(ste::STE_BYTES) << sidBits;
  }
  const uint64_t cmdqBytes = uint64_t(CMDQ_ENT_BYTES) << cmdqLog2;
  const uint64_t evtqBytes = uint64_t(EVTQ_ENT_BYTES) << evtqLog2;

  auto one = [this](uint64_t bytes, kj::StringPtr what) {
    // Queues are naturally aligned to their size (Q_BASE.ADDR, facts 1.1).
    const uint64_t size = alignUp(bytes, 4096);
    auto req = frames.allocRequest();
    req.setBytes(size);
    req.setAlign(isPow2(size) ? size : 4096);
    req.setCount(1);
    using AllocResponse = capnp::Response<rpc::FrameAllocator::AllocResults>;
    return req.send().then([this, size, what](AllocResponse&& r) {
      KJ_REQUIRE(r.getErrno() == rpc::Errno::OK && r.getRuns().size() == 1,
                 "no memory for the SMMU's structures", what, size, smmuName);
      Run run{r.getRuns()[0].getPa(), size};
      mem.zero(run.pa, run.bytes);
      return run;
    });
  };
  auto runs = kj::heapArrayBuilder<kj::Promise<Run>>(3);
  runs.add(one(strtabBytes, "stream table"));
  runs.add(one(cmdqBytes, "command queue"));
  runs.add(one(evtqBytes, "event queue"));
  return kj::joinPromises(runs.finish()).then([this](kj::Array<Run> got) {
    streamTable = got[0];
    cmdqRun = got[1];
    evtqRun = got[2];
    owners = kj::heapArray<SlotOwner>(ringEntries());
    KJ_REQUIRE(mem.contains(cmdqRun.pa, cmdqRun.bytes) && cmdqRun.pa % 8 == 0);
    ring = reinterpret_cast<uint64_t*>(mem.bytes().begin() + (cmdqRun.pa - mem.base()));
    for (auto& o : owners) o = SlotOwner{};
    publishLayout();
  });
}

void HostQueueImpl::publishLayout() {
  auto info = infoMessage.getRoot<rpc::QueueInfo>();
  auto st = info.initStreamTable();
  st.setPa(streamTable.pa);
  st.setLog2Size(uint8_t(strtabLog2));
  st.setTwoLevel(twoLevel);
  st.setSplit(uint8_t(split));
  info.setCmdqPa(cmdqRun.pa);
  info.setCmdqLog2Size(uint8_t(cmdqLog2));
  info.setEvtqPa(evtqRun.pa);
  info.setEvtqLog2Size(uint8_t(evtqLog2));
}

kj::Promise<void> HostQueueImpl::reset() {
  // Facts 1.8, arm_smmu_device_reset, step by step.
  kj::Promise<void> step = kj::READY_NOW;
  if (CR0::SMMUEN.test(cr0)) {
    // 1. Already enabled: abort incoming transactions while the tables are replaced.
    KJ_LOG(WARNING, "SMMU already enabled at reset: setting GBPA.ABORT", smmuName);
    step = writeAndWait(kj::heapArray<MmioAccess>({wr(GBPA::OFFSET,
                                                      gbpa | GBPA::ABORT.mask() |
                                                          GBPA::UPDATE.mask())}),
                        GBPA::OFFSET, 0, uint32_t(GBPA::UPDATE.mask()), "GBPA.UPDATE");
  }
  return step
      .then([this]() {
        // 2. CR0 = 0 and wait for the ack.
        cr0 = 0;
        return writeAndWait(kj::heapArray<MmioAccess>({wr(CR0::OFFSET, 0)}), CR0ACK::OFFSET, 0,
                            CR0_ALL, "CR0 = 0");
      })
      .then([this]() {
        // Errors left active by a previous owner would stop the new queues: acknowledge them
        // (not in Linux's sequence, which starts from a hardware reset).
        MmioAccess read[] = {rd(GERROR::OFFSET), rd(GERRORN::OFFSET)};
        return mmio(read);
      })
      .then([this](kj::Array<uint64_t> gerror) {
        // 3-5. Table and queue attributes (ISH, write-back: facts 1.8), the stream table, the
        // CMDQ, and CMDQEN.
        uint64_t cr1 = 0;
        cr1 = CR1::TABLE_SH.set(cr1, CR1::SH_ISH);
        cr1 = CR1::TABLE_OC.set(cr1, CR1::CACHE_WB);
        cr1 = CR1::TABLE_IC.set(cr1, CR1::CACHE_WB);
        cr1 = CR1::QUEUE_SH.set(cr1, CR1::SH_ISH);
        cr1 = CR1::QUEUE_OC.set(cr1, CR1::CACHE_WB);
        cr1 = CR1::QUEUE_IC.set(cr1, CR1::CACHE_WB);
        const uint64_t cr2 = CR2::PTM.mask() | CR2::RECINVSID.mask();

        uint64_t strtabBase = STRTAB_BASE::RA.mask();
        strtabBase = STRTAB_BASE::ADDR.set(strtabBase, streamTable.pa >> STRTAB_BASE::ADDR.lo);
        uint64_t strtabCfg = 0;
        strtabCfg = STRTAB_BASE_CFG::LOG2SIZE.set(strtabCfg, strtabLog2);
        if (twoLevel) {
          strtabCfg = STRTAB_BASE_CFG::FMT.set(strtabCfg, STRTAB_BASE_CFG::FMT_2LVL);
          strtabCfg = STRTAB_BASE_CFG::SPLIT.set(strtabCfg, split);
        }
        uint64_t cmdqBase = Q_BASE::RA.mask();
        cmdqBase = Q_BASE::ADDR.set(cmdqBase, cmdqRun.pa >> Q_BASE::ADDR.lo);
        cmdqBase = Q_BASE::LOG2SIZE.set(cmdqBase, cmdqLog2);

        kj::Vector<MmioAccess> writes;
        writes.add(wr(CR1::OFFSET, cr1));
        writes.add(wr(CR2::OFFSET, cr2));
        writes.add(wr(STRTAB_BASE::OFFSET, strtabBase, 8));
        writes.add(wr(STRTAB_BASE_CFG::OFFSET, strtabCfg));
        writes.add(wr(CMDQ_BASE::OFFSET, cmdqBase, 8));
        writes.add(wr(CMDQ_PROD::OFFSET, 0));
        writes.add(wr(CMDQ_CONS::OFFSET, 0));
        const uint32_t active = uint32_t(gerror[0] ^ gerror[1]) & GERROR::MASK;
        if (active != 0) {
          KJ_LOG(WARNING, "acknowledging global errors left active", smmuName, kj::hex(active));
          writes.add(wr(GERRORN::OFFSET, gerror[0]));
        }
        prod = cons = 0;
        cr0 = uint32_t(CR0::CMDQEN.mask());
        writes.add(wr(CR0::OFFSET, cr0));
        return writeAndWait(writes.releaseAsArray(), CR0ACK::OFFSET, cr0, CR0_ALL, "CMDQEN");
      })
      .then([this]() {
        // 6-8. CFGI_ALL + SYNC, TLBI_EL2_ALL + SYNC (HYP), TLBI_NSNH_ALL + SYNC: one
        // submission each, so each gets its SYNC; gathered into one doorbell.
        auto done = kj::heapArrayBuilder<kj::Promise<SubmitOutcome>>(3);
        done.add(submit(kj::heapArray<Command>({build::cfgiAll()})));
        if (caps_.hyp) done.add(submit(kj::heapArray<Command>({build::tlbiEl2All()})));
        done.add(submit(kj::heapArray<Command>({build::tlbiNsnhAll()})));
        return kj::joinPromises(done.finish());
      })
      .then([this](kj::Array<SubmitOutcome> outcomes) {
        for (auto& o : outcomes) {
          KJ_REQUIRE(o.errno_ == rpc::Errno::OK, "reset invalidation failed", smmuName, o.message);
        }
        // 9. The EVTQ and EVTQEN (no PRI queue), ATSCHK with ATS.
        uint64_t evtqBase = Q_BASE::RA.mask();
        evtqBase = Q_BASE::ADDR.set(evtqBase, evtqRun.pa >> Q_BASE::ADDR.lo);
        evtqBase = Q_BASE::LOG2SIZE.set(evtqBase, evtqLog2);
        evtqCons = 0;
        cr0 |= uint32_t(CR0::EVTQEN.mask());
        if (caps_.ats) cr0 |= uint32_t(CR0::ATSCHK.mask());
        return writeAndWait(kj::heapArray<MmioAccess>({wr(EVTQ_BASE::OFFSET, evtqBase, 8),
                                                       wr(EVTQ_PROD::OFFSET, 0),
                                                       wr(EVTQ_CONS::OFFSET, 0),
                                                       wr(CR0::OFFSET, cr0)}),
                            CR0ACK::OFFSET, cr0, CR0_ALL, "EVTQEN");
      })
      .then([this]() {
        // 10. Interrupts.
        return enableInterrupts();
      })
      .then([this]() {
        // SMMUEN.
        cr0 |= uint32_t(CR0::SMMUEN.mask());
        return writeAndWait(kj::heapArray<MmioAccess>({wr(CR0::OFFSET, cr0)}), CR0ACK::OFFSET,
                            cr0, CR0_ALL, "SMMUEN");
      });
}

kj::Promise<void> HostQueueImpl::enableInterrupts() {
  // Subscribe to the line, then enable GERROR and EVTQ interrupts.
  auto req = smmu.subscribeRequest();
  req.setSink(kj::heap<IrqSinkServer>(*this));
  irqSubscription = req.send().getSubscription();
  const uint32_t irqs = uint32_t(IRQ_CTRL::GERROR_IRQEN.mask() | IRQ_CTRL::EVTQ_IRQEN.mask());
  return writeAndWait(kj::heapArray<MmioAccess>({wr(IRQ_CTRL::OFFSET, irqs)}),
                      IRQ_CTRL_ACK::OFFSET, irqs, irqs, "IRQ_CTRL");
}

kj::Promise<void> HostQueueImpl::shutdown() {
  if (stopped) return kj::READY_NOW;
  stopped = true;
  for (auto& s : queue) {
    s->fulfiller->reject(KJ_EXCEPTION(DISCONNECTED, "smmu_queue is shutting down"));
  }
  queue.clear();
  writeCursor = 0;
  irqSubscription = nullptr;
  // Quiesce the SMMU before its tables are freed (Linux's arm_smmu_device_disable).
  return writeAndWait(kj::heapArray<MmioAccess>({wr(CR0::OFFSET, 0)}), CR0ACK::OFFSET, 0,
                      CR0_ALL, "CR0 = 0")
      .then([this]() {
        auto req = frames.freeRequest();
        auto runs = req.initRuns(3);
        const Run* all[] = {&streamTable, &cmdqRun, &evtqRun};
        for (unsigned i = 0; i < 3; i++) {
          runs[i].setPa(all[i]->pa);
          runs[i].setBytes(all[i]->bytes);
        }
        return req.send().ignoreResult();
      })
      .catch_([](kj::Exception&& e) {
        // The SMMU or hw/mem already gone: nothing left to quiesce or free.
      });
}

// =============================================================================================
// The CMDQ producer

kj::Promise<SubmitOutcome> HostQueueImpl::submit(kj::Array<Command> commands,
                                                  kj::Maybe<SyncPolicy> policy) {
  stats_.submissions++;
  if (stopped) {
    return KJ_EXCEPTION(DISCONNECTED, "smmu_queue is shutting down");
  }
  auto paf = kj::newPromiseAndFulfiller<SubmitOutcome>();
  auto s = kj::heap<Submission>();
  s->id = nextId++;
  s->commands = kj::mv(commands);
  s->perBatch = policy.orDefault(options.syncPolicy) == SyncPolicy::PER_BATCH;
  s->arrival = timer.now();
  s->fulfiller = kj::mv(paf.fulfiller);
  queue.push_back(kj::mv(s));
  kick();
  return kj::mv(paf.promise);
}

HostQueueImpl::Submission* HostQueueImpl::find(uint64_t id) {
  if (queue.empty()) return nullptr;
  const uint64_t first = queue.front()->id;
  if (id < first || id - first >= queue.size()) return nullptr;
  return queue[id - first].get();
}

void HostQueueImpl::writeEntry(const Command& c, SlotOwner owner) {
  // Plain stores into the ring's mapping (checked once, at allocation); the doorbell's round
  // trip orders them before the SMMU reads them, and send() fences before it.
  const uint32_t slot = prod & (ringEntries() - 1);
  ring[2 * slot] = c.dw0;
  ring[2 * slot + 1] = c.dw1;
  owners[slot] = owner;
  prod = (prod + 1) & ringMask();
  options.clock->charge(Cost::CMD_STORE);
}

bool HostQueueImpl::fill() {
  // Writes pending entries in FIFO order while the ring has room. Returns whether any was
  // written (PROD must then be published).
  static const Command SYNC = build::sync();
  const uint32_t entries = ringEntries();
  bool wrote = false;
  if (closeBatch && used() < entries) {
    // A failed submission left a batch without its SYNC: close it before the next one's.
    writeEntry(SYNC, SlotOwner{});
    stats_.syncs++;
    closeBatch = false;
    wrote = true;
  }
  while (!closeBatch && writeCursor < queue.size()) {
    Submission& s = *queue[writeCursor];
    while (!s.finalSyncWritten) {
      if (used() == entries) {
        stats_.queueFullWaits++;
        return wrote;
      }
      const size_t n = s.commands.size();
      if (!s.perBatch && s.sinceSync == options.batchSize && s.written < n) {
        // arm_smmu_cmdq_batch_add on a full batch: issued without a SYNC, a new batch begins.
        stats_.batches++;
        s.sinceSync = 0;
      }
      if ((s.perBatch && s.sinceSync == options.batchSize) || s.written == n) {
        writeEntry(SYNC, SlotOwner{s.id, uint32_t(s.written), true});
        s.syncsWritten++;
        stats_.syncs++;
        stats_.batches++;
        s.sinceSync = 0;
        s.finalSyncWritten = s.written == n;
      } else if (opcodeOf(s.commands[s.written]) == uint8_t(Opcode::SYNC)) {
        // A CMD_SYNC inside a submission ends a batch there (arm_smmu_cmdq_batch_submit):
        // one submission can carry several of Linux's, each waited on in order.
        writeEntry(s.commands[s.written], SlotOwner{s.id, uint32_t(s.written), true});
        s.written++;
        s.syncsWritten++;
        stats_.syncs++;
        stats_.batches++;
        s.sinceSync = 0;
      } else {
        writeEntry(s.commands[s.written], SlotOwner{s.id, uint32_t(s.written), false});
        s.written++;
        s.sinceSync++;
        stats_.commands++;
      }
      wrote = true;
    }
    writeCursor++;
  }
  return wrote;
}

void HostQueueImpl::kick() {
  if (pumpScheduled || stopped) return;
  pumpScheduled = true;
  // evalLater: submissions already queued on the event loop arrive first and share a doorbell.
  tasks.add(kj::evalLater([this]() {
    pumpScheduled = false;
    // A ring full of entries the SMMU is not consuming: nothing can be written, so poll.
    if (!pump() && inflight == 0 && !exclusive && used() != 0) schedulePoll();
  }));
}

bool HostQueueImpl::pump() {
  // Writes what fits and rings a doorbell, while fewer than maxInflight are outstanding:
  // in-order delivery of the Mmio calls keeps the PROD writes in order, and the responses'
  // CONS readings arrive in order too. Returns whether a doorbell was sent.
  bool sent = false;
  while (!stopped && !exclusive && inflight < options.maxDoorbellsInFlight) {
    const bool wasEmpty = used() == 0;
    if (!fill()) break;
    if (wasEmpty) lastProgress = timer.now();
    send(true);
    sent = true;
  }
  return sent;
}

void HostQueueImpl::send(bool doorbell) {
  // One round trip: publish PROD (a doorbell) and read CONS back; or just read CONS (a poll).
  std::atomic_thread_fence(std::memory_order_release);  // the entries before PROD
  const unsigned n = doorbell ? 2 : 1;
  auto req = mmioCap.batchRequest(capnp::MessageSize{16, 0});
  auto accesses = req.initAccesses(n);
  if (doorbell) {
    accesses[0].setOffset(CMDQ_PROD::OFFSET);
    accesses[0].setWrite(true);
    accesses[0].setValue(prod);
    stats_.doorbells++;
  } else {
    stats_.consPolls++;
  }
  accesses[n - 1].setOffset(CMDQ_CONS::OFFSET);
  inflight++;
  tasks.add(req.send().then(
      [this, n](capnp::Response<rpc::Mmio::BatchResults>&& response) {
        inflight--;
        observe(uint32_t(response.getValues()[n - 1]));
      },
      [this](kj::Exception&& e) {
        inflight--;
        broken(kj::mv(e));
      }));
}

void HostQueueImpl::broken(kj::Exception&& e) {
  // The SMMU is unreachable (a dead process): every waiting submitter learns it.
  for (auto& s : queue) s->fulfiller->reject(kj::cp(e));
  queue.clear();
  writeCursor = 0;
}

void HostQueueImpl::observe(uint32_t consRegister) {
  if (stopped) return;
  const bool progressed = advance(consRegister & ringMask());
  if (progressed) {
    lastProgress = timer.now();
    idlePolls = 0;
    abortRetries = 0;
  }
  // Readings arrive in order: the latest says whether the SMMU is stopped at an error.
  pendingError = CMDQ_CONS::ERR.get(consRegister) != 0 ? kj::Maybe<uint32_t>(consRegister)
                                                        : kj::Maybe<uint32_t>(nullptr);
  if (inflight > 0) {
    // A newer reading is on its way; meanwhile keep the pipeline full, unless the SMMU has
    // stopped (entries written now would only wait behind the error).
    if (pendingError == nullptr) pump();
    return;
  }
  KJ_IF_MAYBE(error, pendingError) {
    // Nobody waits (an orphan failed, or retries were given up): the next doorbell finds it.
    if (queue.empty()) return;
    // Fixed alone: no doorbell while the faulty slot is rewritten and acknowledged.
    const uint32_t reading = *error;
    pendingError = nullptr;
    exclusive = true;
    tasks.add(commandError(reading).then(
        [this](uint32_t after) {
          exclusive = false;
          observe(after);
        },
        [this](kj::Exception&& e) {
          exclusive = false;
          broken(kj::mv(e));
        }));
    return;
  }
  if (pump()) return;                          // a doorbell reads CONS too
  if (used() == 0 || queue.empty()) return;    // idle (orphans: the next doorbell finds out)
  schedulePoll();                              // the SMMU has not caught up: poll
}

void HostQueueImpl::schedulePoll() {
  // CONS has not passed every entry: fail the submissions whose SYNC waited syncTimeout
  // without progress, then poll — at once for a few polls after progress (an SMMU that is
  // merely busy), then on the timer with backoff.
  if (pollScheduled) return;
  failExpired();
  if (queue.empty()) return;
  pollScheduled = true;
  idlePolls++;
  kj::Promise<void> delay = nullptr;
  if (idlePolls <= IMMEDIATE_POLLS) {
    delay = kj::evalLater([]() {});
  } else {
    const unsigned shift = kj::min(idlePolls - IMMEDIATE_POLLS - 1, 3u);
    delay = timer.afterDelay(kj::min((1 << shift) * kj::MILLISECONDS, MAX_POLL_DELAY));
  }
  tasks.add(delay.then([this]() {
    pollScheduled = false;
    if (stopped || exclusive || inflight > 0) return;  // a response on its way will decide
    if (!pump()) send(false);
  }));
}

bool HostQueueImpl::advance(uint32_t newCons) {
  // The SMMU consumed [cons, newCons): a SYNC passed completes the batch it closes.
  uint32_t delta = (newCons - cons) & ringMask();
  if (delta == 0) return false;
  if (delta > used()) {
    // CONS beyond PROD: not an SMMU behaviour. Trust the entries this driver wrote only.
    KJ_LOG(ERROR, "CMDQ_CONS moved beyond PROD", smmuName, kj::hex(newCons), kj::hex(prod));
    delta = used();
  }
  const uint32_t slots = ringEntries() - 1;
  for (uint32_t i = 0; i < delta; i++) {
    SlotOwner& owner = owners[(cons + i) & slots];
    if (owner.sync) {
      if (Submission* s = find(owner.submission)) {
        s->covered = owner.index;
        s->syncsDone++;
        if (s->finalSyncWritten && s->syncsDone == s->syncsWritten) complete(*s);
      }
    }
    owner = SlotOwner{};
  }
  cons = (cons + delta) & ringMask();
  return true;
}

kj::Promise<uint32_t> HostQueueImpl::commandError(uint32_t consRegister) {
  // Facts 1.6 (arm_smmu_cmdq_skip_err): the SMMU stopped at CONS and raised GERROR.CMDQ_ERR.
  const uint32_t slot = (consRegister & ringMask()) & (ringEntries() - 1);
  switch (CommandError(CMDQ_CONS::ERR.get(consRegister))) {
    case CommandError::ILL: {
      // Report the command to its submitter, overwrite it with a CMD_SYNC, resume.
      stats_.illegal++;
      const SlotOwner owner = owners[slot];
      if (!owner.sync && owner.submission != 0) {
        if (Submission* s = find(owner.submission)) s->illegal.add(owner.index);
      }
      const Command sync = build::sync();
      ring[2 * slot] = sync.dw0;
      ring[2 * slot + 1] = sync.dw1;
      std::atomic_thread_fence(std::memory_order_release);
      owners[slot] = SlotOwner{};
      break;
    }
    case CommandError::ABT:
      // Retry the fetch by acknowledging, a bounded number of times at one CONS.
      stats_.fetchAborts++;
      if (++abortRetries > MAX_ABORT_RETRIES) {
        // Given up: every waiting submission fails (those not yet written would only queue
        // behind the error), and the queue is left stopped at the error — acknowledged, and so
        // retried, by the next submission's doorbell.
        abortRetries = 0;
        auto message = kj::str("command fetch aborted (CERROR_ABT) ", MAX_ABORT_RETRIES,
                               " times at CMDQ_CONS 0x", kj::hex(consRegister));
        while (!queue.empty()) fail(*queue.front(), rpc::Errno::E_IO, message);
        return consRegister;
      }
      break;
    case CommandError::ATC_INV_SYNC:
    case CommandError::NONE:
    default:
      // Acknowledging re-runs the SYNC (facts 1.6).
      break;
  }
  // Acknowledge CMDQ_ERR alone (GERRORN's bit := GERROR's), and read CONS back.
  return lockGerrorn()
      .then([this]() {
        MmioAccess read[] = {rd(GERROR::OFFSET), rd(GERRORN::OFFSET)};
        return mmio(read);
      })
      .then([this](kj::Array<uint64_t> g) {
        const uint64_t gerrorn =
            (g[1] & ~GERROR::CMDQ_ERR.mask()) | (g[0] & GERROR::CMDQ_ERR.mask());
        MmioAccess ack[] = {wr(GERRORN::OFFSET, gerrorn), rd(CMDQ_CONS::OFFSET)};
        return mmio(ack);
      })
      .then([](kj::Array<uint64_t> v) { return uint32_t(v[1]); })
      .attach(kj::defer([this]() { unlockGerrorn(); }));
}

kj::Promise<void> HostQueueImpl::lockGerrorn() {
  // GERRORN has no atomic update over MMIO: its writers (the CMDQ_ERR acknowledgement here,
  // the other errors' in globalError()) read-modify-write it one at a time.
  if (!gerrornBusy) {
    gerrornBusy = true;
    return kj::READY_NOW;
  }
  auto paf = kj::newPromiseAndFulfiller<void>();
  gerrornWaiters.add(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

void HostQueueImpl::unlockGerrorn() {
  if (gerrornWaiters.empty()) {
    gerrornBusy = false;
    return;
  }
  auto next = kj::mv(gerrornWaiters.front());
  for (size_t i = 0; i + 1 < gerrornWaiters.size(); i++) {
    gerrornWaiters[i] = kj::mv(gerrornWaiters[i + 1]);
  }
  gerrornWaiters.removeLast();
  next->fulfill();  // stays busy: handed over
}

void HostQueueImpl::failExpired() {
  // Linux waits ARM_SMMU_POLL_TIMEOUT_US per SYNC (facts 1.1): a submission fails once
  // syncTimeout passed since it arrived, and since the SMMU last made progress.
  const auto now = timer.now();
  while (!queue.empty()) {
    Submission& s = *queue.front();
    const auto start = kj::max(s.arrival, lastProgress);
    if (now - start < options.syncTimeout) break;
    stats_.timeouts++;
    fail(s, rpc::Errno::E_TIMED_OUT,
         kj::str("CMD_SYNC timeout after ", ms(options.syncTimeout), " ms [prod 0x",
                 kj::hex(prod), ", cons 0x", kj::hex(cons), "]"));
  }
}

void HostQueueImpl::complete(Submission& s) {
  KJ_ASSERT(&s == queue.front().get(), "submissions complete in order");
  SubmitOutcome out;
  out.executed = uint32_t(s.commands.size() - s.illegal.size());
  out.syncs = s.syncsWritten;
  out.commands = kj::mv(s.commands);
  if (!s.illegal.empty()) {
    out.errno_ = rpc::Errno::E_IO;
    kj::Vector<kj::String> which;
    for (auto i : s.illegal) {
      which.add(kj::str(i, " (opcode 0x", kj::hex(opcodeOf(out.commands[i])), ")"));
    }
    out.message = kj::str("CERROR_ILL: the SMMU refused command ", kj::strArray(which, ", "),
                          "; skipped, the others were executed");
  }
  out.illegal = kj::mv(s.illegal);
  s.fulfiller->fulfill(kj::mv(out));
  queue.pop_front();
  if (writeCursor > 0) writeCursor--;
}

void HostQueueImpl::fail(Submission& s, rpc::Errno errno_, kj::StringPtr message) {
  KJ_ASSERT(&s == queue.front().get(), "submissions fail in order");
  SubmitOutcome out;
  out.errno_ = errno_;
  size_t illegalCovered = 0;
  for (auto i : s.illegal) illegalCovered += i < s.covered ? 1 : 0;
  out.executed = uint32_t(s.covered - illegalCovered);
  out.syncs = s.syncsWritten;
  out.message = kj::heapString(message);
  out.illegal = kj::mv(s.illegal);
  out.commands = kj::mv(s.commands);
  // A batch written without its SYNC must not run into the next submission's commands.
  if (s.sinceSync > 0 && !s.finalSyncWritten) closeBatch = true;
  s.fulfiller->fulfill(kj::mv(out));
  queue.pop_front();
  if (writeCursor > 0) writeCursor--;
}

}  // namespace nb::smmuq
