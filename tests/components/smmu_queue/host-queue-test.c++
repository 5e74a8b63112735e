// tests/components/smmu_queue: the host queue over a composed SMMU model (inline and
// process-placed) — the reset sequence as the model sees it, submissions across ring wrap,
// back-pressure from a full ring, FIFO order without interleaved batches, CERROR_ILL recovery,
// SYNC timeouts, and the EVTQ consumer: routing, the unrouted log, overflow, vmasters.

#include "tests/components/smmu_queue/smmu-queue-testing.h"

namespace nb::smmuq::testing {
namespace {

HostOptions options(unsigned cmdqLog2 = 8, unsigned batch = 64,
                    SyncPolicy policy = SyncPolicy::PER_BATCH) {
  // PER_BATCH unless asked: most cases here exercise SYNCs inside one submission (ring wrap,
  // FIFO without shared batches, errors between SYNCs); Linux's batching has its own cases.
  HostOptions o;
  o.cmdqLog2Size = cmdqLog2;
  o.batchSize = batch;
  o.syncPolicy = policy;
  return o;
}

// Splits what the SMMU was given at CMD_SYNCs (opcode 0x46): each batch with its SYNC.
kj::Vector<kj::Vector<Command>> batchesOf(kj::ArrayPtr<const Command> given) {
  kj::Vector<kj::Vector<Command>> out;
  kj::Vector<Command> current;
  for (auto& c : given) {
    if ((c.dw0 & 0xff) == 0x46) {
      out.add(kj::mv(current));
      current = kj::Vector<Command>();
    } else {
      current.add(c);
    }
  }
  REQUIRE(current.empty());  // everything given ends with a SYNC
  return out;
}

TEST_CASE("smmu_queue host: the reset sequence leaves the SMMU as Linux does (facts 1.8)",
          "[smmu_queue][host][reset]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    HostRig rig("sid_bits = 16\nhyp = true\n", placement, options());
    auto info = rig.host->info();
    auto st = info.getStreamTable();

    // Registers, decoded with literal positions (facts 1.8).
    CHECK(rig.mmio.read32(off::CR0) == (CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN));
    CHECK(rig.mmio.read32(off::CR0ACK) == (CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN));
    // CR1: TABLE_SH ISH (3 << 10), TABLE_OC/IC WB (1 << 8, 1 << 6), QUEUE_SH ISH (3 << 4),
    // QUEUE_OC/IC WB (1 << 2, 1); CR2: PTM (bit 2) | RECINVSID (bit 1).
    CHECK(rig.mmio.read32(off::CR1) == 0xd75);
    CHECK(rig.mmio.read32(off::CR2) == 0x6);
    CHECK(rig.mmio.read64(off::STRTAB_BASE) == ((1ull << 62) | st.getPa()));
    // Two-level: FMT = 1 (bit 16), SPLIT = 8 (bits 10:6), LOG2SIZE = 16.
    CHECK(st.getTwoLevel());
    CHECK(st.getSplit() == 8);
    CHECK(st.getLog2Size() == 16);
    CHECK(rig.mmio.read32(off::STRTAB_BASE_CFG) == ((1u << 16) | (8u << 6) | 16u));
    CHECK(rig.mmio.read64(off::CMDQ_BASE) == ((1ull << 62) | info.getCmdqPa() | 8));
    CHECK(rig.mmio.read64(off::EVTQ_BASE) == ((1ull << 62) | info.getEvtqPa() | 7));
    CHECK(rig.mmio.read32(off::IRQ_CTRL) == 0x5);  // GERROR_IRQEN | EVTQ_IRQEN
    CHECK(rig.mmio.read32(off::GERROR) == rig.mmio.read32(off::GERRORN));
    // The queues are empty: three SYNCed invalidations consumed.
    CHECK(rig.mmio.read32(off::CMDQ_PROD) == 6);
    CHECK(rig.mmio.read32(off::CMDQ_CONS) == 6);

    // The model executed CFGI_ALL (CFGI_STE_RANGE), TLBI_EL2_ALL (HYP), TLBI_NSNH_ALL, each
    // followed by its SYNC.
    CHECK(rig.smmuStat("cmdq_op_cfgi_ste_range") == 1);
    CHECK(rig.smmuStat("cmdq_op_tlbi_el2_all") == 1);
    CHECK(rig.smmuStat("cmdq_op_tlbi_nsnh_all") == 1);
    CHECK(rig.smmuStat("cmdq_op_sync") == 3);
    CHECK(rig.smmuStat("cmdq_illegal") == 0);

    // 256 zeroed level-1 descriptors: every StreamID is invalid until a level-2 table exists.
    for (unsigned i = 0; i < 256; i++) REQUIRE(rig.arena.mem().load64(st.getPa() + 8 * i) == 0);
    auto req = rig.smmu.translateRequest();
    req.setSid(0x1234);
    auto r = req.send().wait(rig.ws);
    REQUIRE(r.isFault());
    CHECK(r.getFault().getId() == 0x02);  // C_BAD_STREAMID

    // Caps come from the ID registers.
    auto& caps = rig.host->caps();
    CHECK(caps.sidBits == 16);
    CHECK(caps.hyp);
    CHECK(caps.ril);
    CHECK(caps.nesting);
    CHECK(caps.twoLevelStreamTable);
    CHECK(caps.oas == 48);
    CHECK(caps.pgsizeBitmap == ((1ull << 12) | (1ull << 21) | (1ull << 30) | (1ull << 14) |
                                (1ull << 25) | (1ull << 16) | (1ull << 29)));
    CHECK(info.getIdr()[0] == rig.mmio.read32(off::IDR0));
    CHECK(info.getSmmu() == "smmu0");
    CHECK(info.getBatchSize() == 64);
  }
}

TEST_CASE("smmu_queue host: a linear stream table of zeroed STEs, without HYP",
          "[smmu_queue][host][reset]") {
  HostOptions o = options();
  o.twoLevelStreamTable = false;
  HostRig rig("ril = false\n", "inline", o);
  auto st = rig.host->info().getStreamTable();
  CHECK(!st.getTwoLevel());
  CHECK(st.getLog2Size() == 8);
  CHECK(rig.mmio.read32(off::STRTAB_BASE_CFG) == 8);  // FMT linear, LOG2SIZE = SIDSIZE
  for (unsigned i = 0; i < 256 * 8; i++) REQUIRE(rig.arena.mem().load64(st.getPa() + 8 * i) == 0);
  CHECK(rig.smmuStat("cmdq_op_tlbi_el2_all") == 0);
  CHECK(rig.smmuStat("cmdq_op_sync") == 2);
  CHECK(!rig.host->caps().ril);
  auto req = rig.smmu.translateRequest();
  req.setSid(3);
  auto r = req.send().wait(rig.ws);
  REQUIRE(r.isFault());
  CHECK(r.getFault().getId() == 0x04);  // C_BAD_STE: V = 0
}

TEST_CASE("smmu_queue host: resetting an enabled SMMU aborts incoming traffic first",
          "[smmu_queue][host][reset]") {
  HostRig rig("", "inline", options());
  CHECK((rig.mmio.read32(off::GBPA) & (1u << 20)) == 0);
  auto frames = rig.sys.root.memoryRequest().send().wait(rig.ws).getFrames();
  HostOptions resetting = options();
  resetting.adoptEnabled = false;   // enabled_smmu = "reset": Linux's probe
  auto second = HostQueue::create(rig.sys.composer.memory(), frames, rig.smmu,
                                  rig.sys.io.provider->getTimer(), resetting)
                    .wait(rig.ws);
  CHECK((rig.mmio.read32(off::GBPA) & (1u << 20)) != 0);   // GBPA.ABORT
  CHECK((rig.mmio.read32(off::GBPA) & (1u << 31)) == 0);   // UPDATE completed
  CHECK(rig.mmio.read32(off::CR0) == CR0_ALL);
  CHECK(second->submit(commands({cmdTlbi(0x30)})).wait(rig.ws).errno_ == rpc::Errno::OK);
}

TEST_CASE("smmu_queue host: a queue finding the SMMU enabled adopts its tables and queues",
          "[smmu_queue][host][adopt]") {
  // A restarted smmu_queue: the stream table, the queues and their indexes are read back from
  // the registers; nothing is reset (no GBPA.ABORT, no CR0 = 0, no CFGI_ALL/TLBI_NSNH_ALL).
  HostRig rig("", "inline", options());
  auto first = rig.host->info();
  const uint64_t strtab = first.getStreamTable().getPa(), cmdq = first.getCmdqPa(),
                 evtq = first.getEvtqPa();
  REQUIRE(rig.host->submit(commands({cmdTlbi(0x30), cmdTlbi(0x30)})).wait(rig.ws).errno_ ==
          rpc::Errno::OK);
  const uint32_t prodBefore = rig.mmio.read32(off::CMDQ_PROD);
  REQUIRE(prodBefore != 0);
  const uint64_t cfgiAll = rig.smmuStat("cmdq_op_cfgi_ste_range");
  const uint64_t nsnhAll = rig.smmuStat("cmdq_op_tlbi_nsnh_all");

  auto frames = rig.sys.root.memoryRequest().send().wait(rig.ws).getFrames();
  auto second = HostQueue::create(rig.sys.composer.memory(), frames, rig.smmu,
                                  rig.sys.io.provider->getTimer(), options())
                    .wait(rig.ws);
  CHECK(second->stats().adopted == 1);
  auto info = second->info();
  CHECK(info.getStreamTable().getPa() == strtab);
  CHECK(info.getStreamTable().getTwoLevel() == first.getStreamTable().getTwoLevel());
  CHECK(info.getStreamTable().getLog2Size() == first.getStreamTable().getLog2Size());
  CHECK(info.getCmdqPa() == cmdq);
  CHECK(info.getCmdqLog2Size() == first.getCmdqLog2Size());
  CHECK(info.getEvtqPa() == evtq);
  CHECK((rig.mmio.read32(off::GBPA) & (1u << 20)) == 0);   // traffic never aborted
  CHECK(rig.mmio.read32(off::CR0) == CR0_ALL);
  CHECK(rig.smmuStat("cmdq_op_cfgi_ste_range") == cfgiAll);
  CHECK(rig.smmuStat("cmdq_op_tlbi_nsnh_all") == nsnhAll);
  // Its commands follow the old owner's in the same ring: one TLBI and its SYNC.
  CHECK(second->submit(commands({cmdTlbi(0x30)})).wait(rig.ws).errno_ == rpc::Errno::OK);
  CHECK(rig.mmio.read32(off::CMDQ_PROD) == prodBefore + 2);
}

TEST_CASE("smmu_queue host: submissions across ring wrap, SYNC per batch",
          "[smmu_queue][host][cmdq]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    // A 16-entry ring, batches of 4: 10 commands take 10 + 3 SYNCs = 13 slots.
    HostRig rig("", placement, options(4, 4), true);
    const uint64_t before = rig.smmuStat("cmdq_op_tlbi_nh_asid");
    uint64_t syncsBefore = rig.smmuStat("cmdq_op_sync");
    for (uint16_t round = 0; round < 5; round++) {
      auto cmds = kj::heapArrayBuilder<Command>(10);
      for (uint16_t i = 0; i < 10; i++) cmds.add(tagged(round, i));
      auto out = rig.submit(cmds.finish());
      CHECK(out.errno_ == rpc::Errno::OK);
      CHECK(out.executed == 10);
      CHECK(out.syncs == 3);
      CHECK(out.illegal.empty());
      CHECK(out.message == "");
    }
    CHECK(rig.smmuStat("cmdq_op_tlbi_nh_asid") - before == 50);
    CHECK(rig.smmuStat("cmdq_op_sync") - syncsBefore == 15);
    // PROD has wrapped several times: 4 (reset) + 5 x 13 = 69 entries, index + wrap 69 % 32.
    CHECK(rig.mmio.read32(off::CMDQ_PROD) == (69 & 0x1f));
    CHECK(rig.mmio.read32(off::CMDQ_CONS) == rig.mmio.read32(off::CMDQ_PROD));

    // What the SMMU was given: [4, SYNC, 4, SYNC, 2, SYNC] per submission, in order.
    auto batches = batchesOf(rig.spySmmu->given.slice(4, rig.spySmmu->given.size()));
    REQUIRE(batches.size() == 15);
    for (unsigned b = 0; b < 15; b++) {
      const unsigned round = b / 3, first = (b % 3) * 4;
      REQUIRE(batches[b].size() == (b % 3 == 2 ? 2u : 4u));
      for (unsigned i = 0; i < batches[b].size(); i++) {
        CHECK(batches[b][i] == tagged(round, first + i));
      }
    }
    // An empty submission is a barrier: one SYNC.
    auto empty = rig.submit(kj::heapArray<Command>(0));
    CHECK(empty.errno_ == rpc::Errno::OK);
    CHECK(empty.syncs == 1);
    CHECK(empty.executed == 0);
  }
}

