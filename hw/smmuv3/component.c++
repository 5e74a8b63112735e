// hw/smmuv3: the SMMU model's RPC face and registry entry. See component.h.
//
// One `SmmuState` (refcounted) holds the model, shared by the main capability and the MMIO-only
// facet that `mmio()` hands out. Interrupts the model raises synchronously (inside an MMIO write
// or a translation) are sent to subscribers from a TaskSet; while a call to a sink is in
// flight, further interrupts of a pending kind merge into it, as on a wired interrupt line, so a
// slow subscriber never makes the queue of calls grow without bound.

#include "hw/smmuv3/component.h"

#include "hw/smmuv3/smmuv3.h"
#include "interfaces/smmuv3.capnp.h"

#include <string.h>
#include <toml++/toml.h>

namespace nb::smmu {

namespace {

// The modeled cost class of consuming one command, by its opcode's name.
Cost commandCost(uint8_t opcode) {
  kj::StringPtr name = opcodeName(opcode);
  if (name.startsWith("TLBI_")) return Cost::SMMU_CMD_TLBI;
  if (name.startsWith("CFGI_")) return Cost::SMMU_CMD_CFGI;
  if (name.startsWith("ATC_")) return Cost::SMMU_CMD_ATC;
  if (name == "CMD_SYNC" || name == "SYNC") return Cost::SMMU_CMD_SYNC;
  return Cost::SMMU_CMD_OTHER;
}

// ======================================================================================
// Events as data

rpc::EventType eventTypeOf(EventId id) {
  switch (id) {
    case EventId::F_UUT:
      return rpc::EventType::F_UUT;
    case EventId::C_BAD_STREAMID:
      return rpc::EventType::C_BAD_STREAMID;
    case EventId::F_STE_FETCH:
      return rpc::EventType::F_STE_FETCH;
    case EventId::C_BAD_STE:
      return rpc::EventType::C_BAD_STE;
    case EventId::F_BAD_ATS_TREQ:
      return rpc::EventType::F_BAD_ATS_TREQ;
    case EventId::F_STREAM_DISABLED:
      return rpc::EventType::F_STREAM_DISABLED;
    case EventId::F_TRANSL_FORBIDDEN:
      return rpc::EventType::F_TRANSL_FORBIDDEN;
    case EventId::C_BAD_SUBSTREAMID:
      return rpc::EventType::C_BAD_SUBSTREAMID;
    case EventId::F_CD_FETCH:
      return rpc::EventType::F_CD_FETCH;
    case EventId::C_BAD_CD:
      return rpc::EventType::C_BAD_CD;
    case EventId::F_WALK_EABT:
      return rpc::EventType::F_WALK_EABT;
    case EventId::F_TRANSLATION:
      return rpc::EventType::F_TRANSLATION;
    case EventId::F_ADDR_SIZE:
      return rpc::EventType::F_ADDR_SIZE;
    case EventId::F_ACCESS:
      return rpc::EventType::F_ACCESS;
    case EventId::F_PERMISSION:
      return rpc::EventType::F_PERMISSION;
    case EventId::F_TLB_CONFLICT:
      return rpc::EventType::F_TLB_CONFLICT;
    case EventId::F_CFG_CONFLICT:
      return rpc::EventType::F_CFG_CONFLICT;
    case EventId::E_PAGE_REQUEST:
      return rpc::EventType::E_PAGE_REQUEST;
    case EventId::F_VMS_FETCH:
      return rpc::EventType::F_VMS_FETCH;
  }
  return rpc::EventType::UNKNOWN;  // an ID outside facts 3.1
}

void fillFault(rpc::Fault::Builder out, const EventRecord& record) {
  Event e = decodeEventRecord(record);
  out.setType(eventTypeOf(record.id()));
  out.setId(uint8_t(record.id()));
  out.setSid(e.sid);
  out.setSsv(e.ssv);
  out.setSsid(e.ssid);
  out.setInputAddr(e.inputAddr);
  out.setIpa(e.ipa);
  out.setS2(e.s2);
  out.setClass(rpc::FaultClass(uint16_t(e.cls)));
  out.setRnw(e.rnw);
  out.setInd(e.ind);
  out.setPnu(e.pnu);
  out.setTtrnw(e.ttRnW);
  out.setStall(e.stall);
  out.setStag(e.stag);
  out.setFetchAddr(e.fetchAddr);
  auto raw = out.initRaw(4);
  for (unsigned i = 0; i < 4; i++) raw.set(i, record.dw[i]);
}

Transaction transactionFrom(rpc::Transaction::Reader t) {
  Transaction out;
  out.sid = t.getSid();
  if (t.isSsid()) out.ssid = t.getSsid();
  out.iova = t.getIova();
  out.write = t.getWrite();
  out.priv = t.getPriv();
  out.exec = t.getExec();
  return out;
}

void fillResult(rpc::TranslateResult::Builder out, const TranslateResult& result) {
  KJ_SWITCH_ONEOF(result) {
    KJ_CASE_ONEOF(ok, TranslateOk) {
      auto o = out.initOk();
      o.setPa(ok.pa);
      o.setLeafSize(ok.leafSize);
    }
    KJ_CASE_ONEOF(record, EventRecord) { fillFault(out.initFault(), record); }
    KJ_CASE_ONEOF(abort, TranslateAbort) {
      out.setAborted(abort.cause == AbortCause::GBPA_ABORT ? rpc::AbortCause::GBPA
                                                           : rpc::AbortCause::STE);
    }
    KJ_CASE_ONEOF(razWi, TranslateRazWi) { fillFault(out.initRazWi(), razWi.record); }
  }
}

// "iotlb.hits" -> "iotlb_hits", "cmdq.op.TLBI_NH_VA" -> "cmdq_op_tlbi_nh_va": component counter
// names are snake_case (interfaces/common.capnp Counter).
kj::String snakeCase(kj::StringPtr name) {
  auto out = kj::heapString(name);
  for (char& c : out) {
    if (c == '.')
      c = '_';
    else if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
  }
  return out;
}

// ======================================================================================
// Shared state: the model and its interrupt subscribers

class SmmuState final : public kj::Refcounted, private kj::TaskSet::ErrorHandler {
public:
  SmmuState(kj::StringPtr name, PhysMem& mem, Features features, ModeledClock& clock)
      : name(kj::heapString(name)),
        clock(clock),
        tasks(*this),
        model(mem, features, [this](Irq irq) { raise(irq); }) {}

