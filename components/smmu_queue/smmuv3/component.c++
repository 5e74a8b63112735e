// components/smmu_queue/smmuv3: the SmmuQueue server and the "smmu_queue/smmuv3" registry entry.
//
// The server is thin: raw command blobs become `Command` arrays, typed host invalidations
// become commands (commands.h, with the SMMU's RIL deciding the range encoding), and both go
// to HostQueue::submit; events and vIOMMUs are the host queue's and the guest side's.

#include "components/smmu_queue/smmuv3/component.h"

#include "components/smmu_queue/smmuv3/commands.h"
#include "components/smmu_queue/smmuv3/host-queue.h"
#include "components/smmu_queue/smmuv3/viommu.h"
#include "interfaces/smmu-queue.capnp.h"
#include "interfaces/smmuv3.capnp.h"
#include "util/smmuv3/registers.h"

#include <toml++/toml.h>
#include <string.h>

namespace nb::smmuq {

namespace {

constexpr size_t COMMAND_BYTES = smmuv3::CMDQ_ENT_BYTES;

void fillResult(rpc::SubmitResult::Builder out, const SubmitOutcome& outcome) {
  auto& commands = outcome.commands;
  out.setErrno(outcome.errno_);
  out.setExecuted(outcome.executed);
  out.setSyncs(outcome.syncs);
  out.setMessage(outcome.message);
  auto illegal = out.initIllegal(outcome.illegal.size());
  for (auto i : kj::indices(outcome.illegal)) {
    const uint32_t index = outcome.illegal[i];
    illegal[i].setIndex(index);
    auto bytes = illegal[i].initCommand(COMMAND_BYTES);
    memcpy(bytes.begin(), &commands[index].dw0, 8);
    memcpy(bytes.begin() + 8, &commands[index].dw1, 8);
  }
}

void refuse(rpc::SubmitResult::Builder out, rpc::Errno errno_, kj::StringPtr message) {
  out.setErrno(errno_);
  out.setMessage(message);
}

class SubscriptionServer final : public rpc::Subscription::Server {
public:
  explicit SubscriptionServer(kj::Own<void> handle) : handle(kj::mv(handle)) {}

private:
  kj::Own<void> handle;  // dropping it stops the routing
};

class QueueServer final : public rpc::SmmuQueue::Server, public ComponentCore {
public:
  QueueServer(kj::Own<HostQueue> hostQueue, PhysMem& mem, rpc::GuestPath path)
      : host(kj::mv(hostQueue)), guest(*host, mem, path), path(path) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    // Every HostStats counter, in declaration order, then the guest side's.
    const HostStats& s = host->stats();
    const struct {
      const char* name;
      uint64_t value;
    } counters[] = {
        {"submissions", s.submissions},
        {"commands", s.commands},
        {"syncs", s.syncs},
        {"batches", s.batches},
        {"doorbells", s.doorbells},
        {"cons_polls", s.consPolls},
        {"illegal", s.illegal},
        {"fetch_aborts", s.fetchAborts},
        {"timeouts", s.timeouts},
        {"queue_full_waits", s.queueFullWaits},
        {"global_errors", s.globalErrors},
        {"events_read", s.eventsRead},
        {"events_routed", s.eventsRouted},
        {"events_to_guests", s.eventsToGuests},
        {"events_unrouted", s.eventsUnrouted},
        {"unrouted_dropped", s.unroutedDropped},
        {"delivery_failures", s.deliveryFailures},
        {"evtq_overflows", s.evtqOverflows},
        {"adopted", s.adopted},
    };
    for (auto& c : counters) out.add(Stat{kj::str(c.name), c.value});
    guest.stats(out);
  }

  void structures(kj::Vector<StructureInfo>& out) override {
    auto info = host->info();
    auto st = info.getStreamTable();
    if (st.getTwoLevel()) {
      out.add(StructureInfo{kj::str("stream_table"), kj::str(info.getSmmu()), st.getPa(),
                            uint64_t(8) << (st.getLog2Size() - st.getSplit()),
                            kj::str("2-level log2size=", st.getLog2Size(), " split=",
                                    st.getSplit(), " (L1 descriptors)")});
    } else {
      out.add(StructureInfo{kj::str("stream_table"), kj::str(info.getSmmu()), st.getPa(),
                            uint64_t(64) << st.getLog2Size(),
                            kj::str("linear log2size=", st.getLog2Size())});
    }
    out.add(StructureInfo{kj::str("cmdq"), kj::str(info.getSmmu()), info.getCmdqPa(),
                          uint64_t(16) << info.getCmdqLog2Size(),
                          kj::str(uint64_t(1) << info.getCmdqLog2Size(), " entries of 16 bytes")});
    out.add(StructureInfo{kj::str("evtq"), kj::str(info.getSmmu()), info.getEvtqPa(),
                          uint64_t(32) << info.getEvtqLog2Size(),
                          kj::str(uint64_t(1) << info.getEvtqLog2Size(), " entries of 32 bytes")});
  }

