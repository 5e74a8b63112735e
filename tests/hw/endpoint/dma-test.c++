// tests/hw/endpoint: DMA from "hw/endpoint" instances through the SMMU over RPC — bytes land at
// the PA a hand-built stage-1 table says, faults and aborts move no byte, and the same DMA
// sequence gives identical results whichever instances run in their own processes.

#include "tests/hw/hw-testing.h"

#include <capnp/serialize-text.h>

namespace nb::hw::testing {
namespace {

using namespace nb::smmu::testing;

// ep0 (01:00.0) sits behind a root port: StreamID 0x100. ep1 (03:04.0) is a conventional PCI
// device behind a PCIe-to-PCI bridge: its DMA carries the bridge's RID 03:00.0, StreamID 0x300.
kj::String manifest(kj::StringPtr smmu = "inline", kj::StringPtr pci = "inline",
                    kj::StringPtr endpoints = "inline") {
  return kj::str(
      "[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n"
      "[[hw.smmuv3]]\nname = \"smmu0\"\nplacement = \"",
      smmu,
      "\"\n\n"
      "[[hw.pci]]\nname = \"pci0\"\nplacement = \"",
      pci,
      "\"\nuses = { smmu = \"smmu0\" }\n"
      "devices = [\n"
      "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1 },\n"
      "  { bdf = \"01:00.0\", parent = \"00:01.0\" },\n"
      "  { bdf = \"00:02.0\", kind = \"root_port\", secondary = 2 },\n"
      "  { bdf = \"02:00.0\", kind = \"pcie_to_pci_bridge\", parent = \"00:02.0\", secondary = 3 "
      "},\n"
      "  { bdf = \"03:04.0\", parent = \"02:00.0\" },\n"
      "]\n\n"
      "[[hw.endpoint]]\nname = \"ep0\"\nplacement = \"",
      endpoints,
      "\"\nuses = { pci = \"pci0\" }\n"
      "bdf = \"01:00.0\"\nmax_dma = \"1MiB\"\n\n"
      "[[hw.endpoint]]\nname = \"ep1\"\nplacement = \"",
      endpoints,
      "\"\nuses = { pci = \"pci0\" }\n"
      "bdf = \"03:04.0\"\n");
}

constexpr uint32_t EP0_SID = 0x100;
constexpr uint32_t EP1_SID = 0x300;
constexpr uint64_t IOVA = 0x1000'0000;

// The SMMU programmed as a driver would, with one stage-1 context for ep0:
//   IOVA + 0x0000 -> pages[0], + 0x1000 -> pages[1], + 0x2000 -> pages[2] (scattered),
//   IOVA + 0x3000 unmapped, IOVA + 0x4000 read-only -> pages[3],
//   IOVA + 0x5000 -> a PA outside memory.
struct Rig {
  explicit Rig(TestSystem& sys)
      : sys(sys),
        arena(sys.composer),
        smmu(sys.main<rpc::Smmuv3>("smmu0"), sys.io.waitScope, arena),
        tables(arena, 12, 48, 0) {
    smmu.setUp(10);  // 1024 STEs: SIDs 0x100 and 0x300 fit
    // Scattered data pages: every other frame, in descending order.
    uint64_t block = arena.alloc(8 * 4096);
    for (unsigned i = 0; i < 4; i++) pages[i] = block + (6 - 2 * i) * 4096ull;
    tables.map(IOVA, pages[0], 3, S1_RW);
    tables.map(IOVA + 0x1000, pages[1], 3, S1_RW);
    tables.map(IOVA + 0x2000, pages[2], 3, S1_RW);
    tables.map(IOVA + 0x4000, pages[3], 3, S1_RW | PTE_AP_RDONLY);
    tables.map(IOVA + 0x5000, OUTSIDE, 3, S1_RW);
    CdParams cd;
    cd.ttb0 = tables.root();
    uint64_t cdPa = arena.alloc(64);
    smmu.writeWords(cdPa, cdS1(cd));
    smmu.writeSte(EP0_SID, steS1(cdPa));
  }

  static constexpr uint64_t OUTSIDE = 0x1'0000'0000;  // beyond 0x80000000 + 64 MiB