  kj::String name;
  ModeledClock& clock;
  // This SMMU's own timeline (system/runtime/modeled-time.h): when it will have consumed every
  // command published so far.
  uint64_t cmdqBusyUntil = 0;
  // The command counters already on that timeline (no per-write copy of them).
  uint64_t accountedConsumed = 0;
  uint64_t accountedByOpcode[256] = {};

  struct Subscriber {
    uint64_t id;
    rpc::IrqSink::Client sink;
    bool inFlight = false;
    uint8_t pending = 0;  // bit per Irq kind
  };
  kj::Vector<Subscriber> subscribers;
  uint64_t nextSubscriberId = 1;

  struct Counters {
    uint64_t raised[3] = {0, 0, 0};  // by Irq kind
    uint64_t delivered = 0;
    uint64_t merged = 0;
    uint64_t sinkFailures = 0;
    uint64_t mmioReads = 0;
    uint64_t mmioWrites = 0;
  } counters;

  kj::TaskSet tasks;  // after `subscribers`: destroyed first, so no delivery outlives them
  Smmuv3 model;       // last: its interrupt callback uses everything above

  uint64_t subscribe(rpc::IrqSink::Client sink) {
    uint64_t id = nextSubscriberId++;
    subscribers.add(Subscriber{id, kj::mv(sink)});
    return id;
  }

  void unsubscribe(uint64_t id) {
    for (auto i : kj::indices(subscribers)) {
      if (subscribers[i].id == id) {
        for (size_t j = i; j + 1 < subscribers.size(); j++) {
          subscribers[j] = kj::mv(subscribers[j + 1]);
        }
        subscribers.removeLast();
        return;
      }
    }
  }

