// components/smmu_queue/smmuv3: the EVTQ consumer and event routing (facts 3.2, 3.3).
//
// A drain reads EVTQ_PROD, takes every record between the driver's CONS and PROD from the ring
// in shared memory, routes each, then publishes CONS (carrying PROD's overflow flag, which
// acknowledges an overflow) and reads PROD again in the same batch, until the queue is empty.
// Drains are serialized: one started by an EVTQ interrupt and one asked for by drainEvents()
// never read the same records twice, and a drainEvents() that follows an interrupt's drain
// resolves after that drain's deliveries too.

#include "components/smmu_queue/smmuv3/host-queue-internal.h"

#include <kj/debug.h>

namespace nb::smmuq {

using namespace nb::smmuv3;

namespace {

constexpr unsigned MAX_DRAIN_ROUNDS = 16;   // a source that never stops cannot pin a drain

bool isFetchFault(uint8_t id) {
  // Facts 3.2: dw3 holds the fetch address for these, the IPA (S2 = 1) otherwise.
  return id == uint8_t(EventId::F_STE_FETCH) || id == uint8_t(EventId::F_CD_FETCH) ||
         id == uint8_t(EventId::F_WALK_EABT) || id == uint8_t(EventId::F_VMS_FETCH);
}

bool handledByLinux(uint8_t id) {
  // Facts 3.3: the eight IDs arm_smmu_handle_event handles at all; only these can reach a
  // vmaster (arm_vmaster_report_event). Everything else is logged as unhandled.
  switch (EventId(id)) {
    case EventId::C_BAD_STE:
    case EventId::F_STREAM_DISABLED:
    case EventId::C_BAD_SUBSTREAMID:
    case EventId::C_BAD_CD:
    case EventId::F_TRANSLATION:
    case EventId::F_ADDR_SIZE:
    case EventId::F_ACCESS:
    case EventId::F_PERMISSION:
      return true;
    default:
      return false;
  }
}

class SubscriptionHandle final {
  // What subscribe() returns: routing stops when it is dropped.
public:
  SubscriptionHandle(kj::Own<Routing> routing, uint32_t sid, uint64_t token)
      : routing(kj::mv(routing)), sid(sid), token(token) {}
  ~SubscriptionHandle() noexcept(false) {
    KJ_IF_MAYBE(s, routing->subscribers.find(sid)) {
      if (s->token == token) routing->subscribers.erase(sid);
    }
  }
  KJ_DISALLOW_COPY(SubscriptionHandle);

private:
  kj::Own<Routing> routing;
  uint32_t sid;
  uint64_t token;
};

}  // namespace

rpc::EventType eventTypeOf(uint8_t id) {
  switch (EventId(id)) {
    case EventId::F_UUT: return rpc::EventType::F_UUT;
    case EventId::C_BAD_STREAMID: return rpc::EventType::C_BAD_STREAMID;
    case EventId::F_STE_FETCH: return rpc::EventType::F_STE_FETCH;
    case EventId::C_BAD_STE: return rpc::EventType::C_BAD_STE;
    case EventId::F_BAD_ATS_TREQ: return rpc::EventType::F_BAD_ATS_TREQ;
    case EventId::F_STREAM_DISABLED: return rpc::EventType::F_STREAM_DISABLED;
    case EventId::F_TRANSL_FORBIDDEN: return rpc::EventType::F_TRANSL_FORBIDDEN;
    case EventId::C_BAD_SUBSTREAMID: return rpc::EventType::C_BAD_SUBSTREAMID;
    case EventId::F_CD_FETCH: return rpc::EventType::F_CD_FETCH;
    case EventId::C_BAD_CD: return rpc::EventType::C_BAD_CD;
    case EventId::F_WALK_EABT: return rpc::EventType::F_WALK_EABT;
    case EventId::F_TRANSLATION: return rpc::EventType::F_TRANSLATION;
    case EventId::F_ADDR_SIZE: return rpc::EventType::F_ADDR_SIZE;
    case EventId::F_ACCESS: return rpc::EventType::F_ACCESS;
    case EventId::F_PERMISSION: return rpc::EventType::F_PERMISSION;
    case EventId::F_TLB_CONFLICT: return rpc::EventType::F_TLB_CONFLICT;
    case EventId::F_CFG_CONFLICT: return rpc::EventType::F_CFG_CONFLICT;
    case EventId::E_PAGE_REQUEST: return rpc::EventType::E_PAGE_REQUEST;
    case EventId::F_VMS_FETCH: return rpc::EventType::F_VMS_FETCH;
  }
  return rpc::EventType::UNKNOWN;
}

void decodeEvent(const EventRecord& r, rpc::Fault::Builder out) {
  using namespace evt;
  const uint8_t id = uint8_t(EVT_0_ID.get(r.dw[0]));
  out.setType(eventTypeOf(id));
  out.setId(id);
  out.setSid(uint32_t(EVT_0_SID.get(r.dw[0])));
  out.setSsv(EVT_0_SSV.test(r.dw[0]));
  out.setSsid(uint32_t(EVT_0_SSID.get(r.dw[0])));
  out.setStag(uint16_t(EVT_1_STAG.get(r.dw[1])));
  out.setStall(EVT_1_STALL.test(r.dw[1]));
  out.setPnu(EVT_1_PNU.test(r.dw[1]));
  out.setInd(EVT_1_IND.test(r.dw[1]));
  out.setRnw(EVT_1_RNW.test(r.dw[1]));
  const bool s2 = EVT_1_S2.test(r.dw[1]);
  out.setS2(s2);
  out.setClass(rpc::FaultClass(uint16_t(EVT_1_CLASS.get(r.dw[1]))));
  out.setTtrnw(EVT_1_TTRNW.test(r.dw[1]));
  out.setInputAddr(r.dw[2]);
  if (isFetchFault(id)) {
    out.setFetchAddr(EVT_3_FETCH_ADDR.get(r.dw[3]) << EVT_3_FETCH_ADDR.lo);
  } else if (s2) {
    out.setIpa(EVT_3_IPA.get(r.dw[3]) << EVT_3_IPA.lo);
  }
  auto raw = out.initRaw(4);
  for (unsigned i = 0; i < 4; i++) raw.set(i, r.dw[i]);
}

// =============================================================================================
// Draining

kj::Promise<HostQueue::Drained> HostQueueImpl::drainEvents() {
  return serializedDrain().then([this](Drained d) {
    // `lost` covers every drain since the last drainEvents(), interrupt-driven ones included.
    d.lost = lostSinceDrain;
    lostSinceDrain = false;
    return d;
  });
}

kj::Promise<HostQueue::Drained> HostQueueImpl::serializedDrain() {
  auto next = drainTail.addBranch().then([this]() { return drainOnce(); }).fork();
  drainTail = next.addBranch().then([](Drained) {}, [](kj::Exception&&) {}).fork();
  return next.addBranch();
}

kj::Promise<HostQueue::Drained> HostQueueImpl::drainOnce() {
  irqDrainQueued = false;  // this drain reads whatever an interrupt announced
  MmioAccess read[] = {rd(EVTQ_PROD::OFFSET)};
  return mmio(read).then([this](kj::Array<uint64_t> v) {
    auto deliveries = kj::heap<kj::Vector<kj::Promise<void>>>();
    auto& ref = *deliveries;
    return drainRecords(ref, uint32_t(v[0]), 0)
        .then([deliveries = kj::mv(deliveries)](uint32_t read) mutable {
          return kj::joinPromises(deliveries->releaseAsArray()).then([read]() {
            return Drained{read, false};
          });
        });
  });
}

kj::Promise<uint32_t> HostQueueImpl::drainRecords(kj::Vector<kj::Promise<void>>& deliveries,
                                                  uint32_t evtqProd, unsigned rounds) {
  const uint32_t entries = uint32_t(1) << evtqLog2;
  const uint32_t mask = (entries << 1) - 1;
  const uint32_t ovf = uint32_t(Q_PTR::OVFLG.mask());
  const bool overflow = (evtqProd & ovf) != (evtqCons & ovf);
  if (overflow) {
    // Facts 3.3: PROD.OVFLG differing from CONS.OVACKFLG means records were lost.
    stats_.evtqOverflows++;
    lostSinceDrain = true;
    KJ_LOG(WARNING, "EVTQ overflow detected -- events lost", smmuName);
  }
  uint32_t count = (evtqProd - evtqCons) & mask;
  if (count > entries) {
    KJ_LOG(ERROR, "EVTQ_PROD beyond the queue", smmuName, kj::hex(evtqProd), kj::hex(evtqCons));
    count = 0;
  }

  kj::HashMap<uint32_t, kj::Vector<EventRecord>> bySubscriber;
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t pa = evtqRun.pa + uint64_t((evtqCons + i) & (entries - 1)) * EVTQ_ENT_BYTES;
    EventRecord record;
    for (unsigned w = 0; w < 4; w++) record.dw[w] = mem.load64(pa + 8 * w);
    route(record, bySubscriber);
  }
  stats_.eventsRead += count;