TEST_CASE("smmu_queue host: Linux batching — full batches without a SYNC, one ending each "
          "submission (facts 3.1)",
          "[smmu_queue][host][cmdq]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    // The default policy, a 32-entry ring, batches of 64: 128 per-page TLBIs (two full batches)
    // are 128 commands + 1 SYNC, the ring wrapping under them with no SYNC inside.
    HostOptions o = options(5, 64, SyncPolicy::LINUX);
    CHECK(HostOptions().syncPolicy == SyncPolicy::LINUX);
    HostRig rig("", placement, o, true);
    const uint64_t syncsBefore = rig.smmuStat("cmdq_op_sync");
    const uint64_t batchesBefore = rig.host->stats().batches;
    auto cmds = kj::heapArrayBuilder<Command>(128);
    for (uint16_t i = 0; i < 128; i++) cmds.add(tagged(2, i));
    auto out = rig.submit(cmds.finish());
    CHECK(out.errno_ == rpc::Errno::OK);
    CHECK(out.executed == 128);
    CHECK(out.syncs == 1);
    CHECK(rig.smmuStat("cmdq_op_sync") - syncsBefore == 1);
    // issue_cmdlist calls: the first full batch (issued when the 65th command arrives), then
    // the submit's 64 + SYNC.
    CHECK(rig.host->stats().batches - batchesBefore == 2);
    auto batches = batchesOf(rig.spySmmu->given.slice(4, rig.spySmmu->given.size()));
    REQUIRE(batches.size() == 1);
    REQUIRE(batches[0].size() == 128);
    for (uint16_t i = 0; i < 128; i++) CHECK(batches[0][i] == tagged(2, i));
    // 65 commands: 64 issued without a SYNC, then 1 + SYNC.
    auto more = kj::heapArrayBuilder<Command>(65);
    for (uint16_t i = 0; i < 65; i++) more.add(tagged(3, i));
    auto second = rig.submit(more.finish());
    CHECK(second.syncs == 1);
    CHECK(second.executed == 65);
    // An empty submission is a lone SYNC (arm_smmu_cmdq_batch_submit with n = 0).
    auto empty = rig.submit(kj::heapArray<Command>(0));
    CHECK(empty.syncs == 1);
    // A caller may still ask for a SYNC per batch (the guest paths do).
    auto perBatch = kj::heapArrayBuilder<Command>(65);
    for (uint16_t i = 0; i < 65; i++) perBatch.add(tagged(4, i));
    auto third = rig.host->submit(perBatch.finish(), SyncPolicy::PER_BATCH).wait(rig.ws);
    CHECK(third.syncs == 2);
  }
}