  TestSystem& sys;
  Arena arena;
  RpcSmmu smmu;
  BasicTables<Arena> tables;
  uint64_t pages[4];
};

capnp::Response<rpc::DmaResult> dma(TestSystem& sys, kj::StringPtr endpoint, kj::StringPtr args) {
  auto req = sys.main<rpc::Endpoint>(endpoint).dmaRequest();
  capnp::TextCodec().decode(args, req);
  return req.send().wait(sys.io.waitScope);
}

capnp::Response<rpc::DmaResult> dmaWrite(TestSystem& sys, kj::StringPtr endpoint, uint64_t iova,
                                         kj::ArrayPtr<const kj::byte> bytes) {
  auto req = sys.main<rpc::Endpoint>(endpoint).dmaRequest();
  req.setIova(iova);
  req.setWrite(true);
  req.setData(bytes);
  return req.send().wait(sys.io.waitScope);
}

kj::Array<kj::byte> pattern(size_t n, unsigned seed) {
  auto out = kj::heapArray<kj::byte>(n);
  for (size_t i = 0; i < n; i++) out[i] = kj::byte((i * 7 + seed + (i >> 8)) & 0xff);
  return out;
}

kj::Array<kj::byte> readMem(TestSystem& sys, uint64_t pa, size_t n) {
  auto out = kj::heapArray<kj::byte>(n);
  sys.composer.memory().read(pa, out);
  return out;
}

bool same(kj::ArrayPtr<const kj::byte> a, kj::ArrayPtr<const kj::byte> b) {
  return a.size() == b.size() && memcmp(a.begin(), b.begin(), a.size()) == 0;
}

TEST_CASE("hw/endpoint: DMA through a stage-1 table lands each byte at its page's PA",
          "[endpoint][dma]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  // 0x2000 bytes from IOVA + 0x800: the end of page 0, all of page 1, the start of page 2.
  auto data = pattern(0x2000, 1);
  auto w = dmaWrite(sys, "ep0", IOVA + 0x800, data);
  REQUIRE(w.isOk());
  CHECK(w.getErrno() == rpc::Errno::OK);
  CHECK(w.getBytes() == 0x2000);
  CHECK(w.getTransactions() == 3);
  CHECK(same(readMem(sys, rig.pages[0] + 0x800, 0x800), data.slice(0, 0x800)));
  CHECK(same(readMem(sys, rig.pages[1], 0x1000), data.slice(0x800, 0x1800)));
  CHECK(same(readMem(sys, rig.pages[2], 0x800), data.slice(0x1800, 0x2000)));
  {
    auto head = readMem(sys, rig.pages[0], 0x800);
    size_t firstNonZero = 0;
    while (firstNonZero < head.size() && head[firstNonZero] == 0) firstNonZero++;
    INFO("first non-zero byte at " << firstNonZero << " pages " << std::hex << rig.pages[0] << " "
                                   << rig.pages[1]);
    CHECK(firstNonZero == 0x800);  // untouched
  }
  for (auto p : rig.pages) CHECK(p != 0);

  auto r = dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x800, ", length = 8192)"));
  REQUIRE(r.isOk());
  CHECK(same(r.getData(), data));
  // A short pattern repeats over the length.
  auto fill = dma(sys, "ep0",
                  kj::str("(iova = ", IOVA + 0xffe, ", length = 6, write = true, data = \"ab\")"));
  REQUIRE(fill.isOk());
  CHECK(kj::str(readMem(sys, rig.pages[0] + 0xffe, 2).asChars()) == "ab");
  CHECK(kj::str(readMem(sys, rig.pages[1], 4).asChars()) == "abab");

  auto reads = sys.main<rpc::Smmuv3>("smmu0");
  RpcSmmu view(reads, sys.io.waitScope, rig.arena);
  CHECK(view.drainEvents().size() == 0);
}

