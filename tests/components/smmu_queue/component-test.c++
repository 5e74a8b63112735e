// tests/components/smmu_queue: the "smmu_queue/smmuv3" component's host side through its
// capability, inline and in its own process — settings, info, submit (raw blobs), invalidate
// (typed host operations, range form decided by the SMMU's RIL), CERROR_ILL and SYNC timeout
// as results, event subscription, drainEvents and the unrouted log, stats and structures.

#include "tests/components/smmu_queue/smmu-queue-testing.h"

namespace nb::smmuq::testing {
namespace {

const kj::StringPtr PLACEMENTS[] = {"inline", "process"};

struct Rig {
  explicit Rig(kj::StringPtr queueSettings, kj::StringPtr placement,
               kj::StringPtr smmuSettings = "")
      : sys(queueManifest(queueSettings, placement, smmuSettings)),
        ws(sys.io.waitScope),
        queue(sys.main<rpc::SmmuQueue>("queue")),
        smmu(sys.main<rpc::Smmuv3>("smmu0")),
        arena(sys.composer),
        mmio(smmu, ws, arena) {}

  TestSystem sys;
  kj::WaitScope& ws;
  rpc::SmmuQueue::Client queue;
  rpc::Smmuv3::Client smmu;
  Arena arena;
  RpcSmmu mmio;

  capnp::Response<rpc::SmmuQueue::SubmitResults> submit(kj::ArrayPtr<const Command> cmds) {
    auto req = queue.submitRequest();
    auto bytes = blob(cmds);
    req.setCommands(bytes);
    return req.send().wait(ws);
  }
  uint64_t stat(kj::StringPtr name) { return counter(sys, "queue", name); }
  uint64_t smmuStat(kj::StringPtr name) { return counter(sys, "smmu0", name); }
};

kj::String errorsText(kj::StringPtr text) { return kj::strArray(manifestErrors(text), "\n"); }

TEST_CASE("smmu_queue component: settings are checked with their positions",
          "[smmu_queue][component]") {
  auto text = queueManifest(
      "cmdq_log2size = 20\nbatch_size = 0\nstream_table = \"flat\"\nstream_table_split = 7\n"
      "sync_timeout_ms = 0\nunrouted_log = -1\nguest_path = \"vcmdq\"\nevtq_log2size = 20\n");
  CHECK(errorsText(text) ==
        "test.toml:15:14: components.queue.batch_size: must be between 1 and 4096, not 0\n"
        "test.toml:14:17: components.queue.cmdq_log2size: must be between 1 and 19, not 20\n"
        "test.toml:21:17: components.queue.evtq_log2size: must be between 0 and 19, not 20\n"
        "test.toml:20:14: components.queue.guest_path: must be one of \"native\", \"generic\", "
        "\"sw_vcmdq\"\n"
        "test.toml:16:16: components.queue.stream_table: must be one of \"two_level\", "
        "\"linear\"\n"
        "test.toml:17:22: components.queue.stream_table_split: must be 6, 8 or 10, not 7\n"
        "test.toml:18:19: components.queue.sync_timeout_ms: must be between 1 and 60000, not 0\n"
        "test.toml:19:16: components.queue.unrouted_log: must be between 0 and 65536, not -1");
  CHECK(errorsText(kj::str(smmuManifest(), "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\n")) ==
        "test.toml:10:1: components.queue.uses: missing required role 'smmu' (the SMMU this "
        "queue drives (hw/smmuv3), through its MMIO registers)");
}

TEST_CASE("smmu_queue component: info reports the rings, the stream table and the features",
          "[smmu_queue][component]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig("cmdq_log2size = 10\nevtq_log2size = 5\nbatch_size = 32\nguest_path = \"generic\"\n",
              placement, "sid_bits = 12\nril = false\n");
      auto response = rig.queue.infoRequest().send().wait(rig.ws);
      auto info = response.getInfo();
      CHECK(info.getSmmu() == "smmu0");
      CHECK(info.getBatchSize() == 32);
      CHECK(info.getGuestPath() == rpc::GuestPath::GENERIC);
      CHECK(info.getCmdqLog2Size() == 10);
      CHECK(info.getEvtqLog2Size() == 5);
      CHECK(!info.getFeatures().getRil());
      CHECK(info.getFeatures().getSidBits() == 12);
      REQUIRE(info.getIdr().size() == 6);
      CHECK((info.getIdr()[1] & 0x3f) == 12);  // IDR1.SIDSIZE
      auto st = info.getStreamTable();
      CHECK(st.getTwoLevel());
      CHECK(st.getLog2Size() == 12);
      CHECK(st.getSplit() == 8);
      CHECK(rig.mmio.read64(off::STRTAB_BASE) == ((1ull << 62) | st.getPa()));
      CHECK(rig.mmio.read64(off::CMDQ_BASE) == ((1ull << 62) | info.getCmdqPa() | 10));
      CHECK(rig.mmio.read64(off::EVTQ_BASE) == ((1ull << 62) | info.getEvtqPa() | 5));
      CHECK(rig.mmio.read32(off::CR0) == CR0_ALL);
      CHECK(rig.smmuStat("cmdq_op_cfgi_ste_range") == 1);
      CHECK(rig.smmuStat("cmdq_op_tlbi_nsnh_all") == 1);

