// The domain allocator in the composed stack: boot onto default domains, claim, allocate, map,
// attach, DMA through the SMMU model to the right PA, unmap with invalidation (the next DMA
// faults: the IOTLB no longer holds the entry), domains of every kind, PASIDs, and the STE/CD
// images in memory against the facts' recipes — inline and with every component in its own
// process.

#include "tests/components/domain_allocator/domains-testing.h"

namespace nb::domains::testing {
namespace {

constexpr uint64_t IOVA = 0x1000'0000;

kj::StringPtr placements[] = {"inline", "process"};

TEST_CASE("Allocator: claim, map, attach, DMA lands; unmap invalidates; DMA faults",
          "[domain_allocator][e2e]") {
  for (auto where : placements) {
    DYNAMIC_SECTION(where.cStr()) {
      Stack st(oneSmmuManifest(Placement{where}));
      // Boot: ep0's group sits on its translated default domain, which maps nothing.
      CHECK(st.dma("ep0", IOVA).outcome == "fault fTranslation"_kj);
      auto owner = st.claimDevice("01:00.0");
      CHECK(st.dma("ep0", IOVA).outcome == "abort ste"_kj);  // blocking domain: abort STE

      auto buffer = st.alloc(0x4000);
      auto d = st.s1("01:00.0");
      CHECK(st.map(d, IOVA, buffer, 0x4000) == Errno::OK);
      CHECK(st.attach(owner, d) == Errno::OK);
      CHECK(st.dma("ep0", IOVA + 0x1008, "hello"_kj).outcome == "ok"_kj);
      CHECK(st.read(buffer + 0x1008, 5) == "hello"_kj);
      auto back = st.dma("ep0", IOVA + 0x1008, nullptr, 5);
      CHECK(back.outcome == "ok"_kj);

      // The translation is cached now; unmap must invalidate it before returning.
      auto u = st.unmap(d, IOVA, 0x4000);
      CHECK(u.errno_ == Errno::OK);
      CHECK(u.bytes == 0x4000);
      CHECK(u.commands >= 1);
      CHECK(st.dma("ep0", IOVA + 0x1008, nullptr, 5).outcome == "fault fTranslation"_kj);
      CHECK(st.counter("domains", "tlbi_commands") >= 1);
    }
  }
}

// ---- STE and CD images against the facts' recipes (literal bit positions, facts 2.1/2.2/2.5)

constexpr uint64_t V = 1, SHCFG_INCOMING = 1ull << 44;

uint64_t l1Leaf(Stack& st, uint64_t cdTable) {
  uint64_t desc = st.mem().load64(cdTable);  // level-1 CD descriptor 0: V[0], L2PTR[51:12]
  REQUIRE((desc & 1) == 1);
  return desc & 0x000ffffffffff000ull;
}

kj::Array<uint64_t> words(Stack& st, uint64_t pa) {
  auto out = kj::heapArray<uint64_t>(8);
  for (unsigned i = 0; i < 8; i++) out[i] = st.mem().load64(pa + i * 8);
  return out;
}

kj::String hex(kj::ArrayPtr<const uint64_t> w) {
  return kj::strArray(
      KJ_MAP(x, w) { return kj::str("0x", kj::hex(x)); }, " ");
}

TEST_CASE("Allocator: the STE and CD of every domain kind are the facts' recipes",
          "[domain_allocator][golden]") {
  Stack st(oneSmmuManifest(Placement{}));
  auto owner = st.claimDevice("01:00.0");
  // Blocked: V = 1, Config = abort.
  CHECK(hex(st.master("0000:01:00.0").ste) == "0x1 0x0 0x0 0x0 0x0 0x0 0x0 0x0"_kj);

  // Identity: Config = bypass (4), SHCFG = incoming (the model has ATTR_TYPES_OVR).
  auto identity = st.domains.allocIdentityRequest().send().wait(st.ws).getDomain();
  CHECK(st.attach(owner, identity) == Errno::OK);
  CHECK(hex(st.master("0000:01:00.0").ste) ==
        kj::str("0x9 0x", kj::hex(SHCFG_INCOMING), " 0x0 0x0 0x0 0x0 0x0 0x0"));

  // Stage 1: a two-level CD table (SSIDSIZE 20 > 10), S1Fmt = 2, S1CDMax = 20, S1DSS = SSID0,
  // S1CIR = S1COR = WBRA, S1CSH = ISH; CD 0 in the first 64 KiB leaf.
  auto s1 = st.s1("01:00.0");
  kj::Own<capnp::MallocMessageBuilder> keep;
  auto info = st.info(s1, keep);
  CHECK(st.replace(owner, s1) == Errno::OK);
  auto m = st.master("0000:01:00.0");
  REQUIRE(m.cdTable != 0);
  uint64_t dw0 = V | (5ull << 1) | (2ull << 4) | m.cdTable | (20ull << 59);
  CHECK(hex(m.ste) == kj::str("0x", kj::hex(dw0), " 0xd6 0x0 0x0 0x0 0x0 0x0 0x0"));
  auto s1cfg = info.getTable().getS1();
  auto tcr = s1cfg.getTcr();
  uint64_t cd0 = uint64_t(tcr.getTsz()) | (uint64_t(tcr.getTg()) << 6) |
                 (uint64_t(tcr.getIrgn()) << 8) | (uint64_t(tcr.getOrgn()) << 10) |
                 (uint64_t(tcr.getSh()) << 12) | (1ull << 30) | (1ull << 31) |
                 (uint64_t(tcr.getIps()) << 32) | (1ull << 41) | (1ull << 45) | (1ull << 46) |
                 (1ull << 47) | (uint64_t(info.getAsid()) << 48);
  CHECK(tcr.getTsz() == 16);  // IAS 48
  CHECK(info.getAsid() >= 1);
  CHECK(hex(words(st, l1Leaf(st, m.cdTable))) ==
        kj::str("0x", kj::hex(cd0), " 0x", kj::hex(s1cfg.getTtbr()), " 0x0 0x",
                kj::hex(s1cfg.getMair()), " 0x0 0x0 0x0 0x0"));

  // Stage 2 (a nest parent): Config = 6, SHCFG; S2VMID, the VTCR, S2AA64, S2PTW, S2R; S2TTB.
  auto s2 = st.paging("01:00.0", true);
  REQUIRE(s2.errno_ == Errno::OK);
  auto s2info = st.info(s2.domain, keep);
  CHECK(s2info.getVmid() == 1);
  auto vtcr = s2info.getTable().getS2().getVtcr();
  CHECK(st.replace(owner, s2.domain) == Errno::OK);
  uint64_t dw2 = uint64_t(s2info.getVmid()) | (uint64_t(vtcr.getTsz()) << 32) |
                 (uint64_t(vtcr.getSl()) << 38) | (uint64_t(vtcr.getIrgn()) << 40) |
                 (uint64_t(vtcr.getOrgn()) << 42) | (uint64_t(vtcr.getSh()) << 44) |
                 (uint64_t(vtcr.getTg()) << 46) | (uint64_t(vtcr.getPs()) << 48) | (1ull << 51) |
                 (1ull << 54) | (1ull << 58);
  CHECK(hex(st.master("0000:01:00.0").ste) ==
        kj::str("0xd 0x", kj::hex(SHCFG_INCOMING), " 0x", kj::hex(dw2), " 0x",
                kj::hex(s2info.getTable().getS2().getVttbr()), " 0x0 0x0 0x0 0x0"));
  // Leaving stage 1 cleared CD 0.
  CHECK(st.mem().load64(l1Leaf(st, m.cdTable)) == 0);
}

TEST_CASE("Allocator: each transition's update kind, with CFGI + SYNC per step (facts 2.4)",
          "[domain_allocator][hitless]") {
  Stack st(oneSmmuManifest(Placement{}));
  auto owner = st.claimDevice("01:00.0");  // translated default -> blocked: S1 -> abort
  auto sids = st.master("0000:01:00.0").sids.size();
  auto identity = st.domains.allocIdentityRequest().send().wait(st.ws).getDomain();
  auto before = [&]() {
    return kj::tuple(st.counter("domains", "updates_hitless"),
                     st.counter("domains", "updates_breaking"), st.counter("domains", "syncs"),
                     st.counter("domains", "cfgi_ste"));
  };
  // abort -> bypass: hitless, two steps (SHCFG, then Config): two CFGI_STE rounds, two SYNCs.
  auto b = before();
  CHECK(st.attach(owner, identity) == Errno::OK);
  CHECK(st.counter("domains", "updates_hitless") == kj::get<0>(b) + 1);
  CHECK(st.counter("domains", "syncs") == kj::get<2>(b) + 2);
  CHECK(st.counter("domains", "cfgi_ste") == kj::get<3>(b) + 2 * sids);
  // bypass -> stage 2: bypass ignores dw2/dw3, so only Config is critical: hitless, two steps.
  auto s2 = st.paging("01:00.0", true);
  b = before();
  CHECK(st.replace(owner, s2.domain) == Errno::OK);
  CHECK(st.counter("domains", "updates_hitless") == kj::get<0>(b) + 1);
  CHECK(st.counter("domains", "syncs") == kj::get<2>(b) + 2);
  // DMA through stage 2.
  auto buffer = st.alloc(0x1000);
  CHECK(st.map(s2.domain, 0x2000'0000, buffer, 0x1000) == Errno::OK);
  CHECK(st.dma("ep0", 0x2000'0010, "s2"_kj).outcome == "ok"_kj);
  CHECK(st.read(buffer + 0x10, 2) == "s2"_kj);
  // stage 2 -> stage 1: Config and S2VMID (0 for stage 1) both critical: breaking, three STE
  // steps — after the CD (hitless, two steps) was written.
  auto s1 = st.s1("01:00.0");
  b = before();
  CHECK(st.replace(owner, s1) == Errno::OK);
  CHECK(st.counter("domains", "updates_breaking") == kj::get<1>(b) + 1);
  CHECK(st.counter("domains", "updates_hitless") == kj::get<0>(b) + 1);
  CHECK(st.counter("domains", "syncs") == kj::get<2>(b) + 3 + 2);
  // Identity: DMA at a physical address lands there.
  CHECK(st.replace(owner, identity) == Errno::OK);
  CHECK(st.dma("ep0", buffer + 0x20, "id"_kj).outcome == "ok"_kj);
  CHECK(st.read(buffer + 0x20, 2) == "id"_kj);
}

TEST_CASE("Allocator: allocation flags and their errno (facts 5.2)", "[domain_allocator][alloc]") {
  Stack st(oneSmmuManifest(Placement{}));
  kj::Own<capnp::MallocMessageBuilder> keep;
  auto plain = st.paging("01:00.0");
  REQUIRE(plain.errno_ == Errno::OK);
  CHECK(st.info(plain.domain, keep).getKind() == rpc::DomainKind::STAGE1);
  auto parent = st.paging("01:00.0", true);
  REQUIRE(parent.errno_ == Errno::OK);
  auto pi = st.info(parent.domain, keep);
  CHECK(pi.getKind() == rpc::DomainKind::STAGE2);
  CHECK(pi.getNestParent());
  CHECK(pi.getIas() == 48);
  CHECK(pi.getSmmu() == "smmu0"_kj);
  auto dirty = st.paging("01:00.0", false, true);
  REQUIRE(dirty.errno_ == Errno::OK);
  CHECK(st.info(dirty.domain, keep).getDirtyTracking());
  CHECK(st.paging("01:00.0", true, true).errno_ == Errno::E_OP_NOT_SUPP);
  CHECK(st.paging("09:00.0").errno_ == Errno::E_NO_DEV);
  CHECK(st.paging("zz").errno_ == Errno::E_NO_DEV);
  // Not a domain of this allocator's making: a broken contract.
  rpc::Domain::Client foreign = kj::heap<rpc::Domain::Server>();
  auto req = st.domains.attachDeviceRequest();
  req.setDevice("00:10.0");
  req.setDomain(foreign);
  CHECK_THROWS_WITH(req.send().wait(st.ws),
                    Catch::Contains("a domain capability from another allocator"));
}

TEST_CASE("Allocator: features refuse what the SMMU lacks; ID spaces run out",
          "[domain_allocator][alloc]") {
  {
    Stack st(oneSmmuManifest(Placement{}, "httu = \"none\"\nstage2 = false\n"));
    CHECK(st.paging("01:00.0", false, true).errno_ == Errno::E_OP_NOT_SUPP);  // no HTTU dirty
    CHECK(st.paging("01:00.0", true).errno_ == Errno::E_OP_NOT_SUPP);         // cannot nest
  }
  {
    // 8-bit ASIDs: 255, four of them held by default domains.
    Stack st(oneSmmuManifest(Placement{}, "asid16 = false\n"));
    kj::Vector<rpc::Domain::Client> held;
    Errno last = Errno::OK;
    for (int i = 0; i < 300 && last == Errno::OK; i++) {
      auto a = st.paging("01:00.0");
      last = a.errno_;
      if (last == Errno::OK) held.add(kj::mv(a.domain));
    }
    CHECK(last == Errno::E_NO_SPC);
    CHECK(held.size() + st.counter("groups", "groups") == 255);
    // Freed IDs come back (after the TLB flush of the freed ASID).
    held.removeLast();
    st.groups.groupsRequest().send().wait(st.ws);
    st.sys.composer.stats().wait(st.ws);
    CHECK(st.paging("01:00.0").errno_ == Errno::OK);
  }
}

TEST_CASE("Allocator: PASIDs — a CD per PASID, S1DSS by the RID domain, detach restores the STE",
          "[domain_allocator][pasid]") {
  for (auto where : placements) {
    DYNAMIC_SECTION(where.cStr()) {
      Stack st(oneSmmuManifest(Placement{where}));
      auto owner = st.claimDevice("00:10.0");  // integrated endpoint: PASID-capable
      auto d = st.s1("00:10.0");
      auto buffer = st.alloc(0x1000);
      CHECK(st.map(d, IOVA, buffer, 0x1000) == Errno::OK);
      CHECK(st.attachPasid(owner, 7, d) == Errno::OK);
      // RID traffic: blocked RID domain with a CD table: S1DSS = terminate.
      CHECK(st.dma("ep1", IOVA).outcome == "fault fStreamDisabled"_kj);
      CHECK(st.dma("ep1", IOVA + 0x40, "pasid"_kj, 0, 7u).outcome == "ok"_kj);
      CHECK(st.read(buffer + 0x40, 5) == "pasid"_kj);
      CHECK(st.dma("ep1", IOVA, nullptr, 4, 8u).outcome == "fault cBadCd"_kj);
      // A stage-2 RID domain cannot coexist with PASIDs.
      auto s2 = st.paging("00:10.0", true);
      CHECK(st.attach(owner, s2.domain) == Errno::E_BUSY);
      // Identity RID domain with PASIDs: S1DSS = bypass.
      auto identity = st.domains.allocIdentityRequest().send().wait(st.ws).getDomain();
      CHECK(st.attach(owner, identity) == Errno::OK);
      CHECK(st.dma("ep1", buffer + 0x80, "rid"_kj).outcome == "ok"_kj);
      CHECK(st.read(buffer + 0x80, 3) == "rid"_kj);
      // Detach: the CD cleared; with no PASID left the STE is a plain bypass again.
      auto req = owner.detachPasidRequest();
      req.setPasid(7);
      CHECK(req.send().wait(st.ws).getErrno() == Errno::OK);
      CHECK(st.dma("ep1", IOVA, nullptr, 4, 7u).outcome != "ok"_kj);
      CHECK(hex(st.master("0000:00:10.0").ste).startsWith("0x9 "));
      // Multifunction without ACS: no PASID (group_manager refuses before the allocator).
      auto mf = st.claimGroupOf("02:00.0");
      CHECK(st.attachPasid(mf, 1, d) == Errno::E_INVAL);
    }
  }
}

TEST_CASE("Allocator: invalidation follows RIL — ranges, or one command per granule (no "
          "threshold before 7.1)",
          "[domain_allocator][tlbi]") {
  for (bool ril : {true, false}) {
    DYNAMIC_SECTION((ril ? "RIL" : "no RIL")) {
      Stack st(oneSmmuManifest(Placement{}, ril ? "" : "ril = false\n"));
      auto owner = st.claimDevice("01:00.0");
      auto d = st.s1("01:00.0");
      // 2 MiB of 4K pages (the PA is not 2 MiB aligned, so no block can be used).
      auto buffer = st.alloc(0x201000, 0x200000) + 0x1000;
      CHECK(st.map(d, IOVA, buffer, 0x200000) == Errno::OK);
      CHECK(st.attach(owner, d) == Errno::OK);
      CHECK(st.dma("ep0", IOVA + 0x1ff000, "end"_kj).outcome == "ok"_kj);
      auto flushes = st.counter("domains", "whole_domain_flushes");
      auto u = st.unmap(d, IOVA, 0x200000);
      CHECK(u.bytes == 0x200000);
      // Linux <= 7.0 has no threshold: the freed L3 table's walk flush is one range command
      // (RIL) or 512 per-granule ones, then the leaf flush: 1 command either way (facts 2.6).
      CHECK(st.counter("domains", "whole_domain_flushes") == flushes);
      CHECK(u.commands == (ril ? 2u : 513u));
      CHECK(u.syncs == 2);
      CHECK(st.dma("ep0", IOVA + 0x1ff000, nullptr, 3).outcome == "fault fTranslation"_kj);
      // 4K-page unmaps free no table, however empty it becomes: leaf flushes only.
      CHECK(st.map(d, IOVA, buffer, 0x4000) == Errno::OK);
      auto a = st.unmap(d, IOVA, 0x2000);
      CHECK(a.bytes == 0x2000);
      CHECK(a.commands == (ril ? 1u : 2u));
      auto b = st.unmap(d, IOVA + 0x2000, 0x2000);
      CHECK(b.commands == (ril ? 1u : 2u));
      CHECK(st.counter("domains", "whole_domain_flushes") == flushes);
    }
  }
}

TEST_CASE("Allocator: a linear stream table and a linear CD table (pasid_bits 4)",
          "[domain_allocator][tables]") {
  Stack st(oneSmmuManifest(Placement{}, "", "", "stream_table = \"linear\"\n", "pasid_bits = 4\n"));
  auto owner = st.claimDevice("00:10.0");
  auto d = st.s1("00:10.0");
  auto buffer = st.alloc(0x1000);
  CHECK(st.map(d, IOVA, buffer, 0x1000) == Errno::OK);
  CHECK(st.attach(owner, d) == Errno::OK);
  auto m = st.master("0000:00:10.0");
  // S1Fmt = 0 (linear), S1CDMax = 4; CD 0 is the table's first entry.
  CHECK(m.ste[0] == (1 | (5ull << 1) | m.cdTable | (4ull << 59)));
  CHECK((st.mem().load64(m.cdTable) >> 31 & 1) == 1);
  CHECK(st.attachPasid(owner, 15, d) == Errno::OK);
  CHECK(st.attachPasid(owner, 16, d) == Errno::E_INVAL);
  CHECK((st.mem().load64(m.cdTable + 15 * 64) >> 31 & 1) == 1);
  CHECK(st.dma("ep1", IOVA + 8, "x"_kj, 0, 15u).outcome == "ok"_kj);
  CHECK(st.read(buffer + 8, 1) == "x"_kj);
  CHECK(st.counter("domains", "l2_stream_tables") == 0);
}

}  // namespace
}  // namespace nb::domains::testing