// Every granule, through stage 1, stage 2 and nested (stage-1 tables and CD read through
// stage 2): a DMA write that crosses a granule page boundary lands in two scattered pages.
TEST_CASE("hw/endpoint: DMA lands at the right PA for every granule, stage 1, stage 2 and nested",
          "[endpoint][dma]") {
  enum Mode { S1, S2, NESTED };
  struct Row {
    unsigned pageShift;
    Mode mode;
  };
  auto row = GENERATE(values<Row>({{12, S1}, {14, S1}, {16, S1}, {12, S2}, {14, S2}, {16, S2},
                                   {12, NESTED}, {14, NESTED}, {16, NESTED}}));
  const char* modeName[] = {"stage 1", "stage 2", "nested"};
  DYNAMIC_SECTION((1u << row.pageShift) / 1024 << "K " << modeName[row.mode]) {
    TestSystem sys(manifest());
    Arena arena(sys.composer);
    RpcSmmu smmu(sys.main<rpc::Smmuv3>("smmu0"), sys.io.waitScope, arena);
    smmu.setUp(10);
    const uint64_t page = 1ull << row.pageShift;
    constexpr uint64_t IPA_DELTA = 0x40'0000'0000;  // nested: IPA = PA + IPA_DELTA
    // Stage 2 (ias 40): start level and SL0 per granule (facts 4.4-4.5; 4K concatenates two
    // level-1 tables).
    const unsigned s2Start = row.pageShift == 12 ? 1 : row.pageShift == 14 ? 1 : 2;
    const unsigned s2Sl0 = row.pageShift == 12 ? 2 - s2Start : 3 - s2Start;
    // Two data pages, not adjacent, in the order opposite to their IOVAs.
    uint64_t block = arena.alloc(4 * page, page);
    uint64_t pa[2] = {block + 2 * page, block};

    BasicTables<Arena> s2(arena, row.pageShift, 40, s2Start);
    BasicTables<Arena> s1(arena, row.pageShift, 48, s1StartLevelFor(row.pageShift, 48),
                          row.mode == NESTED ? &s2 : nullptr, IPA_DELTA);
    S2Params sp;
    sp.pageShift = row.pageShift;
    sp.ias = 40;
    sp.sl0 = s2Sl0;
    sp.ps = 2;  // 40 bits
    sp.ttb = s2.root();
    CdParams cp;
    cp.pageShift = row.pageShift;
    cp.ias = 48;
    cp.ttb0 = s1.root();
    uint64_t cd = arena.alloc(64);
    for (unsigned i = 0; i < 2; i++) {
      uint64_t iova = IOVA + i * page;
      switch (row.mode) {
        case S1: s1.map(iova, pa[i], 3, S1_RW); break;
        case S2: s2.map(iova, pa[i], 3, S2_RW); break;
        case NESTED:
          s1.map(iova, pa[i] + IPA_DELTA, 3, S1_RW);
          s2.map(pa[i] + IPA_DELTA, pa[i], 3, S2_RW);
          break;
      }
    }
    switch (row.mode) {
      case S1:
        smmu.writeWords(cd, cdS1(cp));
        smmu.writeSte(EP0_SID, steS1(cd));
        break;
      case S2:
        smmu.writeSte(EP0_SID, steS2(sp));
        break;
      case NESTED:
        s2.map(cd + IPA_DELTA, cd, 3, S2_RW);
        smmu.writeWords(cd, cdS1(cp));
        smmu.writeSte(EP0_SID, steNested(cd + IPA_DELTA, sp));
        break;
    }
    auto data = pattern(page, row.pageShift);
    auto w = dmaWrite(sys, "ep0", IOVA + page / 2, data);
    INFO(kj::str(w).cStr());
    REQUIRE(w.isOk());
    CHECK(same(readMem(sys, pa[0] + page / 2, page / 2), data.slice(0, page / 2)));
    CHECK(same(readMem(sys, pa[1], page / 2), data.slice(page / 2, page)));
    CHECK(readMem(sys, pa[0], 8)[0] == 0);  // before the DMA's start: untouched
    auto r = dma(sys, "ep0", kj::str("(iova = ", IOVA + page / 2, ", length = ", page, ")"));
    REQUIRE(r.isOk());
    CHECK(same(r.getData(), data));
  }
}