      auto structures = rig.sys.composer.structures().wait(rig.ws);
      kj::Vector<kj::String> kinds;
      for (auto& instance : structures) {
        if (kj::get<0>(instance) != "queue") continue;
        for (auto& s : kj::get<1>(instance)) kinds.add(kj::str(s.kind, " ", s.size));
      }
      CHECK(kj::strArray(kinds, ", ") == "stream_table 128, cmdq 16384, evtq 1024");
    }
  }
}

TEST_CASE("smmu_queue component: submit — SYNC per batch, CERROR_ILL as a result",
          "[smmu_queue][component][cmdq]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig("batch_size = 2\nsync_policy = \"per_batch\"\n", placement);
      auto ok = rig.submit(commands({cmdTlbi(0x11, 1, 1), cmdTlbi(0x11, 1, 2),
                                     cmdTlbi(0x28, 3), cmdCfgiSte(4), cmdCfgiCdAll(4)}));
      auto r = ok.getResult();
      CHECK(r.getErrno() == rpc::Errno::OK);
      CHECK(r.getExecuted() == 5);
      CHECK(r.getSyncs() == 3);
      CHECK(r.getIllegal().size() == 0);
      CHECK(r.getMessage() == "");

      // A reserved bit in TLBI_NH_ALL's dw1 (facts 1.3: it has none): CERROR_ILL.
      auto bad = rig.submit(commands({cmdTlbi(0x11, 1, 1), Cmd{0x10 | (5ull << 32), 0x100},
                                      cmdTlbi(0x11, 1, 3)}));
      auto b = bad.getResult();
      CHECK(b.getErrno() == rpc::Errno::E_IO);
      CHECK(b.getExecuted() == 2);
      REQUIRE(b.getIllegal().size() == 1);
      CHECK(b.getIllegal()[0].getIndex() == 1);
      auto bytes = b.getIllegal()[0].getCommand();
      REQUIRE(bytes.size() == 16);
      uint64_t dw0, dw1;
      memcpy(&dw0, bytes.begin(), 8);
      memcpy(&dw1, bytes.begin() + 8, 8);
      CHECK(dw0 == (0x10 | (5ull << 32)));
      CHECK(dw1 == 0x100);
      CHECK(kj::StringPtr(b.getMessage()).startsWith("CERROR_ILL"));

      // Not a multiple of 16 bytes.
      auto req = rig.queue.submitRequest();
      req.initCommands(24);
      auto oddResponse = req.send().wait(rig.ws);
      auto odd = oddResponse.getResult();
      CHECK(odd.getErrno() == rpc::Errno::E_INVAL);
      CHECK(odd.getMessage() == "the command blob is 24 bytes, not a multiple of 16");

      CHECK(rig.stat("submissions") == 2 + 2);   // the reset's two, then ours
      CHECK(rig.stat("commands") == 2 + 8);
      CHECK(rig.stat("syncs") == 2 + 3 + 2);
      CHECK(rig.stat("illegal") == 1);
      CHECK(rig.smmuStat("cmdq_illegal") == 1);
      CHECK(rig.smmuStat("cmdq_op_tlbi_nh_asid") == 4);
    }
  }
}