TEST_CASE("smmu_queue host: a full ring makes producers wait for CONS",
          "[smmu_queue][host][cmdq]") {
  auto slow = GENERATE(false, true);
  DYNAMIC_SECTION((slow ? "SMMU consuming 3 entries per access" : "synchronous SMMU")) {
    // A 16-entry ring and a 200-command submission: the ring fills ~14 times.
    HostRig rig("", "inline", options(4, 64), true);
    rig.spySmmu->slowStep = slow ? 3 : 0;
    auto cmds = kj::heapArrayBuilder<Command>(200);
    for (uint16_t i = 0; i < 200; i++) cmds.add(tagged(1, i));
    auto out = rig.submit(cmds.finish());
    CHECK(out.errno_ == rpc::Errno::OK);
    CHECK(out.executed == 200);
    CHECK(out.syncs == 4);  // 64 + 64 + 64 + 8
    CHECK(rig.host->stats().queueFullWaits >= 12);
    if (slow) CHECK(rig.host->stats().consPolls > 0);
    auto batches = batchesOf(rig.spySmmu->given.slice(4, rig.spySmmu->given.size()));
    REQUIRE(batches.size() == 4);
    uint16_t next = 0;
    for (auto& b : batches) {
      for (auto& c : b) CHECK(c == tagged(1, next++));
    }
    CHECK(next == 200);
  }
}