TEST_CASE("hw/endpoint: a translation fault returns the event and moves no byte",
          "[endpoint][dma][fault]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  auto before = readMem(sys, rig.pages[2], 0x1000);
  // The last 0x100 bytes of page 2 (mapped) and the first 0x100 of page 3 (unmapped).
  auto w = dmaWrite(sys, "ep0", IOVA + 0x2f00, pattern(0x200, 2));
  REQUIRE(w.isFault());
  CHECK(w.getErrno() == rpc::Errno::OK);  // a hardware outcome, not a malformed request
  CHECK(w.getBytes() == 0);
  CHECK(w.getTransactions() == 2);
  auto fault = w.getFault();
  CHECK(fault.getType() == rpc::EventType::F_TRANSLATION);
  CHECK(fault.getSid() == EP0_SID);
  CHECK(fault.getInputAddr() == IOVA + 0x3000);
  CHECK(!fault.getRnw());
  CHECK(fault.getClass() == rpc::FaultClass::IN);
  CHECK(same(readMem(sys, rig.pages[2], 0x1000), before));  // page 2 was translated, not written

  // The EVTQ holds the same record (CD.R = 1).
  Rec expected{0x10, EP0_SID};
  expected.cls = 2;
  expected.input = IOVA + 0x3000;
  NB_REQUIRE_RECORD(recordOf(fault), expected.make());
  auto events = rig.smmu.drainEvents();
  REQUIRE(events.size() == 1);
  NB_REQUIRE_RECORD(events[0], expected.make());

  // Reads fault alike, with RnW = 1.
  auto r = dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x3008, ", length = 4)"));
  REQUIRE(r.isFault());
  CHECK(r.getFault().getRnw());
  CHECK(r.getFault().getInputAddr() == IOVA + 0x3008);
  CHECK(r.getData().size() == 0);
}

TEST_CASE("hw/endpoint: a write to a read-only page is F_PERMISSION; reads pass",
          "[endpoint][dma][fault]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  sys.composer.memory().store64(rig.pages[3], 0x1122334455667788);
  auto w = dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x4000, ", write = true, data = \"x\")"));
  REQUIRE(w.isFault());
  CHECK(w.getFault().getType() == rpc::EventType::F_PERMISSION);
  CHECK(sys.composer.memory().load64(rig.pages[3]) == 0x1122334455667788);
  auto r = dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x4000, ", length = 8)"));
  REQUIRE(r.isOk());
  CHECK(r.getData()[0] == 0x88);
}

TEST_CASE("hw/endpoint: aborts move no byte — PA outside memory, abort STE, GBPA",
          "[endpoint][dma][abort]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  auto before = readMem(sys, rig.pages[3], 0x1000);
  // Page 4 (read-only, translates) then page 5, whose PA is outside memory: nothing moves.
  auto outside = dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x4ff0, ", length = 32)"));
  REQUIRE(outside.isAborted());
  CHECK(outside.getAborted().getCause() == rpc::DmaAbortCause::EXTERNAL_ABORT);
  CHECK(outside.getAborted().getIova() == IOVA + 0x5000);
  CHECK(outside.getAborted().getPa() == Rig::OUTSIDE);
  CHECK(outside.getData().size() == 0);

  rig.smmu.writeSte(EP1_SID, steAbort());
  auto ste = dma(sys, "ep1", "(iova = 0x1000, write = true, data = \"zz\")");
  REQUIRE(ste.isAborted());
  CHECK(ste.getAborted().getCause() == rpc::DmaAbortCause::STE);

  rig.smmu.write32(off::CR0, 0);                         // SMMUEN = 0 ...
  rig.smmu.write32(off::GBPA, (1u << 31) | (1u << 20));  // ... and GBPA.ABORT
  auto gbpa = dmaWrite(sys, "ep0", rig.pages[3], pattern(16, 3));
  REQUIRE(gbpa.isAborted());
  CHECK(gbpa.getAborted().getCause() == rpc::DmaAbortCause::GBPA);
  CHECK(same(readMem(sys, rig.pages[3], 0x1000), before));
  CHECK(rig.smmu.drainEvents().size() == 0);  // aborts record no event
}

TEST_CASE("hw/endpoint: with the SMMU disabled and GBPA clear, DMA bypasses translation",
          "[endpoint][dma]") {
  TestSystem sys(manifest());
  Arena arena(sys.composer);
  uint64_t pa = arena.alloc(0x3000);
  auto w = dmaWrite(sys, "ep0", pa + 0xff0, pattern(0x20, 4));
  REQUIRE(w.isOk());
  CHECK(same(readMem(sys, pa + 0xff0, 0x20), pattern(0x20, 4)));
}

TEST_CASE("hw/endpoint: a device behind a PCIe-to-PCI bridge DMAs with the bridge's StreamID",
          "[endpoint][dma][pci]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  auto r = dma(sys, "ep1", "(iova = 0x2000, length = 4)");
  REQUIRE(r.isFault());
  CHECK(r.getFault().getType() == rpc::EventType::C_BAD_STE);
  CHECK(r.getFault().getSid() == EP1_SID);
  auto info = sys.main<rpc::Endpoint>("ep1").infoRequest().send().wait(sys.io.waitScope);
  CHECK(info.getDevice().getBdf() == "0000:03:04.0");
  CHECK(info.getDevice().getStreamId() == 0x320);  // 03:04.0
  CHECK(info.getDevice().getDmaStreamId() == EP1_SID);
}

