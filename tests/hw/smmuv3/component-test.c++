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
    CHECK(text.startsWith("starting 'smmu0' (hw/smmuv3)"));
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
    CHECK(text.startsWith("starting 'smmu0' (hw/smmuv3)"));
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