  kj::Promise<void> shutdown() override { return host->shutdown(); }

  // implements SmmuQueue ----------------------------------------------------------------------
protected:
  kj::Promise<void> info(InfoContext context) override {
    context.getResults().setInfo(host->info());
    context.getResults().getInfo().setGuestPath(path);
    return kj::READY_NOW;
  }

  kj::Promise<void> submit(SubmitContext context) override {
    auto blob = context.getParams().getCommands();
    if (blob.size() % COMMAND_BYTES != 0) {
      refuse(context.getResults().initResult(), rpc::Errno::E_INVAL,
             kj::str("the command blob is ", blob.size(), " bytes, not a multiple of 16"));
      return kj::READY_NOW;
    }
    auto commands = kj::heapArray<Command>(blob.size() / COMMAND_BYTES);
    memcpy(commands.begin(), blob.begin(), blob.size());  // little-endian qword pairs
    context.releaseParams();
    return send(context, kj::mv(commands));
  }

  kj::Promise<void> invalidate(InvalidateContext context) override {
    kj::Vector<Command> commands;
    auto ops = context.getParams().getOps();
    for (auto i : kj::indices(ops)) {
      KJ_IF_MAYBE(why, build(ops[i], commands)) {
        refuse(context.getResults().initResult(), rpc::Errno::E_INVAL,
               kj::str("operation ", i, ": ", *why));
        return kj::READY_NOW;
      }
    }
    context.releaseParams();
    return send(context, commands.releaseAsArray());
  }