TEST_CASE("hw/endpoint: substreams reach the SMMU; malformed requests are eInval",
          "[endpoint][dma]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  // The STE has no CD table for substreams (S1CDMax = 0): C_BAD_SUBSTREAMID with the SSID.
  auto ssid = dma(sys, "ep0", kj::str("(iova = ", IOVA, ", length = 4, ssid = 5)"));
  REQUIRE(ssid.isFault());
  CHECK(ssid.getFault().getType() == rpc::EventType::C_BAD_SUBSTREAMID);
  CHECK(ssid.getFault().getSsv());
  CHECK(ssid.getFault().getSsid() == 5);

  for (auto args : {"(iova = 0x1000)",                              // length 0
                    "(iova = 0x1000, length = 1048577)",            // above max_dma (1 MiB)
                    "(iova = 0x1000, length = 4, ssid = 1048576)",  // 2^20
                    "(iova = 0x1000, length = 4, write = true)",    // no data
                    "(iova = 0xfffffffffffffff0, length = 32)"}) {  // wraps
    INFO(args);
    auto r = dma(sys, "ep0", args);
    CHECK(r.getErrno() == rpc::Errno::E_INVAL);
    CHECK(r.getTransactions() == 0);
  }
  uint64_t invalid = 0;
  for (auto& s : sys.stats()) {
    for (auto& c : s.counters) {
      if (s.name == "ep0" && c.name == "invalid_requests") invalid = c.value;
    }
  }
  CHECK(invalid == 5);
}

TEST_CASE("hw/endpoint: an endpoint whose BDF is not an endpoint of the topology fails its start",
          "[endpoint]") {
  for (auto [bdf, message] :
       {std::pair<kj::StringPtr, kj::StringPtr>{"05:00.0", "no function with this BDF"},
        {"00:01.0", "not an endpoint"}}) {
    auto text =
        kj::str(manifest(), "\n[[hw.endpoint]]\nname = \"ep9\"\nuses = { pci = \"pci0\" }\n",
                "bdf = \"", bdf, "\"\n");
    auto io = TestSystem::setup();
    Composer composer(io, testRegistry(), planOf(text),
                      ComposerOptions{fixtureHostPath(), [](kj::StringPtr) {}});
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
      INFO(e->getDescription().cStr());
      CHECK(strstr(e->getDescription().cStr(), ": starting 'ep9' (hw/endpoint)") != nullptr);
      CHECK(e->getDescription().startsWith("test.toml:"));
      CHECK(strstr(e->getDescription().cStr(), message.cStr()) != nullptr);
    } else {
      FAIL("ep9 started");
    }
    composer.shutdown().wait(io.waitScope);
  }
  CHECK(std::string(
            kj::strArray(manifestErrors(kj::str(manifest(),
                                                "\n[[hw.endpoint]]\nname = \"ep9\"\n"
                                                "uses = { pci = \"pci0\" }\nbdf = \"1:2:3\"\n")),
                         "\n")
                .cStr()) ==
        "test.toml:37:7: hw.ep9.bdf: '1:2:3' is not a BDF: write bus:device.function in hex, e.g. "
        "\"03:00.0\"");
}

// One DMA sequence touching every outcome; its transcript (results as Cap'n Proto text, the
// bytes in memory, the SMMU's and endpoints' counters) must not depend on placement.
kj::String transcript(TestSystem& sys) {
  Rig rig(sys);
  kj::Vector<kj::String> out;
  capnp::TextCodec codec;
  auto record = [&](capnp::Response<rpc::DmaResult>&& r) {
    out.add(codec.encode(rpc::DmaResult::Reader(r)));
  };
  record(dmaWrite(sys, "ep0", IOVA + 0x800, pattern(0x2000, 5)));
  record(dma(sys, "ep0", kj::str("(iova = ", IOVA + 0xff8, ", length = 16)")));
  record(dmaWrite(sys, "ep0", IOVA + 0x2f00, pattern(0x200, 6)));  // F_TRANSLATION
  record(dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x4000, ", write = true, data = \"q\")")));
  record(dma(sys, "ep0", kj::str("(iova = ", IOVA + 0x4ff0, ", length = 32)")));  // outside
  record(dma(sys, "ep0", kj::str("(iova = ", IOVA, ", length = 4, ssid = 9)")));
  record(dma(sys, "ep1", "(iova = 0x2000, length = 4)"));  // C_BAD_STE
  record(dma(sys, "ep0", "(iova = 0x1000)"));              // eInval
  for (auto& e : rig.smmu.drainEvents()) out.add(kj::str(show(e).c_str()));
  for (auto p : rig.pages) {
    auto bytes = readMem(sys, p, 0x1000);
    uint64_t hash = 1469598103934665603ull;
    for (auto b : bytes) hash = (hash ^ b) * 1099511628211ull;
    out.add(kj::str("page ", kj::hex(p), " ", kj::hex(hash)));
  }
  for (auto& s : sys.stats()) {
    if (s.name == "memory") continue;
    for (auto& c : s.counters) out.add(kj::str(s.name, ".", c.name, "=", c.value));
  }
  return kj::strArray(out, "\n");
}

