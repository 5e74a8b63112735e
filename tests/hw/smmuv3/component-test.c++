// tests/hw/smmuv3: the "hw/smmuv3" component — settings, the RPC face (MMIO, translate,
// info), interrupts to subscribers, structures and counters; inline and process-placed.

#include "tests/hw/hw-testing.h"

#include <capnp/serialize-text.h>

namespace nb::hw::testing {
namespace {

using namespace nb::smmu::testing;

kj::String manifest(kj::StringPtr settings = "", kj::StringPtr placement = "inline") {
  return kj::str(
      "[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n[[hw.smmuv3]]\nname = \"smmu0\"\n",
      "placement = \"", placement, "\"\n", settings);
}

kj::String errorsText(kj::StringPtr text) { return kj::strArray(manifestErrors(text), "\n"); }

uint64_t counter(TestSystem& sys, kj::StringPtr instance, kj::StringPtr name) {
  for (auto& s : sys.stats()) {
    if (s.name != instance) continue;
    for (auto& c : s.counters) {
      if (c.name == name) return c.value;
    }
  }
  KJ_FAIL_REQUIRE("no such counter", instance, name);
}

TEST_CASE("hw/smmuv3: info and the ID registers follow the manifest settings",
          "[smmuv3][component]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(
        manifest("sid_bits = 8\nssid_bits = 5\noas = 44\ngran16k = false\nhttu = \"access\"\n"
                 "stage2 = false\niotlb_entries = 16\n",
                 placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto response = smmu.infoRequest().send().wait(sys.io.waitScope);
    auto info = response.getInfo();
    CHECK(info.getName() == "smmu0");
    CHECK(info.getMmioSize() == 0x20000);
    auto f = info.getFeatures();
    CHECK(f.getStage1());
    CHECK(!f.getStage2());
    CHECK(!f.getNesting());
    CHECK(f.getHttu() == rpc::Httu::ACCESS);
    CHECK(f.getSidBits() == 8);
    CHECK(f.getSsidBits() == 5);
    CHECK(f.getOas() == 44);
    CHECK(!f.getGran16k());
    CHECK(f.getIotlbEntries() == 16);
    CHECK(f.getConfigCacheEntries() == 1024);  // default

    // The same values through MMIO, decoded with literal positions (facts 1.8).
    Arena arena(sys.composer);
    RpcSmmu mmio(smmu, sys.io.waitScope, arena);
    uint32_t idr0 = mmio.read32(off::IDR0), idr1 = mmio.read32(off::IDR1),
             idr5 = mmio.read32(off::IDR5);
    CHECK(info.getIdr()[0] == idr0);
    CHECK(info.getIdr()[1] == idr1);
    CHECK(info.getIdr()[5] == idr5);
    CHECK((idr0 & 1) == 0);           // S2P
    CHECK((idr0 >> 1 & 1) == 1);      // S1P
    CHECK((idr0 >> 6 & 3) == 1);      // HTTU = access flag
    CHECK((idr1 & 0x3f) == 8);        // SIDSIZE
    CHECK((idr1 >> 6 & 0x1f) == 5);   // SSIDSIZE
    CHECK((idr5 & 7) == 4);           // OAS 44 bits
    CHECK((idr5 >> 4 & 7) == 0b101);  // GRAN64K, no GRAN16K, GRAN4K
  }
}

TEST_CASE("hw/smmuv3: out-of-range settings are manifest errors with positions",
          "[smmuv3][component]") {
  auto text = manifest(
      "sid_bits = 40\noas = 50\nhttu = \"dirty\"\ncmdq_log2_max = 20\n"
      "iotlb_entries = -1\nstage3 = true\n");
  // In key order, as the manifest validator walks a table.
  CHECK(errorsText(text) ==
        "test.toml:11:17: hw.smmu0.cmdq_log2_max: must be between 0 and 19, not 20\n"
        "test.toml:10:8: hw.smmu0.httu: must be one of \"none\", \"access\", \"access_dirty\"\n"
        "test.toml:12:17: hw.smmu0.iotlb_entries: must be between 0 and 1048576, not -1\n"
        "test.toml:9:7: hw.smmu0.oas: must be 32, 36, 40, 42, 44, 48 or 52 (bits), not 50\n"
        "test.toml:8:12: hw.smmu0.sid_bits: must be between 0 and 32, not 40\n"
        "test.toml:13:1: hw.smmu0.stage3: unknown key 'stage3' for 'hw/smmuv3' (did you mean "
        "'stage1'?)");
}

TEST_CASE("hw/smmuv3: an impossible feature combination fails the start, naming the instance",
          "[smmuv3][component]") {
  auto io = TestSystem::setup();
  Composer composer(io, testRegistry(), planOf(manifest("oas = 52\ngran64k = false\n")),
                    ComposerOptions{fixtureHostPath(), [](kj::StringPtr) {}});
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
    auto text = kj::str(e->getDescription());
    INFO(text.cStr());
    CHECK(text.startsWith("test.toml:5:1: starting 'smmu0' (hw/smmuv3)"));  // [[hw.smmuv3]]
    CHECK(strstr(text.cStr(), "52-bit OAS needs the 64K granule") != nullptr);
  } else {
    FAIL("the SMMU started");
  }
  composer.shutdown().wait(io.waitScope);
}

TEST_CASE("hw/smmuv3: the IOTLB's ways are checked: a range per key, entries a multiple",
          "[smmuv3][component][tlb]") {
  CHECK(errorsText(manifest("iotlb_ways = 17\n")) ==
        "test.toml:8:14: hw.smmu0.iotlb_ways: must be between 1 and 16, not 17");
  auto io = TestSystem::setup();
  Composer composer(io, testRegistry(), planOf(manifest("iotlb_entries = 12\niotlb_ways = 8\n")),
                    ComposerOptions{fixtureHostPath(), [](kj::StringPtr) {}});
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
    auto text = kj::str(e->getDescription());
    INFO(text.cStr());
    CHECK(text.startsWith("test.toml:5:1: starting 'smmu0' (hw/smmuv3)"));  // [[hw.smmuv3]]
    CHECK(strstr(text.cStr(), "iotlb_entries must be a multiple of iotlb_ways") != nullptr);
  } else {
    FAIL("the SMMU started");
  }
  composer.shutdown().wait(io.waitScope);
}