  for (auto& entry : bySubscriber) {
    KJ_IF_MAYBE(sub, routing->subscribers.find(entry.key)) {
      auto req = sub->sink.deliverRequest();
      auto list = req.initEvents(entry.value.size());
      for (auto i : kj::indices(entry.value)) decodeEvent(entry.value[i], list[i]);
      deliveries.add(req.send().ignoreResult().catch_([this](kj::Exception&& e) {
        stats_.deliveryFailures++;
        KJ_LOG(WARNING, "event subscriber failed", smmuName, e);
      }));
    }
  }

  if (count == 0 && !overflow) return uint32_t(0);
  evtqCons = (evtqProd & mask) | (evtqProd & ovf);
  MmioAccess access[] = {wr(EVTQ_CONS::OFFSET, evtqCons), rd(EVTQ_PROD::OFFSET)};
  return mmio(access).then([this, &deliveries, count, rounds, mask, ovf](kj::Array<uint64_t> v)
                               -> kj::Promise<uint32_t> {
    const uint32_t prodNow = uint32_t(v[1]);
    const bool more = (prodNow & mask) != (evtqCons & mask) || (prodNow & ovf) != (evtqCons & ovf);
    if (!more || rounds + 1 >= MAX_DRAIN_ROUNDS) return count;
    return drainRecords(deliveries, prodNow, rounds + 1).then([count](uint32_t n) {
      return count + n;
    });
  });
}