  kj::Promise<void> subscribe(SubscribeContext context) override {
    auto params = context.getParams();
    const uint32_t sid = params.getSid();
    auto results = context.getResults();
    const unsigned sidBits = host->caps().sidBits;
    if (sidBits < 32 && (uint64_t(sid) >> sidBits) != 0) {
      results.setErrno(rpc::Errno::E_INVAL);
    } else if (host->subscribed(sid)) {
      results.setErrno(rpc::Errno::E_EXIST);
    } else {
      results.setSubscription(
          kj::heap<SubscriptionServer>(host->subscribe(sid, params.getSink())));
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> drainEvents(DrainEventsContext context) override {
    return host->drainEvents().then([context](HostQueue::Drained d) mutable {
      auto results = context.getResults();
      results.setRead(d.read);
      results.setLost(d.lost);
    });
  }

  kj::Promise<void> unrouted(UnroutedContext context) override {
    host->unrouted(context.getResults(), context.getParams().getClear());
    return kj::READY_NOW;
  }

  kj::Promise<void> allocViommu(AllocViommuContext context) override {
    return guest.allocViommu(context);
  }

private:
  template <typename Context>
  kj::Promise<void> send(Context& context, kj::Array<Command> commands) {
    return host->submit(kj::mv(commands)).then([context](SubmitOutcome outcome) mutable {
      fillResult(context.getResults(capnp::MessageSize{16, 0}).initResult(), outcome);
    });
  }

  kj::Maybe<kj::String> build(rpc::HostInvalidation::Reader op, kj::Vector<Command>& out) {
    // HostOp -> commands (facts 1.3, 1.4: the range form only when IDR3.RIL says so).
    auto range = [&](TlbiRange::Stage stage) -> kj::Maybe<kj::String> {
      TlbiRange r;
      r.stage = stage;
      r.asid = op.getAsid();
      r.vmid = op.getVmid();
      r.addr = op.getAddr();
      r.size = op.getSize();
      r.granule = op.getGranule();
      // No page size given: the smallest the SMMU supports.
      const uint64_t smallest = host->caps().pgsizeBitmap & -host->caps().pgsizeBitmap;
      r.pageSize = op.getPageSize() != 0 ? op.getPageSize() : smallest;
      r.leaf = op.getLeaf();
      KJ_IF_MAYBE(why, checkTlbiRange(r)) { return kj::mv(*why); }
      buildTlbiRange(r, host->caps().ril, out);
      return nullptr;
    };
    switch (op.getOp()) {
      case rpc::HostOp::CFGI_STE: out.add(build::cfgiSte(op.getSid())); return nullptr;
      case rpc::HostOp::CFGI_CD: out.add(build::cfgiCd(op.getSid(), op.getSsid())); return nullptr;
      case rpc::HostOp::CFGI_CD_ALL: out.add(build::cfgiCdAll(op.getSid())); return nullptr;
      case rpc::HostOp::CFGI_ALL: out.add(build::cfgiAll()); return nullptr;
      case rpc::HostOp::TLBI_NH_ALL: out.add(build::tlbiNhAll(op.getVmid())); return nullptr;
      case rpc::HostOp::TLBI_NH_ASID:
        out.add(build::tlbiNhAsid(op.getAsid(), op.getVmid()));
        return nullptr;
      case rpc::HostOp::TLBI_NH_VA: return range(TlbiRange::Stage::NH_VA);
      case rpc::HostOp::TLBI_S12_VMALL: out.add(build::tlbiS12Vmall(op.getVmid())); return nullptr;
      case rpc::HostOp::TLBI_S2_IPA: return range(TlbiRange::Stage::S2_IPA);
      case rpc::HostOp::TLBI_NSNH_ALL: out.add(build::tlbiNsnhAll()); return nullptr;
      case rpc::HostOp::ATC_INV:
        if (op.getSsid() >= (1u << 20)) return kj::str("SSID ", op.getSsid(), " is beyond 20 bits");
        out.add(build::atcInv(op.getSid(), op.getSsv(), op.getSsid(), op.getAddr(), op.getSize()));
        return nullptr;
      case rpc::HostOp::SYNC: out.add(build::sync()); return nullptr;
    }
    return kj::str("unknown operation ", uint16_t(op.getOp()));
  }

  kj::Own<HostQueue> host;   // before `guest`, which uses it
  GuestSide guest;
  rpc::GuestPath path;
};

// =============================================================================================
// Settings

template <int64_t LO, int64_t HI>
void checkRange(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && (*v < LO || *v > HI)) {
    errors.error(value, "", kj::str("must be between ", LO, " and ", HI, ", not ", *v));
  }
}

void checkSplit(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && *v != 6 && *v != 8 && *v != 10) {
    // STRTAB_BASE_CFG.SPLIT: 4 KB, 16 KB or 64 KB level-2 tables (IHI 0070).
    errors.error(value, "", kj::str("must be 6, 8 or 10, not ", *v));
  }
}

const kj::StringPtr STREAM_TABLE_CHOICES[] = {"two_level", "linear"};
const kj::StringPtr GUEST_PATH_CHOICES[] = {"native", "generic", "sw_vcmdq"};
const kj::StringPtr SYNC_POLICY_CHOICES[] = {"linux", "per_batch"};
const kj::StringPtr ENABLED_SMMU_CHOICES[] = {"adopt", "reset"};

kj::Promise<rpc::Component::Client> makeQueue(ComponentContext& ctx) {
  const Settings& s = ctx.settings;
  HostOptions options;
  options.cmdqLog2Size = unsigned(s.integer("cmdq_log2size", options.cmdqLog2Size));
  options.evtqLog2Size = unsigned(s.integer("evtq_log2size", options.evtqLog2Size));
  options.batchSize = unsigned(s.integer("batch_size", options.batchSize));
  options.syncPolicy = s.string("sync_policy", "linux") == "per_batch" ? SyncPolicy::PER_BATCH
                                                                        : SyncPolicy::LINUX;
  options.twoLevelStreamTable = s.string("stream_table", "two_level") == "two_level";
  options.streamTableSplit = unsigned(s.integer("stream_table_split", options.streamTableSplit));
  options.syncTimeout = s.integer("sync_timeout_ms", 1000) * kj::MILLISECONDS;
  options.unroutedLog = size_t(s.integer("unrouted_log", int64_t(options.unroutedLog)));
  options.clock = &ctx.clock;
  options.adoptEnabled = s.string("enabled_smmu", "adopt") == "adopt";
  auto pathName = s.string("guest_path", "native");
  rpc::GuestPath path = pathName == "generic"    ? rpc::GuestPath::GENERIC
                        : pathName == "sw_vcmdq" ? rpc::GuestPath::SW_VCMDQ
                                                 : rpc::GuestPath::NATIVE;
  PhysMem& mem = ctx.mem;
  kj::StringPtr impl = ctx.type.name;
  return HostQueue::create(mem, ctx.frames, ctx.use<rpc::Smmuv3>("smmu"), ctx.timer, options)
      .then([&mem, impl, path](kj::Own<HostQueue> host) {
        auto server = kj::heap<QueueServer>(kj::mv(host), mem, path);
        auto& core = *server;
        rpc::SmmuQueue::Client main = kj::mv(server);
        return makeComponent(impl, capnp::typeId<rpc::SmmuQueue>(), kj::mv(main), core);
      });
}

}  // namespace