TEST_CASE("hw/smmuv3: MMIO over RPC — single accesses, batches and the MMIO-only facet",
          "[smmuv3][component][mmio]") {
  TestSystem sys(manifest());
  auto smmu = sys.main<rpc::Smmuv3>("smmu0");
  auto& ws = sys.io.waitScope;
  Arena arena(sys.composer);
  RpcSmmu r(smmu, ws, arena);

  r.write32(off::CR0, CR0_EVTQEN);
  CHECK(r.read32(off::CR0ACK) == CR0_EVTQEN);  // the synchronous model acknowledges at once
  r.write64(off::STRTAB_BASE, 0x80010000);
  CHECK(r.read64(off::STRTAB_BASE) == 0x80010000);
  CHECK(r.read32(0x1234) == 0);  // unknown offsets read as zero

  auto batch = smmu.batchRequest();
  auto accesses = batch.initAccesses(4);
  accesses[0].setOffset(off::CR0);
  accesses[0].setWrite(true);
  accesses[0].setValue(CR0_EVTQEN | CR0_CMDQEN);
  accesses[1].setOffset(off::CR0ACK);
  accesses[2].setOffset(off::STRTAB_BASE);
  accesses[2].setSize(8);
  accesses[3].setOffset(off::IDR1);
  auto batchResponse = batch.send().wait(ws);
  auto values = batchResponse.getValues();
  REQUIRE(values.size() == 4);
  CHECK(values[0] == 0);
  CHECK(values[1] == (CR0_EVTQEN | CR0_CMDQEN));
  CHECK(values[2] == 0x80010000);
  CHECK((values[3] & 0x3f) == 16);

  auto facet = smmu.mmioRequest().send().wait(ws).getMmio();
  auto read = facet.readRequest();
  read.setOffset(off::CR0);
  CHECK(read.send().wait(ws).getValue() == (CR0_EVTQEN | CR0_CMDQEN));
  auto write = facet.writeRequest();
  write.setOffset(off::CR0);
  write.setValue(0);
  write.send().wait(ws);
  CHECK(r.read32(off::CR0ACK) == 0);
  CHECK(counter(sys, "smmu0", "mmio_writes") == 4);
  CHECK(counter(sys, "smmu0", "mmio_reads") == 8);
}

