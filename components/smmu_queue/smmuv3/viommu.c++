#include "components/smmu_queue/smmuv3/viommu.h"

#include "components/smmu_queue/smmuv3/guest-commands.h"
#include "interfaces/domain.capnp.h"
#include "util/smmuv3/commands.h"
#include "util/smmuv3/events.h"
#include "util/smmuv3/registers.h"
#include <capnp/message.h>
#include <kj/map.h>
#include <deque>

namespace nb::smmuq {

namespace {

constexpr uint64_t PAGE = 4096;
constexpr uint32_t ENTRY_BYTES = 16;
constexpr uint32_t CERROR_ILL = 1;
constexpr uint32_t INT_MAX_SEQUENCE = 0x7fffffff;  // vEVENTQ sequence numbers wrap here

// The software VCMDQ's registers (interfaces/smmu-queue.capnp, Viommu.vcmdq).
namespace vreg {
constexpr uint32_t CONFIG = rpc::VCMDQ_CONFIG, STATUS = rpc::VCMDQ_STATUS, PROD = rpc::VCMDQ_PROD,
                   CONS = rpc::VCMDQ_CONS, GERROR = rpc::VCMDQ_GERROR,
                   GERRORN = rpc::VCMDQ_GERRORN, BASE = rpc::VCMDQ_BASE;
constexpr Field CONS_ERR = smmuv3::CMDQ_CONS::ERR;   // the SMMU's CMDQ_CONS layout
}  // namespace vreg

kj::StringPtr pathName(rpc::GuestPath path) {
  switch (path) {
    case rpc::GuestPath::NATIVE: return "native";
    case rpc::GuestPath::GENERIC: return "generic";
    case rpc::GuestPath::SW_VCMDQ: return "sw_vcmdq";
  }
  return "unknown";
}

Command commandAt(capnp::Data::Reader blob, size_t i) {
  Command c;
  memcpy(&c.dw0, blob.begin() + i * ENTRY_BYTES, 8);
  memcpy(&c.dw1, blob.begin() + i * ENTRY_BYTES + 8, 8);
  return c;
}

void setResult(rpc::GuestResult::Builder out, rpc::Errno errno_, uint32_t entryNum,
               kj::StringPtr message) {
  out.setErrno(errno_);
  out.setEntryNum(entryNum);
  out.setMessage(message);
}

}  // namespace

struct GuestCounters {
  uint64_t viommus = 0;            // allocated
  uint64_t viommusRefused = 0;
  uint64_t vdevices = 0;           // added
  uint64_t guestBatches = 0;       // invalidate() / invalidateGeneric() calls and doorbells
  uint64_t guestEntries = 0;       // guest entries accepted and forwarded
  uint64_t guestRefused = 0;       // entries refused (EIO/EINVAL), each stopping its batch
  uint64_t hostCommands = 0;       // commands the guest paths handed to the host queue
  uint64_t genericDescriptors = 0; // descriptors crossing the generic interface
  GenericLoss lost;                // the generic path's lost precision
  uint64_t vcmdqDoorbells = 0;
  uint64_t vcmdqErrors = 0;        // entries that stopped a VCMDQ with CERROR_ILL
  uint64_t vcmdqBadBase = 0;       // enables refused: the ring is not mapped in stage 2
  uint64_t veventsQueued = 0;
  uint64_t veventsLost = 0;        // dropped because a vEVENTQ was full
};

class ViommuServer;

struct GuestSide::Impl {
  Impl(HostQueue& host, PhysMem& mem, rpc::GuestPath path) : host(host), mem(mem), path(path) {}

  HostQueue& host;
  PhysMem& mem;
  rpc::GuestPath path;
  GuestCounters counters;
  kj::HashMap<uint32_t, ViommuServer*> boundSids;  // physical SID -> the vIOMMU holding it
  kj::Vector<ViommuServer*> viommus;                // live ones

  // Forwards guest-caused commands; counts them.
  kj::Promise<SubmitOutcome> forward(kj::Vector<Command>&& commands) {
    counters.hostCommands += commands.size();
    // A SYNC per batch, as the guest paths were built (Linux's vIOMMU chunks: facts 3.4).
    return host.submit(commands.releaseAsArray(), SyncPolicy::PER_BATCH);
  }
};

// ======================================================================================
// The software virtual command queue

class VcmdqServer final : public rpc::Mmio::Server {
public:
  VcmdqServer(ViommuServer& owner, unsigned log2Max) : owner(&owner), log2Max(log2Max) {}