ComponentType smmuQueueType() {
  return ComponentType{
      "smmu_queue/smmuv3",
      "one SMMUv3's command queue producer (batches, CMD_SYNC, error recovery), event queue "
      "consumer and routing, vIOMMUs and the guest invalidation paths",
      capnp::Schema::from<rpc::SmmuQueue>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"cmdq_log2size", SettingType::INTEGER, false, nullptr,
                      "log2 of the command queue's entries, 1..19, capped by IDR1.CMDQS "
                      "(default 8)",
                      checkRange<1, 19>},
          SettingSpec{"evtq_log2size", SettingType::INTEGER, false, nullptr,
                      "log2 of the event queue's entries, 0..19, capped by IDR1.EVTQS "
                      "(default 7)",
                      checkRange<0, 19>},
          SettingSpec{"batch_size", SettingType::INTEGER, false, nullptr,
                      "commands per batch, 1..4096 (default 64, Linux's "
                      "CMDQ_BATCH_ENTRIES)",
                      checkRange<1, 4096>},
          SettingSpec{"sync_policy", SettingType::CHOICE, false, SYNC_POLICY_CHOICES,
                      "\"linux\" (default: full batches issued without a SYNC, one CMD_SYNC "
                      "ending each submission) or \"per_batch\" (a CMD_SYNC after every batch; "
                      "the guest paths always batch so)"},
          SettingSpec{"stream_table", SettingType::CHOICE, false, STREAM_TABLE_CHOICES,
                      "\"two_level\" (when IDR0.ST_LVL allows it and SIDs exceed one level-2 "
                      "table; default) or \"linear\""},
          SettingSpec{"stream_table_split", SettingType::INTEGER, false, nullptr,
                      "two-level: log2 of the STEs per level-2 table, 6, 8 or 10 (default 8)",
                      checkSplit},
          SettingSpec{"sync_timeout_ms", SettingType::INTEGER, false, nullptr,
                      "how long a CMD_SYNC may take before its submission fails with "
                      "eTimedOut, 1..60000 ms (default 1000, ARM_SMMU_POLL_TIMEOUT_US)",
                      checkRange<1, 60000>},
          SettingSpec{"unrouted_log", SettingType::INTEGER, false, nullptr,
                      "events kept for unrouted(), 0..65536 (default 256)",
                      checkRange<0, 65536>},
          SettingSpec{"enabled_smmu", SettingType::CHOICE, false, ENABLED_SMMU_CHOICES,
                      "an SMMU found enabled at start (this component restarted): \"adopt\" "
                      "(default: take over its stream table and queues from the registers, "
                      "DMA uninterrupted, like Linux's live-update preservation) or \"reset\" "
                      "(Linux's probe: GBPA.ABORT, then the reset sequence and new tables)"},
          SettingSpec{"guest_path", SettingType::CHOICE, false, GUEST_PATH_CHOICES,
                      "how guest invalidations reach the SMMU: \"native\" (default), "
                      "\"generic\" or \"sw_vcmdq\""},
      }),
      kj::heapArray<RoleSpec>({
          RoleSpec{"smmu", capnp::Schema::from<rpc::Smmuv3>(), true,
                   "the SMMU this queue drives (hw/smmuv3), through its MMIO registers"},
      }),
      makeQueue,
      /*isHardware=*/false,
      // Its state is the SMMU's: the registers, the stream table and queues in memory.
      Recovery::ADOPTS};
}

}  // namespace nb::smmuq