TEST_CASE("hw/smmuv3: translate returns faults and aborts as data",
          "[smmuv3][component][translate]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    auto translate = [&](kj::StringPtr text) {
      auto req = smmu.translateRequest();
      capnp::TextCodec().decode(text, req);
      return req.send().wait(ws);
    };

    // SMMUEN = 0: GBPA decides (reset value: bypass).
    auto bypass = translate("(sid = 7, iova = 0x1234)");
    REQUIRE(bypass.isOk());
    CHECK(bypass.getOk().getPa() == 0x1234);
    r.write32(off::GBPA, (1u << 31) | (1u << 20));
    CHECK(translate("(sid = 7, iova = 0x1234)").getAborted() == rpc::AbortCause::GBPA);

    r.setUp(4);
    r.writeSte(1, steAbort());
    r.writeSte(2, steBypass());
    CHECK(translate("(sid = 1, iova = 0x1000)").getAborted() == rpc::AbortCause::STE);
    CHECK(translate("(sid = 2, iova = 0x5000, write = true)").getOk().getPa() == 0x5000);

    // STE V = 0: C_BAD_STE with SSV/SSID (facts 3.2), the raw record as the EVTQ has it.
    auto bad = translate("(sid = 3, ssid = 9, iova = 0xabc000, write = true)");
    REQUIRE(bad.isFault());
    auto fault = bad.getFault();
    CHECK(fault.getType() == rpc::EventType::C_BAD_STE);
    CHECK(fault.getId() == 0x04);
    CHECK(fault.getSid() == 3);
    CHECK(fault.getSsv());
    CHECK(fault.getSsid() == 9);
    Rec expected{0x04, 3};
    expected.ssid = 9u;
    NB_REQUIRE_RECORD(recordOf(fault), expected.make());
    auto events = r.drainEvents();
    REQUIRE(events.size() == 1);
    NB_REQUIRE_RECORD(events[0], expected.make());

    // Beyond the 16-entry table: C_BAD_STREAMID.
    auto beyond = translate("(sid = 16, iova = 0)");
    REQUIRE(beyond.isFault());
    CHECK(beyond.getFault().getType() == rpc::EventType::C_BAD_STREAMID);

    // A batch stops at its first failure.
    auto batch = smmu.translateBatchRequest();
    auto txns = batch.initTransactions(3);
    txns[0].setSid(2);
    txns[0].setIova(0x1000);
    txns[1].setSid(5);
    txns[1].setIova(0x2000);
    txns[2].setSid(2);
    txns[2].setIova(0x3000);
    auto batchResponse = batch.send().wait(ws);
    auto results = batchResponse.getResults();
    REQUIRE(results.size() == 2);
    CHECK(results[0].getOk().getPa() == 0x1000);
    CHECK(results[1].getFault().getType() == rpc::EventType::C_BAD_STE);
    CHECK(results[1].getFault().getInputAddr() == 0);  // C_BAD_STE carries no address

    // An SSID wider than 20 bits is a broken contract, not a hardware outcome.
    auto wide = smmu.translateRequest();
    wide.setSid(2);
    wide.setSsid(1u << 20);
    CHECK_THROWS_WITH(wide.send().wait(ws), Catch::Contains("SubstreamIDs are 20 bits"));
  }
}