TEST_CASE("smmu_queue component: invalidate builds the host's commands, range form with RIL",
          "[smmu_queue][component][cmdq]") {
  for (auto placement : PLACEMENTS) {
    for (bool ril : {true, false}) {
      DYNAMIC_SECTION(placement.cStr() << (ril ? " RIL" : " no RIL")) {
        Rig rig("", placement, ril ? "" : "ril = false\n");
        auto req = rig.queue.invalidateRequest();
        auto ops = req.initOps(5);
        // 4 leaf pages of ASID 1: one range command with RIL, 4 without.
        ops[0].setOp(rpc::HostOp::TLBI_NH_VA);
        ops[0].setAsid(1);
        ops[0].setAddr(0x10000);
        ops[0].setSize(0x4000);
        ops[0].setGranule(0x1000);
        ops[0].setPageSize(0x1000);
        ops[0].setLeaf(true);
        // A 2M block of VMID 3's stage 2: one command either way.
        ops[1].setOp(rpc::HostOp::TLBI_S2_IPA);
        ops[1].setVmid(3);
        ops[1].setAddr(0x200000);
        ops[1].setSize(0x200000);
        ops[1].setGranule(0x200000);
        ops[1].setLeaf(true);
        ops[2].setOp(rpc::HostOp::CFGI_STE);
        ops[2].setSid(7);
        ops[3].setOp(rpc::HostOp::TLBI_NH_ASID);
        ops[3].setAsid(1);
        ops[4].setOp(rpc::HostOp::CFGI_ALL);
        auto response = req.send().wait(rig.ws);
        auto result = response.getResult();
        CHECK(result.getErrno() == rpc::Errno::OK);
        CHECK(result.getExecuted() == (ril ? 5 : 8));
        CHECK(result.getSyncs() == 1);
        CHECK(rig.smmuStat("cmdq_op_tlbi_nh_va") == (ril ? 1 : 4));
        CHECK(rig.smmuStat("cmdq_op_tlbi_s2_ipa") == 1);
        CHECK(rig.smmuStat("cmdq_op_cfgi_ste") == 1);
        CHECK(rig.smmuStat("cmdq_op_tlbi_nh_asid") == 1);
        CHECK(rig.smmuStat("cmdq_op_cfgi_ste_range") == 2);  // reset's CFGI_ALL and ours

        // A range that cannot be encoded refuses the whole request.
        auto bad = rig.queue.invalidateRequest();
        auto badOps = bad.initOps(2);
        badOps[0].setOp(rpc::HostOp::TLBI_NSNH_ALL);
        badOps[1].setOp(rpc::HostOp::TLBI_NH_VA);
        badOps[1].setAddr(0x1800);
        badOps[1].setSize(0x1000);
        badOps[1].setPageSize(0x1000);
        auto refusedResponse = bad.send().wait(rig.ws);
        auto refused = refusedResponse.getResult();
        CHECK(refused.getErrno() == rpc::Errno::E_INVAL);
        CHECK(refused.getMessage() ==
              "operation 1: range 0x1800+0x1000 is not aligned to the page size 4096");
        CHECK(rig.smmuStat("cmdq_op_tlbi_nsnh_all") == 1);  // the reset's only
      }
    }
  }
}

TEST_CASE("smmu_queue component: a SYNC that never completes is eTimedOut",
          "[smmu_queue][component][cmdq]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig("sync_timeout_ms = 40\n", placement);
      rig.mmio.write32(off::CR0, CR0_SMMUEN | CR0_EVTQEN);  // the SMMU stops consuming
      auto& timer = rig.sys.io.provider->getTimer();
      auto start = timer.now();
      auto r = rig.submit(commands({cmdTlbi(0x30)}));
      auto result = r.getResult();
      CHECK(result.getErrno() == rpc::Errno::E_TIMED_OUT);
      CHECK(result.getExecuted() == 0);
      CHECK(kj::StringPtr(result.getMessage()).startsWith("CMD_SYNC timeout after 40 ms"));
      CHECK(timer.now() - start < 1 * kj::SECONDS);
      CHECK(rig.stat("timeouts") == 1);
    }
  }
}