  void orphan() { owner = nullptr; }

  kj::Promise<void> read(ReadContext context) override {
    auto p = context.getParams();
    context.getResults().setValue(readRegister(p.getOffset(), p.getSize()));
    return kj::READY_NOW;
  }

  kj::Promise<void> write(WriteContext context) override {
    auto p = context.getParams();
    return writeRegister(p.getOffset(), p.getValue(), p.getSize());
  }

  kj::Promise<void> batch(BatchContext context) override {
    auto accesses = context.getParams().getAccesses();
    auto values = kj::heapArray<uint64_t>(accesses.size());
    auto loop = kj::evalLater([] {});
    for (uint i = 0; i < accesses.size(); i++) {
      loop = loop.then([this, access = accesses[i], &value = values[i]]() -> kj::Promise<void> {
        if (!access.getWrite()) {
          value = readRegister(access.getOffset(), access.getSize());
          return kj::READY_NOW;
        }
        value = 0;
        return writeRegister(access.getOffset(), access.getValue(), access.getSize());
      });
    }
    return loop.then([context, values = kj::mv(values)]() mutable {
      auto out = context.getResults().initValues(values.size());
      for (uint i = 0; i < values.size(); i++) out.set(i, values[i]);
    });
  }

private:
  uint64_t readRegister(uint32_t offset, uint8_t size) {
    if (size == 8 && offset == vreg::BASE) return base;
    if (size != 4) return 0;
    switch (offset) {
      case vreg::CONFIG: return config;
      case vreg::STATUS: return enabled ? 1 : 0;
      case vreg::PROD: return prod;
      case vreg::CONS: return cons;
      case vreg::GERROR: return gerror;
      case vreg::GERRORN: return gerrorn;
      case vreg::BASE: return uint32_t(base);
      case vreg::BASE + 4: return uint32_t(base >> 32);
    }
    return 0;
  }

  kj::Promise<void> writeRegister(uint32_t offset, uint64_t value, uint8_t size);
  kj::Promise<void> enable();
  kj::Promise<void> doorbell();
  kj::Promise<void> consume();

  uint32_t entries() const { return 1u << log2Size; }
  uint32_t indexOf(uint32_t p) const { return p & (entries() - 1); }
  uint32_t wrapOf(uint32_t p) const { return p & entries(); }
  uint32_t advance(uint32_t p) const { return (p + 1) & (2 * entries() - 1); }
  bool empty() const { return indexOf(cons) == indexOf(prod) && wrapOf(cons) == wrapOf(prod); }
  bool errorActive() const { return ((gerror ^ gerrorn) & 1) != 0; }
  Command entryAt(uint32_t index) const;

  ViommuServer* owner;          // null once the vIOMMU is gone: the registers stay, nothing runs
  unsigned log2Max;             // the largest ring accepted (the SMMU's IDR1.CMDQS)
  uint32_t config = 0;
  bool enabled = false;
  uint32_t prod = 0, cons = 0;  // index | wrap (CONS also carries ERR)
  uint32_t gerror = 0, gerrorn = 0;
  uint64_t base = 0;
  unsigned log2Size = 0;
  kj::Vector<uint64_t> ringPages;  // PA of each 4 KiB page of the ring, from stage 2
  kj::Promise<void> tail = kj::READY_NOW;  // doorbells are served one at a time
};

// ======================================================================================
// The vIOMMU

class ViommuServer final : public rpc::Viommu::Server, public VmasterSink {
public:
  ViommuServer(GuestSide::Impl& side, rpc::Domain::Client s2, uint16_t vmid, uint32_t depth)
      : side(&side), s2(kj::mv(s2)), vmid(vmid), depth(depth) {
    side.viommus.add(this);
    lookup = [this](uint64_t vsid) -> kj::Maybe<uint32_t> {
      KJ_IF_MAYBE(sid, vdevices.find(vsid)) { return *sid; }
      return nullptr;
    };
  }