TEST_CASE("hw/smmuv3: stream-table conformance over RPC (SPAN, RECINVSID)",
          "[smmuv3][component][conformance]") {
  // IHI 0070 §3.3.2 (L1STD.SPAN above SPLIT + 1 is out of range: C_BAD_STREAMID) and §6.3.12
  // (CR2.RECINVSID = 0: C_BAD_STREAMID terminates the transaction but is not recorded).
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    auto translate = [&](uint32_t sid) {
      auto req = smmu.translateRequest();
      req.setSid(sid);
      req.setIova(0x4000);
      return req.send().wait(ws);
    };
    r.setUp(4);  // linear, 16 STEs
    r.writeSte(2, steBypass());
    CHECK(translate(2).getOk().getPa() == 0x4000);
    auto beyond = translate(16);
    REQUIRE(beyond.isFault());
    CHECK(beyond.getFault().getType() == rpc::EventType::C_BAD_STREAMID);
    CHECK(r.drainEvents().size() == 1);

    r.write32(off::CR0, 0);
    r.write32(off::CR2, CR2_PTM);  // RECINVSID = 0
    // Two-level, SPLIT 8, 16 L1 descriptors: SPAN 9 (= SPLIT + 1) and SPAN 10 (out of range).
    uint64_t l1 = r.arena.alloc(16 * 8);
    uint64_t l2 = r.arena.alloc(256 * 64);
    r.writeWords(l2 + 5 * 64, steBypass());
    r.arena.mem().store64(l1 + 1 * 8, l2 | 9);
    r.arena.mem().store64(l1 + 2 * 8, l2 | 10);
    r.write64(off::STRTAB_BASE, l1);
    r.write32(off::STRTAB_BASE_CFG, (1u << 16) | (8u << 6) | 12);
    r.write32(off::CR0, CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN);
    r.invalidateAll();
    CHECK(translate(0x105).getOk().getPa() == 0x4000);
    auto outOfRange = translate(0x205);
    REQUIRE(outOfRange.isFault());
    CHECK(outOfRange.getFault().getType() == rpc::EventType::C_BAD_STREAMID);
    CHECK(r.drainEvents().size() == 0);  // RECINVSID = 0: not recorded
    r.write32(off::CR0, 0);
    r.write32(off::CR2, CR2_PTM | CR2_RECINVSID);
    r.write32(off::CR0, CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN);
    CHECK(translate(0x205).isFault());
    CHECK(r.drainEvents().size() == 1);
  }
}