TEST_CASE("smmu_queue host: concurrent submitters keep their order and never share a batch",
          "[smmu_queue][host][cmdq]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  auto slow = GENERATE(false, true);
  auto inflight = GENERATE(1u, 4u);
  DYNAMIC_SECTION(placement.cStr() << (slow ? " slow" : "") << " doorbells in flight "
                                   << inflight) {
    HostOptions o = options(5, 8);  // 32 entries, batches of 8
    o.maxDoorbellsInFlight = inflight;
    HostRig rig("", placement, o, true);
    rig.spySmmu->slowStep = slow ? 5 : 0;
    constexpr unsigned SUBMITTERS = 4, EACH = 6;
    kj::Vector<kj::Promise<SubmitOutcome>> pending;
    kj::Vector<unsigned> sizes;
    // Interleaved issue: submitter s's k-th submission has 1 + (7 s + 5 k) % 40 commands.
    for (unsigned k = 0; k < EACH; k++) {
      for (unsigned s = 0; s < SUBMITTERS; s++) {
        const unsigned n = 1 + (7 * s + 5 * k) % 40;
        auto cmds = kj::heapArrayBuilder<Command>(n);
        for (unsigned i = 0; i < n; i++) cmds.add(tagged(uint16_t(s * 100 + k), uint16_t(i)));
        sizes.add(n);
        pending.add(rig.host->submit(cmds.finish()));
      }
    }
    auto outcomes = kj::joinPromises(pending.releaseAsArray()).wait(rig.ws);
    for (auto i : kj::indices(outcomes)) {
      CHECK(outcomes[i].errno_ == rpc::Errno::OK);
      CHECK(outcomes[i].executed == sizes[i]);
      CHECK(outcomes[i].syncs == (sizes[i] + 7) / 8);
    }
    // Every batch belongs to one submission, submissions in issue order, indices in order.
    auto batches = batchesOf(rig.spySmmu->given.slice(4, rig.spySmmu->given.size()));
    size_t b = 0;
    for (unsigned k = 0; k < EACH; k++) {
      for (unsigned s = 0; s < SUBMITTERS; s++) {
        const unsigned n = 1 + (7 * s + 5 * k) % 40;
        unsigned i = 0;
        while (i < n) {
          REQUIRE(b < batches.size());
          auto& batch = batches[b++];
          REQUIRE(batch.size() == kj::min(8u, n - i));
          for (auto& c : batch) CHECK(c == tagged(uint16_t(s * 100 + k), uint16_t(i++)));
        }
      }
    }
    CHECK(b == batches.size());
  }
}