  ~ViommuServer() noexcept(false) {
    KJ_IF_MAYBE(q, vcmdqServer) { (*q)->orphan(); }
    if (side != nullptr) {
      for (auto& entry : vdevices) unbind(entry.value);
      auto& live = side->viommus;
      for (size_t i = 0; i < live.size(); i++) {
        if (live[i] == this) {
          live[i] = live.back();
          live.removeLast();
          break;
        }
      }
    }
  }

  // The component is shutting down: the host queue is going away.
  void orphan() {
    for (auto& entry : vdevices) side->host.clearVmaster(entry.value);
    side = nullptr;
  }

  rpc::Domain::Client& stage2() { return s2; }
  uint16_t vmidOf() const { return vmid; }
  VsidLookup& vsidLookup() { return lookup; }
  GuestRules guestRules() {
    // The fields a guest command may set follow the physical SMMU's ID registers.
    const SmmuCaps& caps = sideOrThrow().host.caps();
    GuestRules r;
    r.ril = caps.ril;
    r.ats = caps.ats;
    r.asid16 = caps.asid16;
    r.ssidBits = caps.ssidBits;
    return r;
  }
  GuestSide::Impl& sideOrThrow() {
    KJ_REQUIRE(side != nullptr, "the smmu_queue serving this vIOMMU has shut down");
    return *side;
  }

  // implements VmasterSink --------------------------------------------------------------
  void stage1Event(const EventRecord& record) override {
    uint32_t sid = smmuv3::evt::EVT_0_SID.get(record.dw[0]);
    uint64_t vsid = 0;
    KJ_IF_MAYBE(v, sidToVsid.find(sid)) { vsid = *v; } else { return; }
    if (queuedRecords >= depth) {
      // Full: the record is lost. The loss marker (a header with IOMMU_VEVENTQ_FLAG_LOST_EVENTS
      // and no payload, facts 5.3 IOMMU_VEVENTQ_ALLOC) goes to the tail at once, taking a
      // sequence number, unless one is already the tail; lost records take none.
      sideOrThrow().counters.veventsLost++;
      if (!lostMarkerQueued) {
        Vevent marker;
        marker.sequence = takeSequence();
        marker.lost = true;
        marker.marker = true;
        eventq.push_back(marker);
        lostMarkerQueued = true;
      }
      return;
    }
    Vevent e;
    e.sequence = takeSequence();
    e.record = record;
    e.record.dw[0] = smmuv3::evt::EVT_0_SID.with(record.dw[0], vsid);
    eventq.push_back(e);
    queuedRecords++;
    // A marker stays where the loss happened: the next record goes after it, and a later
    // overflow queues a new one.
    lostMarkerQueued = false;
    sideOrThrow().counters.veventsQueued++;
  }