TEST_CASE("hw/smmuv3: STE/CD legality over RPC", "[smmuv3][component][conformance]") {
  // IHI 0070 §5.4: CD.TTB0 beyond the effective IPS is an ILLEGAL CD (C_BAD_CD), not a walk-time
  // F_ADDR_SIZE; §5.2: a 4K stage-2 start at level 0 on an SMMU whose OAS is 42 bits is an
  // ILLEGAL STE (C_BAD_STE); HA without HTTU is an ILLEGAL CD.
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("oas = 42\nhttu = \"none\"\n", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    r.setUp(4);
    auto typeOf = [&](uint32_t sid) {
      auto req = smmu.translateRequest();
      req.setSid(sid);
      req.setIova(0x1000);
      auto response = req.send().wait(ws);
      REQUIRE(response.isFault());
      return response.getFault().getType();
    };
    uint64_t table = arena.alloc(4096);
    CdParams cp;
    cp.ips = 3;                      // 42 bits
    cp.ttb0 = table | (1ull << 42);  // beyond them
    uint64_t cd1 = arena.alloc(64);
    r.writeWords(cd1, cdS1(cp));
    r.writeSte(1, steS1(cd1));
    CHECK(typeOf(1) == rpc::EventType::C_BAD_CD);
    cp.ttb0 = table;
    cp.ha = true;                    // no HTTU
    uint64_t cd2 = arena.alloc(64);
    r.writeWords(cd2, cdS1(cp));
    r.writeSte(2, steS1(cd2));
    CHECK(typeOf(2) == rpc::EventType::C_BAD_CD);
    cp.ha = false;
    uint64_t cd3 = arena.alloc(64);
    r.writeWords(cd3, cdS1(cp));
    r.writeSte(3, steS1(cd3));
    CHECK(typeOf(3) == rpc::EventType::F_TRANSLATION);  // legal: the empty table is walked
    S2Params sp;
    sp.ias = 42;
    sp.sl0 = 2;                      // 4K level 0: needs OAS >= 44
    sp.ps = 3;
    sp.ttb = table;
    r.writeSte(4, steS2(sp));
    CHECK(typeOf(4) == rpc::EventType::C_BAD_STE);
    sp.sl0 = 1;                      // level 1 with 8 concatenated tables: legal
    sp.ttb = arena.alloc(8 * 4096, 8 * 4096);
    r.writeSte(5, steS2(sp));
    CHECK(typeOf(5) == rpc::EventType::F_TRANSLATION);
  }
}

TEST_CASE("hw/smmuv3: address-size faults over RPC", "[smmuv3][component][conformance]") {
  // IHI 0070 §3.4.1: bypass output above the OAS and stage-2-only input above the IAS (= OAS)
  // are stage-1 F_ADDR_SIZE faults on the input (S2 = 0, CLASS = IN).
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("oas = 40\n", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    r.setUp(4);
    r.writeSte(1, steBypass());
    S2Params sp;
    sp.ias = 40;
    sp.sl0 = 1;
    sp.ps = 2;
    sp.ttb = arena.alloc(2 * 4096, 2 * 4096);
    r.writeSte(2, steS2(sp));
    auto translate = [&](uint32_t sid, uint64_t iova) {
      auto req = smmu.translateRequest();
      req.setSid(sid);
      req.setIova(iova);
      return req.send().wait(ws);
    };
    CHECK(translate(1, (1ull << 40) - 4096).getOk().getPa() == (1ull << 40) - 4096);
    for (uint32_t sid : {1u, 2u}) {
      auto beyond = translate(sid, 1ull << 40);
      REQUIRE(beyond.isFault());
      CHECK(beyond.getFault().getType() == rpc::EventType::F_ADDR_SIZE);
      CHECK(!beyond.getFault().getS2());
      CHECK(beyond.getFault().getClass() == rpc::FaultClass::IN);
    }
    CHECK(r.drainEvents().size() == 2);
  }
}

TEST_CASE("hw/smmuv3: reset over RPC", "[smmuv3][component][reset][conformance]") {
  // interfaces/smmuv3.capnp reset (IHI 0070 §6.3 reset values): a live SMMU reset by a driver
  // reads back CR0 = CR0ACK = 0, GBPA = SHCFG incoming (0x1000), GERROR = GERRORN = 0, its
  // queues empty and its caches cold.
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    uint32_t idr0 = r.read32(off::IDR0);
    r.setUp(4);
    r.writeSte(1, steBypass());
    auto translate = [&](uint64_t iova) {
      auto req = smmu.translateRequest();
      req.setSid(1);
      req.setIova(iova);
      return req.send().wait(ws);
    };
    CHECK(translate(0x1000).isOk());
    r.submit({cmdSync(), {0xff, 0}});  // CERROR_ILL
    CHECK(r.read32(off::GERROR) == 1);
    smmu.resetRequest().send().wait(ws);
    CHECK(r.read32(off::CR0) == 0);
    CHECK(r.read32(off::CR0ACK) == 0);
    CHECK(r.read32(off::GBPA) == 0x1000);
    CHECK(r.read32(off::GERROR) == 0);
    CHECK(r.read32(off::GERRORN) == 0);
    CHECK(r.read32(off::CMDQ_CONS) == 0);
    CHECK(r.read32(off::CMDQ_PROD) == 0);
    CHECK(r.read32(off::EVTQ_PROD) == 0);
    CHECK(r.read32(off::IDR0) == idr0);
    CHECK(counter(sys, "smmu0", "iotlb_entries") == 0);
    CHECK(counter(sys, "smmu0", "resets") == 1);
    // Brought up again, a changed STE is seen without CFGI: nothing was cached across.
    r.setUp(4);
    r.writeSte(1, steAbort());
    CHECK(translate(0x1000).isAborted());
  }
}