TEST_CASE("smmu_queue host: submissions that queue up together share one doorbell",
          "[smmu_queue][host][cmdq]") {
  HostRig rig("", "inline", options(8, 64));
  const uint64_t before = rig.host->stats().doorbells;
  kj::Vector<kj::Promise<SubmitOutcome>> pending;
  for (uint16_t s = 0; s < 16; s++) {
    pending.add(rig.host->submit(commands({cmdTlbi(0x11, s, 0), cmdTlbi(0x11, s, 1),
                                           cmdTlbi(0x11, s, 2), cmdTlbi(0x11, s, 3)})));
  }
  for (auto& o : kj::joinPromises(pending.releaseAsArray()).wait(rig.ws)) {
    CHECK(o.errno_ == rpc::Errno::OK);
    CHECK(o.executed == 4);
  }
  // 16 x (4 + SYNC) = 80 entries fit the 256-entry ring: one PROD write for all of them.
  CHECK(rig.host->stats().doorbells - before == 1);
  CHECK(rig.host->stats().syncs >= 16);
}

TEST_CASE("smmu_queue host: CERROR_ILL in the middle of a batch is reported and skipped",
          "[smmu_queue][host][cmdq][error]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  auto inflight = GENERATE(1u, 4u);
  DYNAMIC_SECTION(placement.cStr() << " doorbells in flight " << inflight) {
    HostOptions o = options(8, 4);
    o.maxDoorbellsInFlight = inflight;
    HostRig rig("", placement, o, true);
    const uint64_t asidBefore = rig.smmuStat("cmdq_op_tlbi_nh_asid");
    // 10 commands, batches of 4; index 5 is CFGI_VMS_PIDM (0x07, unsupported: CERROR_ILL) and
    // index 8 a TLBI_NH_ASID with a reserved dw1 bit set.
    auto bad = commands({cmdTlbi(0x11, 1, 0), cmdTlbi(0x11, 1, 1), cmdTlbi(0x11, 1, 2),
                         cmdTlbi(0x11, 1, 3), cmdTlbi(0x11, 1, 4), Cmd{0x07, 0},
                         cmdTlbi(0x11, 1, 6), cmdTlbi(0x11, 1, 7), Cmd{0x11 | (1ull << 32), 1},
                         cmdTlbi(0x11, 1, 9)});
    auto first = rig.host->submit(kj::mv(bad));
    auto second = rig.host->submit(commands({cmdTlbi(0x11, 2, 0), cmdTlbi(0x11, 2, 1)}));
    auto out = first.wait(rig.ws);
    CHECK(out.errno_ == rpc::Errno::E_IO);
    REQUIRE(out.illegal.size() == 2);
    CHECK(out.illegal[0] == 5);
    CHECK(out.illegal[1] == 8);
    CHECK(out.executed == 8);
    CHECK(out.syncs == 3);
    CHECK(out.message ==
          "CERROR_ILL: the SMMU refused command 5 (opcode 0x7), 8 (opcode 0x11); skipped, the "
          "others were executed");
    auto out2 = second.wait(rig.ws);
    CHECK(out2.errno_ == rpc::Errno::OK);
    CHECK(out2.executed == 2);

    // Every legal command ran, the illegal ones were replaced by SYNCs.
    CHECK(rig.smmuStat("cmdq_op_tlbi_nh_asid") - asidBefore == 8 + 2);
    CHECK(rig.smmuStat("cmdq_illegal") == 2);
    CHECK(rig.host->stats().illegal == 2);
    CHECK((rig.mmio.read32(off::CMDQ_CONS) >> 24 & 0x7f) == 0);
    CHECK(rig.mmio.read32(off::GERROR) == rig.mmio.read32(off::GERRORN));

    // Later submissions are unaffected.
    auto later = rig.submit(commands({cmdTlbi(0x11, 3, 0)}));
    CHECK(later.errno_ == rpc::Errno::OK);
    CHECK(later.executed == 1);
  }
}