  uint64_t mmioRead(uint32_t offset, unsigned size) {
    counters.mmioReads++;
    clock.charge(Cost::MMIO_READ);
    // Software sees CMDQ_CONS move only as the SMMU gets there: a read of it joins the SMMU's
    // timeline (a SYNC waiter polling CONS resumes when the SYNC completes).
    if (offset == CMDQ_CONS::OFFSET) clock.joinAt(cmdqBusyUntil);
    return model.mmioRead(offset, size);
  }
  void mmioWrite(uint32_t offset, uint64_t value, unsigned size) {
    counters.mmioWrites++;
    clock.charge(Cost::MMIO_WRITE);
    model.mmioWrite(offset, value, size);
    const CommandStats& stats = model.commandStats();
    if (clock.enabled() && stats.consumed != accountedConsumed) {
      // Commands consumed by this write (a PROD doorbell, a CMDQ_ERR acknowledgement, CMDQEN
      // set): the SMMU starts when the write reaches it or when it finishes what it was doing,
      // if later. The counters only grow: what was accounted so far is the baseline.
      uint64_t busy = 0;
      for (unsigned op = 0; op < 256; op++) {
        uint64_t n = stats.byOpcode[op] - accountedByOpcode[op];
        if (n != 0) busy += clock.account(commandCost(uint8_t(op)), n);
        accountedByOpcode[op] = stats.byOpcode[op];
      }
      accountedConsumed = stats.consumed;
      cmdqBusyUntil = kj::max(cmdqBusyUntil, clock.now()) + busy;
    }
  }

  // A translation's work on the device's path: lookups, fetches, walk reads, event records.
  template <typename F>
  auto charged(F&& translate) {
    if (!clock.enabled()) return translate();
    auto before = model.work();
    auto result = translate();
    auto after = model.work();
    clock.charge(Cost::IOTLB_LOOKUP, after.iotlbLookups - before.iotlbLookups);
    clock.charge(Cost::CONFIG_LOOKUP, after.configLookups - before.configLookups);
    clock.charge(Cost::CONFIG_FETCH, after.configFetches - before.configFetches);
    clock.charge(Cost::WALK_READ, after.walkReads - before.walkReads);
    clock.charge(Cost::EVENT_WRITE, after.eventsWritten - before.eventsWritten);
    return result;
  }

private:
  Subscriber* find(uint64_t id) {
    for (auto& s : subscribers) {
      if (s.id == id) return &s;
    }
    return nullptr;
  }

  // Called by the model, synchronously, in the middle of an MMIO write or a translation.
  void raise(Irq irq) {
    counters.raised[unsigned(irq)]++;
    clock.charge(Cost::IRQ);
    for (auto& s : subscribers) {
      uint8_t bit = uint8_t(1u << unsigned(irq));
      if (s.pending & bit) counters.merged++;
      s.pending |= bit;
      if (!s.inFlight) send(s);
    }
  }

  void send(Subscriber& s) {
    unsigned kind = unsigned(__builtin_ctz(s.pending));
    s.pending &= uint8_t(~(1u << kind));
    s.inFlight = true;
    clock.backgroundBegin();  // until the handler has run (modeled-time.h)
    auto req = s.sink.interruptRequest(capnp::MessageSize{4, 0});
    req.setIrq(rpc::SmmuIrq(kind));
    uint64_t id = s.id;
    tasks.add(req.send().then(
        [this, id](auto&&) {
          clock.backgroundEnd();
          counters.delivered++;
          if (Subscriber* again = find(id)) {
            again->inFlight = false;
            if (again->pending != 0) send(*again);
          }
        },
        [this, id](kj::Exception&& e) {
          clock.backgroundEnd();
          // A subscriber that cannot take interrupts (gone, or broken) is dropped.
          counters.sinkFailures++;
          unsubscribe(id);
        }));
  }