TEST_CASE("smmu_queue component: subscribe, drainEvents and the unrouted log",
          "[smmu_queue][component][evtq]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig("stream_table = \"linear\"\nunrouted_log = 3\n", placement);
      kj::Vector<smmu::EventRecord> seen;
      auto subscribe = [&](uint32_t sid) {
        auto req = rig.queue.subscribeRequest();
        req.setSid(sid);
        req.setSink(kj::heap<CollectingSink>(seen));
        return req.send().wait(rig.ws);
      };
      rpc::Subscription::Client subscription = nullptr;
      {
        auto first = subscribe(9);
        CHECK(first.getErrno() == rpc::Errno::OK);
        subscription = first.getSubscription();
      }
      CHECK(subscribe(9).getErrno() == rpc::Errno::E_EXIST);
      CHECK(subscribe(256).getErrno() == rpc::Errno::E_INVAL);  // sid_bits = 8

      fault(rig.smmu, rig.ws, 9, 2);
      fault(rig.smmu, rig.ws, 10, 5);
      auto drained = rig.queue.drainEventsRequest().send().wait(rig.ws);
      CHECK(!drained.getLost());
      REQUIRE(seen.size() == 2);
      CHECK(eventId(seen[0]) == 0x04);
      CHECK(eventSid(seen[0]) == 9);

      auto req = rig.queue.unroutedRequest();
      req.setClear(true);
      auto unrouted = req.send().wait(rig.ws);
      auto events = unrouted.getEvents();
      REQUIRE(events.size() == 3);
      CHECK(events[0].getType() == rpc::EventType::C_BAD_STE);
      CHECK(events[0].getSid() == 10);
      CHECK(events[0].getRaw().size() == 4);
      CHECK(unrouted.getDropped() == 2);
      CHECK(unrouted.getOverflows() == 0);

      CHECK(rig.stat("events_read") == 7);
      CHECK(rig.stat("events_routed") == 2);
      CHECK(rig.stat("events_unrouted") == 5);
      CHECK(rig.stat("unrouted_dropped") == 2);

      // Dropping the subscription frees the StreamID.
      subscription = nullptr;
      rig.queue.infoRequest().send().wait(rig.ws);  // the release reaches the server
      auto again = subscribe(9);
      CHECK(again.getErrno() == rpc::Errno::OK);
    }
  }
}

TEST_CASE("smmu_queue component: an overflowing EVTQ is reported by drainEvents",
          "[smmu_queue][component][evtq]") {
  for (auto placement : PLACEMENTS) {
    DYNAMIC_SECTION(placement.cStr()) {
      Rig rig("stream_table = \"linear\"\nevtq_log2size = 1\n", placement);
      fault(rig.smmu, rig.ws, 3, 12);
      auto drained = rig.queue.drainEventsRequest().send().wait(rig.ws);
      CHECK(drained.getLost());
      CHECK(rig.stat("evtq_overflows") == 1);
      CHECK(rig.stat("events_read") == 2);
      auto unrouted = rig.queue.unroutedRequest().send().wait(rig.ws);
      CHECK(unrouted.getOverflows() == 1);
      CHECK(!rig.queue.drainEventsRequest().send().wait(rig.ws).getLost());
    }
  }
}

TEST_CASE("smmu_queue component: stats name every host counter", "[smmu_queue][component]") {
  Rig rig("", "inline");
  kj::Vector<kj::String> names;
  for (auto& s : rig.sys.stats()) {
    if (s.name != "queue") continue;
    for (auto& c : s.counters) names.add(kj::heapString(c.name));
  }
  const char* expected[] = {"submissions",     "commands",        "syncs",
                            "batches",         "doorbells",       "cons_polls",      "illegal",
                            "fetch_aborts",    "timeouts",        "queue_full_waits",
                            "global_errors",   "events_read",     "events_routed",
                            "events_to_guests", "events_unrouted", "unrouted_dropped",
                            "delivery_failures", "evtq_overflows"};
  REQUIRE(names.size() >= kj::size(expected));
  for (size_t i = 0; i < kj::size(expected); i++) CHECK(names[i] == expected[i]);
  CHECK(rig.stat("submissions") == 2);  // CFGI_ALL and TLBI_NSNH_ALL at reset
  CHECK(rig.stat("syncs") == 2);
  CHECK(rig.stat("doorbells") == 1);    // gathered into one round
}

}  // namespace
}  // namespace nb::smmuq::testing