TEST_CASE("smmu_queue host: pipelined doorbells keep FIFO order and recover from CERROR_ILL",
          "[smmu_queue][host][cmdq][error]") {
  HostOptions o = options(8, 64);
  o.maxDoorbellsInFlight = 4;
  HostRig rig("", "inline", o, true);
  const uint64_t doorbells = rig.host->stats().doorbells;
  rig.spySmmu->hold = true;  // every doorbell waits: the next submission gets its own
  auto a = rig.host->submit(commands({cmdTlbi(0x11, 1, 0), cmdTlbi(0x11, 1, 1)}));
  rig.ws.poll();
  auto b = rig.host->submit(commands({cmdTlbi(0x11, 2, 0), Cmd{0x07, 0}, cmdTlbi(0x11, 2, 2)}));
  rig.ws.poll();
  auto c = rig.host->submit(commands({cmdTlbi(0x11, 3, 0)}));
  rig.ws.poll();
  CHECK(rig.spySmmu->held() == 3);
  CHECK(rig.host->stats().doorbells - doorbells == 3);
  rig.spySmmu->release();

  auto outA = a.wait(rig.ws);
  auto outB = b.wait(rig.ws);
  auto outC = c.wait(rig.ws);
  CHECK(outA.errno_ == rpc::Errno::OK);
  CHECK(outB.errno_ == rpc::Errno::E_IO);
  REQUIRE(outB.illegal.size() == 1);
  CHECK(outB.illegal[0] == 1);
  CHECK(outB.executed == 2);
  CHECK(outC.errno_ == rpc::Errno::OK);
  CHECK(outC.executed == 1);
  CHECK(rig.host->stats().illegal == 1);
  // In order, one SYNC each; the illegal entry as written (the SMMU skipped it).
  auto batches = batchesOf(rig.spySmmu->given.slice(4, rig.spySmmu->given.size()));
  REQUIRE(batches.size() == 3);
  CHECK(batches[0][1] == command(cmdTlbi(0x11, 1, 1)));
  CHECK(batches[1][2] == command(cmdTlbi(0x11, 2, 2)));
  CHECK(batches[2][0] == command(cmdTlbi(0x11, 3, 0)));
  CHECK(rig.mmio.read32(off::CMDQ_CONS) == rig.mmio.read32(off::CMDQ_PROD));
}

TEST_CASE("smmu_queue host: CERROR_ABT is acknowledged and retried, then eIo",
          "[smmu_queue][host][cmdq][error]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    HostRig rig("", placement, options(1));  // a 2-entry ring: one TLBI and its SYNC
    const uint64_t base = rig.mmio.read64(off::CMDQ_BASE);
    // Behind the driver's back, the SMMU's CMDQ base moves outside memory: every fetch aborts.
    auto moveQueue = [&](uint64_t to) {
      rig.mmio.write32(off::CR0, CR0_SMMUEN | CR0_EVTQEN);
      rig.mmio.write64(off::CMDQ_BASE, to);
      rig.mmio.write32(off::CR0, CR0_ALL);
    };
    moveQueue((1ull << 62) | 0x1000 | 8);
    auto first = rig.host->submit(commands({cmdTlbi(0x11, 1, 1)}));
    auto queued = rig.host->submit(commands({cmdTlbi(0x11, 1, 3)}));  // no room: not written
    auto out = first.wait(rig.ws);
    CHECK(queued.wait(rig.ws).errno_ == rpc::Errno::E_IO);
    CHECK(out.errno_ == rpc::Errno::E_IO);
    CHECK(out.executed == 0);
    CHECK(kj::StringPtr(out.message).startsWith("command fetch aborted (CERROR_ABT) 8 times"));
    CHECK(rig.host->stats().fetchAborts == 9);
    CHECK(rig.smmuStat("cmdq_fetch_aborts") >= 9);

    // Back in memory: the next submission's doorbell acknowledges the pending abort, and the
    // SMMU runs the stale entry and the new one.
    CHECK((rig.mmio.read32(off::CMDQ_CONS) >> 24 & 0x7f) == 2);  // left stopped at CERROR_ABT
    moveQueue(base);
    const uint64_t before = rig.smmuStat("cmdq_op_tlbi_nh_asid");
    auto later = rig.submit(commands({cmdTlbi(0x11, 1, 2)}));
    CHECK(later.errno_ == rpc::Errno::OK);
    CHECK(rig.smmuStat("cmdq_op_tlbi_nh_asid") - before == 2);
    CHECK(rig.mmio.read32(off::GERROR) == rig.mmio.read32(off::GERRORN));
  }
}