  // implements rpc::Viommu ----------------------------------------------------------------
  kj::Promise<void> info(InfoContext context) override {
    auto& s = sideOrThrow();
    auto out = context.getResults().initInfo();
    out.setVmid(vmid);
    out.setSmmu(s.host.info().getSmmu());
    out.setGuestPath(s.path);
    out.setEventqDepth(depth);
    auto list = out.initVdevices(vdevices.size());
    uint i = 0;
    for (auto& entry : vdevices) {
      list[i].setVsid(entry.key);
      list[i].setSid(entry.value);
      i++;
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> addVdevice(AddVdeviceContext context) override {
    auto& s = sideOrThrow();
    auto p = context.getParams();
    auto out = context.getResults();
    uint64_t vsid = p.getVsid();
    uint32_t sid = p.getSid();
    auto fail = [&](rpc::Errno e, kj::String message) {
      out.setErrno(e);
      out.setMessage(message);
    };
    if (vsid > 0xffffffffu) {
      fail(rpc::Errno::E_INVAL, kj::str("vSID 0x", kj::hex(vsid), " does not fit a StreamID"));
    } else if (s.host.caps().sidBits < 32 && sid >= (uint64_t(1) << s.host.caps().sidBits)) {
      fail(rpc::Errno::E_INVAL, kj::str("SID 0x", kj::hex(sid), " is beyond the SMMU's ",
                                        s.host.caps().sidBits, "-bit StreamIDs"));
    } else if (vdevices.find(vsid) != nullptr) {
      fail(rpc::Errno::E_EXIST, kj::str("vSID 0x", kj::hex(vsid), " already has a vDEVICE"));
    } else if (s.boundSids.find(sid) != nullptr) {
      fail(rpc::Errno::E_EXIST, kj::str("the device with SID 0x", kj::hex(sid),
                                        " already has a vDEVICE"));
    } else {
      vdevices.insert(vsid, sid);
      sidToVsid.insert(sid, vsid);
      s.boundSids.insert(sid, this);
      s.host.setVmaster(sid, *this);
      s.counters.vdevices++;
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> removeVdevice(RemoveVdeviceContext context) override {
    sideOrThrow();
    uint64_t vsid = context.getParams().getVsid();
    KJ_IF_MAYBE(sid, vdevices.find(vsid)) {
      unbind(*sid);
      vdevices.erase(vsid);
    } else {
      context.getResults().setErrno(rpc::Errno::E_NO_ENT);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> invalidate(InvalidateContext context) override {
    auto& s = sideOrThrow();
    auto blob = context.getParams().getCommands();
    auto out = context.getResults().initResult();
    if (blob.size() % ENTRY_BYTES != 0) {
      setResult(out, rpc::Errno::E_INVAL, 0,
                kj::str("the command blob is ", blob.size(), " bytes, not a multiple of 16"));
      return kj::READY_NOW;
    }
    size_t n = blob.size() / ENTRY_BYTES;
    if (n == 0) return kj::READY_NOW;  // a probe: the data type is supported
    s.counters.guestBatches++;
    if (s.path == rpc::GuestPath::GENERIC) return invalidateThroughGeneric(blob, n, context);

    // native, and sw_vcmdq's trapped main queue (the commands outside the VCMDQ subset).
    kj::Vector<Command> commands(n);
    kj::Maybe<Refusal> refusal;
    const GuestRules rules = guestRules();
    for (size_t i = 0; i < n; i++) {
      auto converted = convertNative(commandAt(blob, i), vmid, lookup, rules);
      if (converted.is<Refusal>()) {
        refusal = kj::mv(converted.get<Refusal>());
        break;
      }
      commands.add(converted.get<Command>());
    }
    return finish(kj::mv(commands), kj::mv(refusal), nullptr, context.getResults());
  }

  kj::Promise<void> invalidateGeneric(InvalidateGenericContext context) override {
    auto& s = sideOrThrow();
    auto entries = context.getParams().getEntries();
    auto out = context.getResults().initResult();
    if (s.path != rpc::GuestPath::GENERIC) {
      setResult(out, rpc::Errno::E_OP_NOT_SUPP, 0,
                kj::str("generic invalidation descriptors need guest_path = generic (this "
                        "vIOMMU's is ", pathName(s.path), ")"));
      return kj::READY_NOW;
    }
    s.counters.genericDescriptors += entries.size();
    kj::Vector<Command> commands;
    kj::Vector<uint32_t> firstCommand(entries.size());  // entry i's first command
    kj::Maybe<Refusal> refusal;
    for (auto entry : entries) {
      firstCommand.add(commands.size());
      KJ_IF_MAYBE(r, encodeGeneric(entry, vmid, s.host.caps().ril, lookup, commands)) {
        firstCommand.removeLast();
        refusal = kj::mv(*r);
        break;
      }
    }
    return finish(kj::mv(commands), kj::mv(refusal), kj::mv(firstCommand), context.getResults());
  }

  kj::Promise<void> vcmdq(VcmdqContext context) override;

  kj::Promise<void> readEvents(ReadEventsContext context) override {
    auto& s = sideOrThrow();
    return s.host.drainEvents().then([this, context](HostQueue::Drained) mutable {
      uint32_t max = context.getParams().getMax();
      size_t n = kj::min(size_t(max), eventq.size());
      auto list = context.getResults().initRecords(n);
      for (size_t i = 0; i < n; i++) {
        const Vevent& e = eventq.front();
        auto r = list[i];
        r.setSequence(e.sequence);
        r.setLostEvents(e.lost);
        if (!e.marker) {
          auto raw = r.initRaw(4);
          for (uint w = 0; w < 4; w++) raw.set(w, e.record.dw[w]);
          decodeEvent(e.record, r.initFault());
          queuedRecords--;
        }
        eventq.pop_front();
        if (eventq.empty()) lostMarkerQueued = false;
      }
    });
  }

private:
  struct Vevent {
    uint32_t sequence = 0;
    bool lost = false;     // LOST_EVENTS: this is the loss marker
    bool marker = false;   // no payload
    EventRecord record = {};
  };

  uint32_t takeSequence() {
    uint32_t sequence = nextSequence;
    nextSequence = nextSequence == INT_MAX_SEQUENCE ? 0 : nextSequence + 1;
    return sequence;
  }

  void unbind(uint32_t sid) {
    sidToVsid.erase(sid);
    if (side != nullptr) {
      side->boundSids.erase(sid);
      side->host.clearVmaster(sid);
    }
  }

  // The generic path's guest half: raw commands -> descriptors, carried through the generic
  // interface (this vIOMMU's own capability) to its host half.
  template <typename Context>
  kj::Promise<void> invalidateThroughGeneric(capnp::Data::Reader blob, size_t n,
                                             Context& context) {
    auto& s = sideOrThrow();
    auto request = thisCap().invalidateGenericRequest(capnp::MessageSize{8 + n * 10, 0});
    auto entries = request.initEntries(n);
    size_t decoded = 0;
    kj::Maybe<Refusal> refusal;
    const GuestRules rules = guestRules();
    for (; decoded < n; decoded++) {
      KJ_IF_MAYBE(r, decodeGeneric(commandAt(blob, decoded), entries[decoded], s.counters.lost,
                                   rules)) {
        refusal = kj::mv(*r);
        break;
      }
    }
    if (decoded < n) {
      // Send only what decoded: the same list, cut after the last good descriptor.
      auto orphan = request.disownEntries();
      orphan.truncate(decoded);
      request.adoptEntries(kj::mv(orphan));
    }
    if (decoded == 0) {
      KJ_IF_MAYBE(r, refusal) {
        s.counters.guestRefused++;
        setResult(context.getResults().initResult(), r->errno_, 0, r->message);
      }
      return kj::READY_NOW;
    }
    return request.send().then(
        [this, context, refusal = kj::mv(refusal)](auto&& response) mutable {
          auto result = response.getResult();
          auto out = context.getResults().initResult();
          if (result.getErrno() != rpc::Errno::OK) {
            out.setErrno(result.getErrno());
            out.setEntryNum(result.getEntryNum());
            out.setMessage(result.getMessage());
            return;
          }
          KJ_IF_MAYBE(r, refusal) {
            if (side != nullptr) side->counters.guestRefused++;
            setResult(out, r->errno_, result.getEntryNum(), r->message);
          } else {
            out.setEntryNum(result.getEntryNum());
          }
        });
  }

  // Forwards converted commands and writes IOMMU_HWPT_INVALIDATE's outcome: `entryNum` counts
  // entries handled before the first failure — a refusal found while converting, or a command
  // the SMMU refused (CERROR_ILL) or a SYNC that timed out. `firstCommand[i]` maps entries to
  // commands when an entry became several commands (generic); null when it is one to one.
  template <typename Results>
  kj::Promise<void> finish(kj::Vector<Command>&& commands, kj::Maybe<Refusal>&& refusal,
                           kj::Maybe<kj::Vector<uint32_t>> firstCommand, Results results) {
    auto& s = sideOrThrow();
    size_t entries = commands.size();
    KJ_IF_MAYBE(map, firstCommand) { entries = map->size(); }
    auto report = [this, results, entries](kj::Maybe<Refusal>& refusal,
                                           kj::Maybe<kj::Vector<uint32_t>>& firstCommand,
                                           const SubmitOutcome* outcome) mutable {
      auto out = results.initResult();
      auto entryOf = [&](uint32_t command) -> uint32_t {
        KJ_IF_MAYBE(map, firstCommand) {
          uint32_t e = 0;
          while (e + 1 < map->size() && (*map)[e + 1] <= command) e++;
          return e;
        }
        return command;
      };
      if (outcome != nullptr && outcome->errno_ != rpc::Errno::OK) {
        uint32_t failedAt = outcome->illegal.size() > 0 ? outcome->illegal[0] : outcome->executed;
        setResult(out, outcome->errno_, entryOf(failedAt),
                  kj::str("host queue: ", outcome->message));
        if (side != nullptr) side->counters.guestRefused++;
        return;
      }
      if (side != nullptr) side->counters.guestEntries += entries;
      KJ_IF_MAYBE(r, refusal) {
        if (side != nullptr) side->counters.guestRefused++;
        setResult(out, r->errno_, entries, r->message);
      } else {
        out.setEntryNum(entries);
      }
    };
    if (commands.empty()) {
      report(refusal, firstCommand, nullptr);
      return kj::READY_NOW;
    }
    return s.forward(kj::mv(commands))
        .then([report = kj::mv(report), refusal = kj::mv(refusal),
               firstCommand = kj::mv(firstCommand)](SubmitOutcome&& outcome) mutable {
          report(refusal, firstCommand, &outcome);
        });
  }

  GuestSide::Impl* side;
  rpc::Domain::Client s2;
  uint16_t vmid;
  uint32_t depth;
  kj::TreeMap<uint64_t, uint32_t> vdevices;   // vSID -> SID, sorted for info()
  kj::HashMap<uint32_t, uint64_t> sidToVsid;
  VsidLookup lookup;
  std::deque<Vevent> eventq;
  uint32_t nextSequence = 0;
  bool lostMarkerQueued = false;  // the queue's tail is a loss marker
  uint32_t queuedRecords = 0;     // records in `eventq`, markers not counted (the depth bound)
  kj::Maybe<VcmdqServer*> vcmdqServer;
  kj::Maybe<rpc::Mmio::Client> vcmdqCap;

  friend class VcmdqServer;
};

kj::Promise<void> ViommuServer::vcmdq(VcmdqContext context) {
  auto& s = sideOrThrow();
  auto out = context.getResults();
  if (s.path != rpc::GuestPath::SW_VCMDQ) {
    out.setErrno(rpc::Errno::E_OP_NOT_SUPP);
    return kj::READY_NOW;
  }
  KJ_IF_MAYBE(cap, vcmdqCap) {
    out.setQueue(*cap);
    return kj::READY_NOW;
  }
  auto server = kj::heap<VcmdqServer>(*this, s.host.caps().cmdqLog2Max);
  vcmdqServer = server.get();
  rpc::Mmio::Client cap = kj::mv(server);
  out.setQueue(cap);
  vcmdqCap = kj::mv(cap);
  return kj::READY_NOW;
}

// ======================================================================================
// VCMDQ behaviour

kj::Promise<void> VcmdqServer::writeRegister(uint32_t offset, uint64_t value, uint8_t size) {
  if (size == 8 && offset == vreg::BASE) {
    if (!enabled) base = value;
    return kj::READY_NOW;
  }
  if (size != 4) return kj::READY_NOW;
  uint32_t v = uint32_t(value);
  switch (offset) {
    case vreg::CONFIG: {
      bool wasOn = (config & 1) != 0;
      config = v & 1;
      if (!wasOn && (config & 1)) return enable();
      if (wasOn && !(config & 1)) {
        enabled = false;
        ringPages.clear();
      }
      return kj::READY_NOW;
    }
    case vreg::PROD: {
      uint32_t mask = enabled ? 2 * entries() - 1 : 0xffffffffu;
      prod = v & mask;
      if (owner != nullptr && enabled) owner->sideOrThrow().counters.vcmdqDoorbells++;
      return doorbell();
    }
    case vreg::GERRORN:
      gerrorn = v & 1;
      if (!errorActive()) {
        cons = vreg::CONS_ERR.with(cons, 0);
        return doorbell();  // resume at CONS
      }
      return kj::READY_NOW;
    case vreg::BASE:
      if (!enabled) base = (base & ~uint64_t(0xffffffff)) | v;
      return kj::READY_NOW;
    case vreg::BASE + 4:
      if (!enabled) base = (base & 0xffffffff) | (uint64_t(v) << 32);
      return kj::READY_NOW;
  }
  return kj::READY_NOW;  // CONS, STATUS, GERROR and unknown offsets are read-only
}

kj::Promise<void> VcmdqServer::enable() {
  if (owner == nullptr) return kj::READY_NOW;
  unsigned requested = smmuv3::Q_BASE::LOG2SIZE.get(base);
  uint64_t gpa = base & smmuv3::Q_BASE::ADDR.mask();
  auto& side = owner->sideOrThrow();
  if (requested == 0 || requested > log2Max ||
      !isAligned(gpa, kj::max(uint64_t(ENTRY_BYTES) << requested, PAGE))) {
    // A ring must be a power of two of at least 2 entries, within the SMMU's CMDQS, and
    // aligned to its size (and to a page): otherwise the queue does not come up.
    side.counters.vcmdqBadBase++;
    return kj::READY_NOW;
  }
  log2Size = requested;
  uint64_t bytes = kj::max(uint64_t(ENTRY_BYTES) << log2Size, PAGE);
  auto pages = kj::heapArrayBuilder<kj::Promise<kj::Maybe<uint64_t>>>(bytes / PAGE);
  for (uint64_t i = 0; i < bytes / PAGE; i++) {
    auto request = owner->stage2().iovaToPhysRequest();
    request.setIova(gpa + i * PAGE);
    pages.add(request.send().then([](auto&& r) -> kj::Maybe<uint64_t> {
      if (r.getErrno() != rpc::Errno::OK) return nullptr;
      return r.getPa();
    }));
  }
  return kj::joinPromises(pages.finish()).then([this](kj::Array<kj::Maybe<uint64_t>> pas) {
    if (owner == nullptr) return;
    kj::Vector<uint64_t> resolved(pas.size());
    for (auto& pa : pas) {
      KJ_IF_MAYBE(p, pa) { resolved.add(*p); } else {
        owner->sideOrThrow().counters.vcmdqBadBase++;
        return;
      }
    }
    ringPages = kj::mv(resolved);
    prod = cons = 0;
    enabled = true;
  });
}

Command VcmdqServer::entryAt(uint32_t index) const {
  uint64_t offset = uint64_t(index) * ENTRY_BYTES;
  uint64_t pa = ringPages[offset / PAGE] + offset % PAGE;
  auto& mem = owner->side->mem;
  return Command{mem.load64(pa), mem.load64(pa + 8)};
}

kj::Promise<void> VcmdqServer::doorbell() {
  // Runs the queue (after a PROD write, or resuming after an acknowledged error).
  if (owner == nullptr || !enabled) return kj::READY_NOW;
  auto run = tail.then([this]() { return consume(); }).fork();
  tail = run.addBranch();
  return run.addBranch();
}

kj::Promise<void> VcmdqServer::consume() {
  // Reads entries from CONS up to PROD: accepted ones are rewritten and handed to the host
  // queue as one submission (which puts a CMD_SYNC after every batch and waits for the last);
  // the guest's own SYNCs need no command of their own, since the doorbell returns only once
  // everything before PROD completed. An entry outside the subset stops the queue there with
  // CONS.ERR = CERROR_ILL, after the entries before it were forwarded.
  if (owner == nullptr || !enabled || errorActive()) return kj::READY_NOW;
  auto& side = owner->sideOrThrow();
  kj::Vector<Command> batch;
  kj::Vector<uint32_t> positions;  // the CONS value of each collected entry
  bool stop = false;
  while (!empty()) {
    Command entry = entryAt(indexOf(cons));
    auto converted = convertVcmdq(entry, owner->vmidOf(), owner->vsidLookup(),
                                  owner->guestRules());
    if (converted.is<Refusal>()) {
      side.counters.vcmdqErrors++;
      side.counters.guestRefused++;
      stop = true;
      break;
    }
    Command c = converted.get<Command>();
    if (opcodeOf(c) != uint8_t(smmuv3::Opcode::SYNC)) {
      batch.add(c);
      positions.add(cons);
    }
    cons = advance(cons);
  }
  auto raise = [this]() {
    cons = vreg::CONS_ERR.with(cons, CERROR_ILL);
    gerror ^= 1;
  };
  if (batch.empty()) {
    if (stop) raise();
    return kj::READY_NOW;
  }
  side.counters.guestBatches++;
  side.counters.guestEntries += batch.size();
  return side.forward(kj::mv(batch))
      .then([this, stop, raise, positions = kj::mv(positions)](SubmitOutcome&& outcome) mutable
            -> kj::Promise<void> {
        if (owner == nullptr) return kj::READY_NOW;
        if (outcome.errno_ != rpc::Errno::OK) {
          // The SMMU refused a rewritten entry (e.g. reserved bits): CONS stops at it.
          uint32_t at = outcome.illegal.size() > 0 ? outcome.illegal[0] : outcome.executed;
          if (at < positions.size()) cons = positions[at];
          owner->sideOrThrow().counters.vcmdqErrors++;
          raise();
          return kj::READY_NOW;
        }
        if (stop) raise();
        return kj::READY_NOW;
      });
}

// ======================================================================================
// GuestSide

GuestSide::GuestSide(HostQueue& host, PhysMem& mem, rpc::GuestPath path)
    : impl(kj::heap<Impl>(host, mem, path)) {}

GuestSide::~GuestSide() noexcept(false) {
  for (auto* v : impl->viommus) v->orphan();
}

kj::Promise<void> GuestSide::allocViommu(capnp::CallContext<rpc::SmmuQueue::AllocViommuParams, rpc::SmmuQueue::AllocViommuResults> context) {
  auto params = context.getParams();
  auto domain = params.getS2Domain();
  uint32_t depth = params.getEventqDepth();
  return domain.infoRequest().send().then(
      [this, context, domain, depth](auto&& response) mutable {
        auto info = response.getInfo();
        auto out = context.getResults();
        auto refuse = [&](rpc::Errno e, kj::String message) {
          impl->counters.viommusRefused++;
          out.setErrno(e);
          out.setMessage(message);
        };
        kj::StringPtr smmu = impl->host.info().getSmmu();
        if (!impl->host.caps().nesting) {
          refuse(rpc::Errno::E_OP_NOT_SUPP,
                 kj::str("SMMU '", smmu, "' cannot nest (IDR0 lacks S1P or S2P)"));
        } else if (info.getKind() != rpc::DomainKind::STAGE2 || !info.getNestParent()) {
          refuse(rpc::Errno::E_INVAL, kj::str("domain ", info.getId(),
                                              " is not a nest-parent stage-2 domain"));
        } else if (info.getSmmu() != smmu) {
          refuse(rpc::Errno::E_INVAL,
                 kj::str("domain ", info.getId(), " was finalised for SMMU '", info.getSmmu(),
                         "', not '", smmu, "'"));
        } else if (depth == 0) {
          refuse(rpc::Errno::E_INVAL, kj::str("a vEVENTQ needs a depth of at least 1"));
        } else {
          impl->counters.viommus++;
          out.setViommu(kj::heap<ViommuServer>(*impl, kj::mv(domain), info.getVmid(), depth));
        }
      });
}

void GuestSide::stats(kj::Vector<Stat>& out) {
  auto& c = impl->counters;
  auto add = [&](kj::StringPtr name, uint64_t value) { out.add(Stat{kj::str(name), value}); };
  add("viommus", c.viommus);
  add("viommus_live", impl->viommus.size());
  add("viommus_refused", c.viommusRefused);
  add("vdevices", c.vdevices);
  add("guest_batches", c.guestBatches);
  add("guest_entries", c.guestEntries);
  add("guest_refused", c.guestRefused);
  add("guest_host_commands", c.hostCommands);
  add("generic_descriptors", c.genericDescriptors);
  add("lost_precision_ttl", c.lost.ttl);
  add("lost_precision_vaa", c.lost.vaa);
  add("lost_precision_atc_ssid", c.lost.atcSsid);
  add("lost_precision_cd_ssid", c.lost.cdSsid);
  add("vcmdq_doorbells", c.vcmdqDoorbells);
  add("vcmdq_errors", c.vcmdqErrors);
  add("vcmdq_bad_base", c.vcmdqBadBase);
  add("vevents_queued", c.veventsQueued);
  add("vevents_lost", c.veventsLost);
}

}  // namespace nb::smmuq