TEST_CASE("hw/smmuv3: reserved and feature-denied commands are CERROR_ILL over RPC",
          "[smmuv3][component][conformance]") {
  // IHI 0070 §4.4.1: a range TLBI with TG != 0 and NUM = SCALE = TTL = 0 is reserved; §4.1.3
  // with IDR0.S2P = 0: TLBI_S12_VMALL is illegal; STALL_MODEL = 0b01: CMD_RESUME is illegal.
  // Each stops the queue with CMDQ_CONS.ERR = CERROR_ILL (facts 1.6) and runs nothing.
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("stage2 = false\n", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    r.setUp(4);
    const Cmd cmds[] = {cmdTlbi(0x12, 0, 1, 0x4000'0000, 1, 0, 0, 0),  // reserved range
                        cmdTlbi(0x28, 1),                             // S12_VMALL without S2
                        {0x44 | (1ull << 32), 0}};                    // RESUME, no stalls
    uint32_t index = 0;
    for (auto& c : cmds) {
      uint32_t cons = r.submit({c});
      CHECK((cons >> 24 & 0x7f) == 1);
      CHECK((cons & 0xff) == index);
      // Linux's recovery: the entry becomes a CMD_SYNC, then GERRORN acknowledges.
      uint64_t slot = r.cmdq + uint64_t(index) * 16;
      arena.mem().store64(slot, cmdSync().dw0);
      arena.mem().store64(slot + 8, 0);
      r.write32(off::GERRORN, r.read32(off::GERROR));
      CHECK(r.read32(off::CMDQ_CONS) == index + 1);
      index++;
    }
    CHECK(counter(sys, "smmu0", "cmdq_illegal") == 3);
    CHECK(counter(sys, "smmu0", "cmdq_op_tlbi_nh_va") == 0);
    CHECK(r.submit({cmdTlbi(0x12, 0, 1, 0x4000'0000, 1, 0, 0, 3), cmdSync()}) == index + 2);
  }
}

class SinkImpl final : public rpc::IrqSink::Server {
public:
  explicit SinkImpl(kj::Vector<rpc::SmmuIrq>& seen) : seen(seen) {}

protected:
  kj::Promise<void> interrupt(InterruptContext context) override {
    seen.add(context.getParams().getIrq());
    return kj::READY_NOW;
  }

private:
  kj::Vector<rpc::SmmuIrq>& seen;
};

TEST_CASE("hw/smmuv3: interrupts reach subscribers until the subscription is dropped",
          "[smmuv3][component][irq]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest("", placement));
    auto smmu = sys.main<rpc::Smmuv3>("smmu0");
    auto& ws = sys.io.waitScope;
    Arena arena(sys.composer);
    RpcSmmu r(smmu, ws, arena);
    r.setUp(4);  // IRQ_CTRL: GERROR and EVTQ interrupts enabled

    kj::Vector<rpc::SmmuIrq> seen;
    auto subscribe = smmu.subscribeRequest();
    subscribe.setSink(kj::heap<SinkImpl>(seen));
    auto subscription = subscribe.send().wait(ws).getSubscription();
    auto settle = [&]() {
      // A round trip behind the interrupt calls: they were sent first.
      for (int i = 0; i < 3; i++) r.read32(off::CR0);
    };

    auto fault = [&]() {
      auto req = smmu.translateRequest();
      req.setSid(3);  // STE V = 0: C_BAD_STE into the EVTQ
      req.send().wait(ws);
    };
    fault();
    settle();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == rpc::SmmuIrq::EVTQ);

    r.submit({Cmd{0xff, 0}});  // an illegal opcode: CERROR_ILL, GERROR.CMDQ_ERR
    r.submit({cmdSync(1)});    // nothing more runs while the error is active
    settle();
    REQUIRE(seen.size() == 2);
    CHECK(seen[1] == rpc::SmmuIrq::GERROR);

    subscription = nullptr;  // drop: unsubscribe
    settle();
    fault();
    settle();
    CHECK(seen.size() == 2);
    CHECK(counter(sys, "smmu0", "irq_evtq") == 2);
    CHECK(counter(sys, "smmu0", "irq_gerror") == 1);
    CHECK(counter(sys, "smmu0", "irq_delivered") == 2);
    CHECK(counter(sys, "smmu0", "irq_subscribers") == 0);
  }
}

TEST_CASE("hw/smmuv3: structures() reports the stream table and queues once programmed",
          "[smmuv3][component]") {
  TestSystem sys(manifest());
  auto structures = [&]() {
    auto all = sys.composer.structures().wait(sys.io.waitScope);
    REQUIRE(all.size() == 1);
    return kj::mv(kj::get<1>(all[0]));
  };
  CHECK(structures().size() == 0);
  Arena arena(sys.composer);
  RpcSmmu r(sys.main<rpc::Smmuv3>("smmu0"), sys.io.waitScope, arena);
  r.setUp(6);
  auto s = structures();
  REQUIRE(s.size() == 3);
  CHECK(s[0].kind == "stream_table");
  CHECK(s[0].name == "smmu0");
  CHECK(s[0].pa == r.strtab);
  CHECK(s[0].size == 64 * 64);
  CHECK(s[0].detail == "linear log2size=6");
  CHECK(s[1].kind == "cmdq");
  CHECK(s[1].pa == r.cmdq);
  CHECK(s[1].size == 16 << 8);
  CHECK(s[2].kind == "evtq");
  CHECK(s[2].pa == r.evtq);
  CHECK(s[2].size == 32 << 7);

  // Two-level: the L1 descriptor array.
  r.write32(off::CR0, 0);
  r.write32(off::STRTAB_BASE_CFG, (1u << 16) | (8u << 6) | 16);
  s = structures();
  CHECK(s[0].size == 256 * 8);
  CHECK(s[0].detail == "2-level log2size=16 split=8 (L1 descriptors)");
}

TEST_CASE("hw/smmuv3: stats are the model's counters, in snake_case", "[smmuv3][component]") {
  TestSystem sys(manifest());
  auto smmu = sys.main<rpc::Smmuv3>("smmu0");
  auto t = smmu.translateRequest();
  t.setIova(0x1000);
  t.send().wait(sys.io.waitScope);
  CHECK(counter(sys, "smmu0", "translations") == 1);
  CHECK(counter(sys, "smmu0", "bypassed") == 1);
  CHECK(counter(sys, "smmu0", "iotlb_hits") == 0);
  CHECK(counter(sys, "smmu0", "iotlb_capacity") == 4096);
  CHECK(counter(sys, "smmu0", "cmdq_op_tlbi_nh_va") == 0);
  CHECK(counter(sys, "smmu0", "evtq_written") == 0);
  for (auto& s : sys.stats()) {
    for (auto& c : s.counters) {
      for (char ch : c.name) {
        INFO(c.name.cStr());
        CHECK(((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'));
      }
    }
  }
}

}  // namespace
}  // namespace nb::hw::testing