TEST_CASE("smmu_queue host: a SYNC that never completes is eTimedOut, not a hang",
          "[smmu_queue][host][cmdq][error]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    HostOptions o = options();
    o.syncTimeout = 50 * kj::MILLISECONDS;
    HostRig rig("", placement, o);
    // The SMMU stops consuming: CR0.CMDQEN cleared behind the driver's back.
    rig.mmio.write32(off::CR0, CR0_SMMUEN | CR0_EVTQEN);
    auto& timer = rig.sys.io.provider->getTimer();
    auto start = timer.now();
    auto first = rig.host->submit(commands({cmdTlbi(0x11, 1, 1), cmdTlbi(0x11, 1, 2)}));
    auto second = rig.host->submit(commands({cmdTlbi(0x11, 1, 3)}));
    auto out = first.wait(rig.ws);
    CHECK(out.errno_ == rpc::Errno::E_TIMED_OUT);
    CHECK(out.executed == 0);
    CHECK(out.syncs == 1);
    CHECK(kj::StringPtr(out.message).startsWith("CMD_SYNC timeout after 50 ms"));
    CHECK(second.wait(rig.ws).errno_ == rpc::Errno::E_TIMED_OUT);
    auto elapsed = timer.now() - start;
    CHECK(elapsed >= 50 * kj::MILLISECONDS);
    CHECK(elapsed < 1 * kj::SECONDS);
    CHECK(rig.host->stats().timeouts == 2);

    // The SMMU resumes: the stale commands run, later submissions complete.
    const uint64_t before = rig.smmuStat("cmdq_op_tlbi_nh_asid");
    rig.mmio.write32(off::CR0, CR0_ALL);
    auto later = rig.submit(commands({cmdTlbi(0x11, 1, 4)}));
    CHECK(later.errno_ == rpc::Errno::OK);
    CHECK(rig.smmuStat("cmdq_op_tlbi_nh_asid") - before == 4);
  }
}

// ---- events -----------------------------------------------------------------------------------

TEST_CASE("smmu_queue host: events go to their StreamID's subscriber, the rest to a bounded log",
          "[smmu_queue][host][evtq]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    HostOptions o = options();
    o.twoLevelStreamTable = false;  // zeroed STEs: C_BAD_STE for every SID
    o.unroutedLog = 4;
    HostRig rig("", placement, o);
    kj::Vector<smmu::EventRecord> seen;
    auto subscription = rig.host->subscribe(5, kj::heap<CollectingSink>(seen));
    CHECK(rig.host->subscribed(5));
    CHECK(!rig.host->subscribed(6));

    fault(rig.smmu, rig.ws, 5, 2);
    fault(rig.smmu, rig.ws, 6, 10);
    auto drained = rig.host->drainEvents().wait(rig.ws);
    CHECK(!drained.lost);
    REQUIRE(seen.size() == 2);
    for (auto& r : seen) {
      CHECK(eventId(r) == 0x04);  // C_BAD_STE
      CHECK(eventSid(r) == 5);
    }
    auto& stats = rig.host->stats();
    CHECK(stats.eventsRead == 12);
    CHECK(stats.eventsRouted == 2);
    CHECK(stats.eventsUnrouted == 10);
    CHECK(stats.unroutedDropped == 6);

    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<rpc::SmmuQueue::UnroutedResults>();
    rig.host->unrouted(results, true);
    auto events = results.getEvents();
    REQUIRE(events.size() == 4);  // the newest 4 of 10
    for (unsigned i = 0; i < 4; i++) {
      CHECK(events[i].getType() == rpc::EventType::C_BAD_STE);
      CHECK(events[i].getSid() == 6);
      CHECK(events[i].getRaw()[0] == ((6ull << 32) | 0x04));
    }
    CHECK(results.getDropped() == 6);
    CHECK(results.getOverflows() == 0);
    auto again = message.initRoot<rpc::SmmuQueue::UnroutedResults>();
    rig.host->unrouted(again, false);
    CHECK(again.getEvents().size() == 0);  // cleared

    // Dropping the subscription routes SID 5 to the log.
    subscription = nullptr;
    CHECK(!rig.host->subscribed(5));
    fault(rig.smmu, rig.ws, 5);
    rig.host->drainEvents().wait(rig.ws);
    CHECK(seen.size() == 2);
    CHECK(stats.eventsUnrouted == 11);
  }
}