TEST_CASE("hw/endpoint: the same DMA sequence gives identical results inline and process-placed",
          "[endpoint][dma][placement]") {
  kj::String reference;
  {
    TestSystem sys(manifest());
    reference = transcript(sys);
  }
  CHECK(strstr(reference.cStr(), "F_TRANSLATION") != nullptr);
  struct Variant {
    kj::StringPtr smmu, pci, endpoints;
  };
  for (auto v :
       {Variant{"process", "inline", "inline"}, Variant{"inline", "process", "inline"},
        Variant{"inline", "inline", "process"}, Variant{"process", "process", "process"}}) {
    TestSystem sys(manifest(v.smmu, v.pci, v.endpoints));
    INFO("smmu " << v.smmu.cStr() << ", pci " << v.pci.cStr() << ", endpoints "
                 << v.endpoints.cStr());
    CHECK(KJ_ASSERT_NONNULL(sys.composer.pidOf(v.smmu == "process"  ? "smmu0"
                                               : v.pci == "process" ? "pci0"
                                                                    : "ep0")) != getpid());
    CHECK(std::string(transcript(sys).cStr()) == std::string(reference.cStr()));
  }
}

TEST_CASE("hw/endpoint: a stage-1 fault under CD.A = 0 completes as RAZ/WI",
          "[endpoint][dma][conformance]") {
  // IHI 0070 §3.12.2: IDR0.TERM_MODEL = 0 (the model's) and CD.A = 0 terminate a stage-1
  // translation fault as RAZ/WI: the DMA completes, reads of the faulting page return zero, its
  // writes are ignored; the F_TRANSLATION event is still recorded (CD.R = 1).
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest(placement, "inline", placement));
    Rig rig(sys);
    CHECK((rig.smmu.read32(off::IDR0) >> 26 & 1) == 0);  // TERM_MODEL = 0
    CdParams cd;
    cd.ttb0 = rig.tables.root();
    cd.abort = false;
    uint64_t cdPa = rig.arena.alloc(64);
    rig.smmu.writeWords(cdPa, cdS1(cd));
    rig.smmu.writeSte(EP0_SID, steS1(cdPa));
    rig.smmu.invalidateAll();
    auto before = pattern(0x1000, 3);
    sys.composer.memory().write(rig.pages[2], before);
    // Pages 2 (mapped) and 3 (IOVA + 0x3000, unmapped): page 2 reads its bytes, page 3 zeros.
    auto r = dma(sys, "ep0", "(iova = 0x10002000, length = 8192)");
    REQUIRE(r.getErrno() == rpc::Errno::OK);
    REQUIRE(r.isOk());
    CHECK(same(r.getData().slice(0, 0x1000), before));
    auto zeros = kj::heapArray<kj::byte>(0x1000);
    memset(zeros.begin(), 0, zeros.size());
    CHECK(same(r.getData().slice(0x1000, 0x2000), zeros));
    auto events = rig.smmu.drainEvents();
    REQUIRE(events.size() == 1);
    CHECK((events[0].dw[0] & 0xff) == 0x10);  // F_TRANSLATION
    CHECK(events[0].dw[2] == IOVA + 0x3000);
    // A write to the unmapped page is ignored and completes.
    auto w = dmaWrite(sys, "ep0", IOVA + 0x3000, pattern(16, 5));
    CHECK(w.isOk());
    CHECK(rig.smmu.drainEvents().size() == 1);
  }
}

}  // namespace
}  // namespace nb::hw::testing