  void taskFailed(kj::Exception&& exception) override {
    KJ_LOG(ERROR, "SMMU interrupt delivery failed", name, exception);
  }
};

// ======================================================================================
// The RPC servers

class SubscriptionServer final : public rpc::Subscription::Server {
public:
  SubscriptionServer(kj::Own<SmmuState> state, uint64_t id) : state(kj::mv(state)), id(id) {}
  ~SubscriptionServer() noexcept(false) { state->unsubscribe(id); }

private:
  kj::Own<SmmuState> state;
  uint64_t id;
};

// The register file, shared by the MMIO-only facet and the main capability (which extends it).
kj::Promise<void> mmioRead(
    SmmuState& s, capnp::CallContext<rpc::Mmio::ReadParams, rpc::Mmio::ReadResults> context) {
  auto p = context.getParams();
  context.getResults(capnp::MessageSize{4, 0}).setValue(s.mmioRead(p.getOffset(), p.getSize()));
  return kj::READY_NOW;
}

kj::Promise<void> mmioWrite(
    SmmuState& s, capnp::CallContext<rpc::Mmio::WriteParams, rpc::Mmio::WriteResults> context) {
  auto p = context.getParams();
  s.mmioWrite(p.getOffset(), p.getValue(), p.getSize());
  return kj::READY_NOW;
}

kj::Promise<void> mmioBatch(
    SmmuState& s, capnp::CallContext<rpc::Mmio::BatchParams, rpc::Mmio::BatchResults> context) {
  auto accesses = context.getParams().getAccesses();
  // A size hint: without one every response starts with an 8 KiB zeroed segment (TOOLCHAIN.md),
  // which dominates a doorbell's PROD write + CONS read.
  auto values = context.getResults(capnp::MessageSize{4 + accesses.size(), 0})
                    .initValues(accesses.size());
  for (auto i : kj::indices(accesses)) {
    auto a = accesses[i];
    if (a.getWrite()) {
      s.mmioWrite(a.getOffset(), a.getValue(), a.getSize());
    } else {
      values.set(i, s.mmioRead(a.getOffset(), a.getSize()));
    }
  }
  return kj::READY_NOW;
}

class MmioFacet final : public rpc::Mmio::Server {
public:
  explicit MmioFacet(kj::Own<SmmuState> state) : state(kj::mv(state)) {}

protected:
  kj::Promise<void> read(ReadContext context) override { return mmioRead(*state, context); }
  kj::Promise<void> write(WriteContext context) override { return mmioWrite(*state, context); }
  kj::Promise<void> batch(BatchContext context) override { return mmioBatch(*state, context); }

private:
  kj::Own<SmmuState> state;
};

class SmmuServer final : public rpc::Smmuv3::Server, public ComponentCore {
public:
  explicit SmmuServer(kj::Own<SmmuState> state) : state(kj::mv(state)) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<nb::Stat>& out) override {
    for (auto& s : state->model.stats()) out.add(nb::Stat{snakeCase(s.name), s.value});
    auto& c = state->counters;
    out.add(nb::Stat{kj::str("mmio_reads"), c.mmioReads});
    out.add(nb::Stat{kj::str("mmio_writes"), c.mmioWrites});
    out.add(nb::Stat{kj::str("irq_evtq"), c.raised[unsigned(Irq::EVTQ)]});
    out.add(nb::Stat{kj::str("irq_gerror"), c.raised[unsigned(Irq::GERROR)]});
    out.add(nb::Stat{kj::str("irq_cmd_sync"), c.raised[unsigned(Irq::CMD_SYNC)]});
    out.add(nb::Stat{kj::str("irq_delivered"), c.delivered});
    out.add(nb::Stat{kj::str("irq_merged"), c.merged});
    out.add(nb::Stat{kj::str("irq_subscribers"), state->subscribers.size()});
  }