TEST_CASE("smmu_queue host: an EVTQ overflow is detected, counted and acknowledged",
          "[smmu_queue][host][evtq]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    HostOptions o = options();
    o.twoLevelStreamTable = false;
    o.evtqLog2Size = 2;  // 4 records
    HostRig rig("", placement, o);
    fault(rig.smmu, rig.ws, 7, 20);  // all recorded before any interrupt is served
    auto drained = rig.host->drainEvents().wait(rig.ws);
    CHECK(drained.lost);
    CHECK(rig.host->stats().evtqOverflows == 1);
    CHECK(rig.host->stats().eventsRead == 4);
    CHECK(rig.smmuStat("evtq_lost_full") == 16);
    // Acknowledged: CONS.OVACKFLG follows PROD.OVFLG, and the next drain reports nothing lost.
    CHECK((rig.mmio.read32(off::EVTQ_PROD) >> 31) == (rig.mmio.read32(off::EVTQ_CONS) >> 31));
    CHECK(!rig.host->drainEvents().wait(rig.ws).lost);
    fault(rig.smmu, rig.ws, 7, 3);
    auto after = rig.host->drainEvents().wait(rig.ws);
    CHECK(!after.lost);
    CHECK(rig.host->stats().eventsRead == 7);
    CHECK(rig.host->stats().evtqOverflows == 1);
  }
}

TEST_CASE("smmu_queue host: stage-1 events of a vmaster's StreamID go to it, stage-2 ones never",
          "[smmu_queue][host][evtq][vmaster]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    HostOptions o = options();
    o.twoLevelStreamTable = false;
    HostRig rig("", placement, o);
    const uint64_t strtab = rig.host->info().getStreamTable().getPa();
    constexpr uint32_t S1_SID = 10, S2_SID = 11, PLAIN_SID = 12;

    // SID 10: stage 1 through an empty table (CD.R = 1): F_TRANSLATION, S2 = 0.
    BasicTables<Arena> s1(rig.arena, 12, 48, 0);
    uint64_t cd = rig.arena.alloc(64, 64);
    CdParams cdp;
    cdp.ttb0 = s1.root();
    rig.mmio.writeWords(cd, cdS1(cdp));
    rig.mmio.writeWords(strtab + S1_SID * 64, steS1(cd));
    // SID 11: stage 2 through an empty table (S2R = 1): F_TRANSLATION, S2 = 1.
    BasicTables<Arena> s2(rig.arena, 12, 48, 0);
    S2Params s2p;
    s2p.ttb = s2.root();
    rig.mmio.writeWords(strtab + S2_SID * 64, steS2(s2p));
    rig.mmio.writeWords(strtab + PLAIN_SID * 64, steS1(cd));

    CollectingVmaster vmaster;
    rig.host->setVmaster(S1_SID, vmaster);
    rig.host->setVmaster(S2_SID, vmaster);
    kj::Vector<smmu::EventRecord> subscriber;
    auto sub1 = rig.host->subscribe(S1_SID, kj::heap<CollectingSink>(subscriber));
    auto sub2 = rig.host->subscribe(S2_SID, kj::heap<CollectingSink>(subscriber));

    fault(rig.smmu, rig.ws, S1_SID, 2);
    fault(rig.smmu, rig.ws, S2_SID, 3);
    fault(rig.smmu, rig.ws, PLAIN_SID, 1);
    rig.host->drainEvents().wait(rig.ws);

    REQUIRE(vmaster.seen.size() == 2);
    for (auto& r : vmaster.seen) {
      CHECK((r.dw[0] & 0xff) == 0x10);              // F_TRANSLATION
      CHECK((r.dw[0] >> 32) == S1_SID);
      CHECK((r.dw[1] >> 39 & 1) == 0);              // S2 = 0
    }
    REQUIRE(subscriber.size() == 3);  // the stage-2 faults: never a guest's
    for (auto& r : subscriber) {
      CHECK(eventId(r) == 0x10);
      CHECK(eventSid(r) == S2_SID);
      CHECK((r.dw[1] >> 39 & 1) == 1);
    }
    CHECK(rig.host->stats().eventsToGuests == 2);
    CHECK(rig.host->stats().eventsRouted == 3);
    CHECK(rig.host->stats().eventsUnrouted == 1);  // SID 12: no vmaster, no subscriber

    // Cleared: SID 10's stage-1 events go to its subscriber.
    rig.host->clearVmaster(S1_SID);
    fault(rig.smmu, rig.ws, S1_SID, 1);
    rig.host->drainEvents().wait(rig.ws);
    CHECK(vmaster.seen.size() == 2);
    REQUIRE(subscriber.size() == 4);
    CHECK(eventSid(subscriber[3]) == S1_SID);
  }
}

}  // namespace
}  // namespace nb::smmuq::testing