void HostQueueImpl::route(const EventRecord& record,
                          kj::HashMap<uint32_t, kj::Vector<EventRecord>>& bySubscriber) {
  using namespace evt;
  const uint32_t sid = uint32_t(EVT_0_SID.get(record.dw[0]));
  const uint8_t id = uint8_t(EVT_0_ID.get(record.dw[0]));
  // Facts 3.3: a non-stall, stage-1 event of a master with a vmaster goes to its vIOMMU;
  // stage-2 faults never reach a guest.
  if (!EVT_1_STALL.test(record.dw[1]) && !EVT_1_S2.test(record.dw[1]) && handledByLinux(id)) {
    KJ_IF_MAYBE(vmaster, routing->vmasters.find(sid)) {
      stats_.eventsToGuests++;
      (*vmaster)->stage1Event(record);
      return;
    }
  }
  if (routing->subscribers.find(sid) != nullptr) {
    stats_.eventsRouted++;
    bySubscriber.findOrCreate(sid, [&]() {
      return kj::HashMap<uint32_t, kj::Vector<EventRecord>>::Entry{sid, {}};
    }).add(record);
    return;
  }
  stats_.eventsUnrouted++;
  unroutedLog.push_back(record);
  while (unroutedLog.size() > options.unroutedLog) {
    unroutedLog.pop_front();
    stats_.unroutedDropped++;
  }
}

kj::Promise<void> HostQueueImpl::globalError() {
  // Facts 1.7: acknowledge every active global error but CMDQ_ERR (the producer owns that one:
  // it must fix the queue before the SMMU resumes).
  return lockGerrorn()
      .then([this]() {
        MmioAccess read[] = {rd(GERROR::OFFSET), rd(GERRORN::OFFSET)};
        return mmio(read);
      })
      .then([this](kj::Array<uint64_t> g) -> kj::Promise<void> {
        const uint32_t active =
            uint32_t(g[0] ^ g[1]) & GERROR::MASK & ~uint32_t(GERROR::CMDQ_ERR.mask());
        if (active == 0) return kj::READY_NOW;
        stats_.globalErrors += unsigned(__builtin_popcount(active));
        if (GERROR::SFM_ERR.test(active)) {
          KJ_LOG(ERROR, "device has entered Service Failure Mode!", smmuName);
        }
        if (GERROR::EVTQ_ABT_ERR.test(active)) {
          KJ_LOG(WARNING, "EVTQ write aborted -- events may have been lost", smmuName);
        }
        KJ_LOG(WARNING, "SMMU global errors acknowledged", smmuName, kj::hex(active));
        MmioAccess ack[] = {wr(GERRORN::OFFSET, uint32_t(g[1]) ^ active)};
        return mmio(ack).ignoreResult();
      })
      .attach(kj::defer([this]() { unlockGerrorn(); }));
}

// =============================================================================================
// Routing tables

kj::Own<void> HostQueueImpl::subscribe(uint32_t sid, rpc::EventSink::Client sink) {
  KJ_REQUIRE(routing->subscribers.find(sid) == nullptr, "StreamID already has a subscriber", sid);
  const uint64_t token = routing->nextToken++;
  routing->subscribers.insert(sid, Routing::Subscriber{kj::mv(sink), token});
  return kj::heap<SubscriptionHandle>(kj::addRef(*routing), sid, token);
}

bool HostQueueImpl::subscribed(uint32_t sid) const {
  return routing->subscribers.find(sid) != nullptr;
}

void HostQueueImpl::unrouted(rpc::SmmuQueue::UnroutedResults::Builder results, bool clear) {
  auto events = results.initEvents(unroutedLog.size());
  for (size_t i = 0; i < unroutedLog.size(); i++) decodeEvent(unroutedLog[i], events[i]);
  results.setOverflows(stats_.evtqOverflows);
  results.setDropped(stats_.unroutedDropped);
  if (clear) unroutedLog.clear();
}

void HostQueueImpl::setVmaster(uint32_t sid, VmasterSink& sink) {
  routing->vmasters.upsert(sid, &sink, [](VmasterSink*& old, VmasterSink* now) { old = now; });
}

void HostQueueImpl::clearVmaster(uint32_t sid) { routing->vmasters.erase(sid); }

}  // namespace nb::smmuq