  void structures(kj::Vector<StructureInfo>& out) override {
    // What software has programmed, read back through the registers as software would.
    auto& m = state->model;
    const Features& f = m.features();
    uint64_t strtabBase = m.mmioRead(STRTAB_BASE::OFFSET, 8);
    uint32_t strtabCfg = uint32_t(m.mmioRead(STRTAB_BASE_CFG::OFFSET, 4));
    if (STRTAB_BASE::ADDR.get(strtabBase) != 0) {
      auto t = decodeStreamTableConfig(strtabBase, strtabCfg, f);
      uint64_t bytes = t.twoLevel ? uint64_t(8) << (t.log2Size - kj::min(t.log2Size, t.split))
                                  : uint64_t(64) << t.log2Size;
      out.add(StructureInfo{kj::str("stream_table"), kj::heapString(state->name), t.base, bytes,
                            t.twoLevel ? kj::str("2-level log2size=", t.log2Size,
                                                 " split=", t.split, " (L1 descriptors)")
                                       : kj::str("linear log2size=", t.log2Size)});
    }
    struct Queue {
      kj::StringPtr kind;
      uint32_t baseOffset;
      uint8_t log2Max;
      unsigned entryBytes;
    };
    const Queue queues[] = {{"cmdq", CMDQ_BASE::OFFSET, f.cmdqLog2Max, 16},
                            {"evtq", EVTQ_BASE::OFFSET, f.evtqLog2Max, 32}};
    for (auto& q : queues) {
      uint64_t base = m.mmioRead(q.baseOffset, 8);
      if (Q_BASE::ADDR.get(base) == 0) continue;
      auto c = decodeQueueBase(base, q.log2Max, q.entryBytes, f.oas);
      out.add(StructureInfo{kj::heapString(q.kind), kj::heapString(state->name), c.base,
                            uint64_t(c.entries()) * q.entryBytes,
                            kj::str(c.entries(), " entries of ", q.entryBytes, " bytes")});
    }
  }

  // implements Mmio ---------------------------------------------------------------------------
protected:
  kj::Promise<void> read(ReadContext context) override { return mmioRead(*state, context); }
  kj::Promise<void> write(WriteContext context) override { return mmioWrite(*state, context); }
  kj::Promise<void> batch(BatchContext context) override { return mmioBatch(*state, context); }

  // implements Smmuv3 -------------------------------------------------------------------------
  kj::Promise<void> mmio(MmioContext context) override {
    context.getResults().setMmio(kj::heap<MmioFacet>(kj::addRef(*state)));
    return kj::READY_NOW;
  }

  kj::Promise<void> translate(TranslateContext context) override {
    auto t = transactionFrom(context.getParams());
    fillResult(context.getResults(), state->charged([&]() { return state->model.translate(t); }));
    return kj::READY_NOW;
  }

  kj::Promise<void> translateBatch(TranslateBatchContext context) override {
    auto in = context.getParams().getTransactions();
    kj::Vector<TranslateResult> results(in.size());
    for (auto t : in) {
      auto one = transactionFrom(t);
      results.add(state->charged([&]() { return state->model.translate(one); }));
      // A burst stops at its first failure; RAZ/WI completes for the device.
      if (!results.back().is<TranslateOk>() && !results.back().is<TranslateRazWi>()) break;
    }
    auto out = context.getResults().initResults(results.size());
    for (auto i : kj::indices(results)) fillResult(out[i], results[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> reset(ResetContext context) override {
    state->model.reset();
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    auto& m = state->model;
    const Features& f = m.features();
    auto info = context.getResults().initInfo();
    info.setName(state->name);
    auto idr = info.initIdr(6);
    for (unsigned i = 0; i < 6; i++) idr.set(i, uint32_t(m.mmioRead(IDR0::OFFSET + 4 * i, 4)));
    info.setIidr(uint32_t(m.mmioRead(IIDR::OFFSET, 4)));
    info.setAidr(uint32_t(m.mmioRead(AIDR::OFFSET, 4)));
    info.setMmioSize(MMIO_SIZE);
    auto out = info.initFeatures();
    out.setStage1(f.stage1);
    out.setStage2(f.stage2);
    out.setNesting(f.nesting());
    out.setRil(f.ril);
    out.setHttu(rpc::Httu(uint16_t(f.httu)));
    out.setAts(f.ats);
    out.setHyp(f.hyp);
    out.setSidBits(f.sidBits);
    out.setSsidBits(f.ssidBits);
    out.setOas(f.oas);
    out.setGran4k(f.gran4k);
    out.setGran16k(f.gran16k);
    out.setGran64k(f.gran64k);
    out.setAsid16(f.asid16);
    out.setVmid16(f.vmid16);
    out.setTwoLevelStreamTable(f.twoLevelStreamTable);
    out.setCd2l(f.cd2l);
    out.setCmdqLog2Max(f.cmdqLog2Max);
    out.setEvtqLog2Max(f.evtqLog2Max);
    out.setAttrTypesOvr(f.attrTypesOvr);
    out.setMsi(f.msi);
    out.setSev(f.sev);
    out.setIotlbEntries(f.iotlbEntries);
    out.setConfigCacheEntries(f.configCacheEntries);
    return kj::READY_NOW;
  }

  kj::Promise<void> subscribe(SubscribeContext context) override {
    uint64_t id = state->subscribe(context.getParams().getSink());
    context.getResults().setSubscription(kj::heap<SubscriptionServer>(kj::addRef(*state), id));
    return kj::READY_NOW;
  }

private:
  kj::Own<SmmuState> state;
};

// ======================================================================================
// Settings

template <int64_t LO, int64_t HI>
void checkRange(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && (*v < LO || *v > HI)) {
    errors.error(value, "", kj::str("must be between ", LO, " and ", HI, ", not ", *v));
  }
}

void checkOas(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (!v) return;
  for (int64_t ok : {32, 36, 40, 42, 44, 48, 52}) {
    if (*v == ok) return;
  }
  errors.error(value, "", kj::str("must be 32, 36, 40, 42, 44, 48 or 52 (bits), not ", *v));
}

const kj::StringPtr HTTU_CHOICES[] = {"none", "access", "access_dirty"};

constexpr int64_t MAX_CACHE_ENTRIES = int64_t(1) << 20;

Features featuresFrom(const Settings& s) {
  Features f;  // defaults
  f.stage1 = s.boolean("stage1", f.stage1);
  f.stage2 = s.boolean("stage2", f.stage2);
  f.ril = s.boolean("ril", f.ril);
  auto httu = s.string("httu", "access_dirty");
  f.httu = httu == "none" ? Httu::NONE : httu == "access" ? Httu::ACCESS : Httu::ACCESS_DIRTY;
  f.ats = s.boolean("ats", f.ats);
  f.hyp = s.boolean("hyp", f.hyp);
  f.sidBits = uint8_t(s.integer("sid_bits", f.sidBits));
  f.ssidBits = uint8_t(s.integer("ssid_bits", f.ssidBits));
  f.oas = uint8_t(s.integer("oas", f.oas));
  f.gran4k = s.boolean("gran4k", f.gran4k);
  f.gran16k = s.boolean("gran16k", f.gran16k);
  f.gran64k = s.boolean("gran64k", f.gran64k);
  f.asid16 = s.boolean("asid16", f.asid16);
  f.vmid16 = s.boolean("vmid16", f.vmid16);
  f.twoLevelStreamTable = s.boolean("two_level_stream_table", f.twoLevelStreamTable);
  f.cd2l = s.boolean("cd2l", f.cd2l);
  f.cmdqLog2Max = uint8_t(s.integer("cmdq_log2_max", f.cmdqLog2Max));
  f.evtqLog2Max = uint8_t(s.integer("evtq_log2_max", f.evtqLog2Max));
  f.attrTypesOvr = s.boolean("attr_types_ovr", f.attrTypesOvr);
  f.msi = s.boolean("msi", f.msi);
  f.sev = s.boolean("sev", f.sev);
  f.iotlbEntries = uint32_t(s.integer("iotlb_entries", f.iotlbEntries));
  f.iotlbWays = uint32_t(s.integer("iotlb_ways", f.iotlbWays));
  f.configCacheEntries = uint32_t(s.integer("config_cache_entries", f.configCacheEntries));
  return f;
}

kj::Promise<rpc::Component::Client> makeSmmu(ComponentContext& ctx) {
  // evalNow: a refused feature set becomes a rejected start, which the composer reports with
  // the instance's name.
  return kj::evalNow([&]() {
    Features features = featuresFrom(ctx.settings);
    // Combinations the architecture forbids (52-bit OAS without 64K, no stage, no granule).
    validateFeatures(features);
    auto server = kj::heap<SmmuServer>(kj::refcounted<SmmuState>(ctx.instance, ctx.mem, features, ctx.clock));
    auto& core = *server;
    rpc::Smmuv3::Client main = kj::mv(server);
    return makeComponent(ctx.type.name, capnp::typeId<rpc::Smmuv3>(), kj::mv(main), core);
  });
}

SettingSpec flag(kj::StringPtr key, kj::StringPtr doc) {
  return SettingSpec{key, SettingType::BOOLEAN, false, nullptr, doc};
}

}  // namespace

ComponentType smmuv3Type() {
  return ComponentType{
      "hw/smmuv3",
      "SMMUv3: register file, stream table and CD decode, S1/S2/nested walks, IOTLB, CMDQ, EVTQ",
      capnp::Schema::from<rpc::Smmuv3>(),
      kj::heapArray<SettingSpec>({
          flag("stage1", "IDR0.S1P: stage-1 translation (default true)"),
          flag("stage2", "IDR0.S2P: stage-2 translation (default true); nesting = both"),
          flag("ril", "IDR3.RIL: range invalidation (default true)"),
          SettingSpec{"httu", SettingType::CHOICE, false, HTTU_CHOICES,
                      "IDR0.HTTU: hardware access flag / dirty state updates (default "
                      "\"access_dirty\")"},
          flag("ats", "IDR0.ATS (default false)"),
          flag("hyp", "IDR0.HYP: EL2 regime and CMD_TLBI_EL2_* (default false)"),
          SettingSpec{"sid_bits", SettingType::INTEGER, false, nullptr,
                      "IDR1.SIDSIZE: StreamID bits, 0..32 (default 16)", checkRange<0, 32>},
          SettingSpec{"ssid_bits", SettingType::INTEGER, false, nullptr,
                      "IDR1.SSIDSIZE: SubstreamID bits, 0..20 (default 20)", checkRange<0, 20>},
          SettingSpec{"oas", SettingType::INTEGER, false, nullptr,
                      "IDR5.OAS: output address bits, 32..52 (default 48; 52 needs gran64k)",
                      checkOas},
          flag("gran4k", "IDR5.GRAN4K (default true)"),
          flag("gran16k", "IDR5.GRAN16K (default true)"),
          flag("gran64k", "IDR5.GRAN64K (default true)"),
          flag("asid16", "IDR0.ASID16 (default true)"),
          flag("vmid16", "IDR0.VMID16 (default true)"),
          flag("two_level_stream_table", "IDR0.ST_LVL: two-level stream tables (default true)"),
          flag("cd2l", "IDR0.CD2L: two-level CD tables (default true)"),
          SettingSpec{"cmdq_log2_max", SettingType::INTEGER, false, nullptr,
                      "IDR1.CMDQS: log2 of the largest command queue, 0..19 (default 19)",
                      checkRange<0, 19>},
          SettingSpec{"evtq_log2_max", SettingType::INTEGER, false, nullptr,
                      "IDR1.EVTQS: log2 of the largest event queue, 0..19 (default 19)",
                      checkRange<0, 19>},
          flag("attr_types_ovr", "IDR1.ATTR_TYPES_OVR (default true)"),
          flag("msi", "IDR0.MSI: MSI writes for CMD_SYNC (default true)"),
          flag("sev", "IDR0.SEV (default true)"),
          SettingSpec{"iotlb_entries", SettingType::INTEGER, false, nullptr,
                      "IOTLB capacity in leaf entries, 0 (no IOTLB) .. 2^20 (default 4096)",
                      checkRange<0, MAX_CACHE_ENTRIES>},
          SettingSpec{"iotlb_ways", SettingType::INTEGER, false, nullptr,
                      "IOTLB associativity, 1..16 (default 8; capped at iotlb_entries, which "
                      "must be a multiple of it: sets = entries / ways, LRU within a set)",
                      checkRange<1, 16>},
          SettingSpec{"config_cache_entries", SettingType::INTEGER, false, nullptr,
                      "STE and CD cache capacity (each), 0 (none) .. 2^20 (default 1024; "
                      "set-associative, LRU within a set)",
                      checkRange<0, MAX_CACHE_ENTRIES>},
      }),
      nullptr,
      makeSmmu,
      true};
}

}  // namespace nb::smmu
