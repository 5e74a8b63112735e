// Nested domains (facts 2.2, 2.3, 5.3): a nest-parent stage 2 mapping guest memory, a vIOMMU
// over it from smmu_queue with a vDEVICE, and guest vSTEs turned into physical STEs — s1_trans
// (the guest's CD and stage-1 tables, in guest memory, walked through stage 2), bypass (stage 2
// only), abort — with the vSTE errors (eIo), the missing vDEVICE (eNoEnt), PASIDs in use (eBusy),
// and the nest parent's unmap invalidating the guest's combined entries. Inline and in processes.

#include "tests/components/domain_allocator/domains-testing.h"

namespace nb::domains::testing {
namespace {

constexpr uint64_t GUEST_IPA = 0x4000'0000;  // guest memory as the guest (and stage 2) sees it
constexpr uint64_t GUEST_BYTES = 0x10'0000;
constexpr uint64_t GVA = 0x8000'0000;  // where the guest maps its data page
constexpr uint32_t VSID = 0x99;

// Page k of guest memory: L0..L3 of the guest's stage-1 table, its CD, its data page.
enum GuestPage : unsigned { L0, L1, L2, L3, CD, DATA };

// Facts 4.1 stage-1 leaf: AF, nG, AP[1] (unprivileged), SH inner, AttrIndx 1.
constexpr uint64_t S1_LEAF =
    (1ull << 10) | (1ull << 11) | (1ull << 6) | (3ull << 8) | (1ull << 2) | 3;

struct Guest {
  Stack& st;
  uint64_t pa;  // guest memory's physical base

  uint64_t ipa(GuestPage p) const { return GUEST_IPA + uint64_t(p) * 4096; }
  uint64_t pagePa(GuestPage p) const { return pa + uint64_t(p) * 4096; }

  // What a guest driver writes: a 4-level 4K stage-1 table mapping GVA to its data page, and a
  // CD (facts 2.5, literal positions) with ASID 3 over it — all pointers guest-physical.
  void build() {
    auto& mem = st.mem();
    auto index = [](unsigned level) { return (GVA >> (39 - 9 * level)) & 511; };
    mem.store64(pagePa(L0) + index(0) * 8, ipa(L1) | 3);
    mem.store64(pagePa(L1) + index(1) * 8, ipa(L2) | 3);
    mem.store64(pagePa(L2) + index(2) * 8, ipa(L3) | 3);
    mem.store64(pagePa(L3) + index(3) * 8, ipa(DATA) | S1_LEAF);
    uint64_t cd0 = 16 | (1ull << 8) | (1ull << 10) | (3ull << 12) | (1ull << 30) | (1ull << 31) |
                   (5ull << 32) | (1ull << 41) | (1ull << 45) | (1ull << 46) | (1ull << 47) |
                   (3ull << 48);
    mem.store64(pagePa(CD), cd0);
    mem.store64(pagePa(CD) + 8, ipa(L0));
    mem.store64(pagePa(CD) + 24, 0xf404ff44);
  }

  // vSTE dw0/dw1 (facts 2.1): V, Config, S1ContextPtr = the CD's IPA; SSID0, WBRA, WBRA, ISH.
  uint64_t s1Trans() const { return 1 | (5ull << 1) | ipa(CD); }
};

kj::Array<uint64_t> vste(uint64_t dw0, uint64_t dw1 = 0xd6) {
  return kj::heapArray<uint64_t>({dw0, dw1});
}

struct Nested {
  Errno errno_;
  rpc::Domain::Client domain;
};

Nested allocNested(Stack& st, rpc::Viommu::Client& viommu, kj::ArrayPtr<const uint64_t> words) {
  auto req = st.domains.allocNestedRequest();
  req.setViommu(viommu);
  auto list = req.initVste(words.size());
  for (auto i : kj::indices(words)) list.set(i, words[i]);
  auto r = req.send().wait(st.ws);
  return Nested{r.getErrno(), r.getDomain()};
}

kj::StringPtr placements[] = {"inline", "process"};

TEST_CASE(
    "Nested: guest vSTEs over a vIOMMU become physical STEs; DMA walks stage 1 through stage 2",
    "[domain_allocator][nested]") {
  for (auto where : placements) {
    DYNAMIC_SECTION(where.cStr()) {
      Stack st(oneSmmuManifest(Placement{where}));
      Guest guest{st, st.alloc(GUEST_BYTES, GUEST_BYTES)};
      guest.build();

      auto parent = st.paging("00:10.0", true);
      REQUIRE(parent.errno_ == Errno::OK);
      REQUIRE(st.map(parent.domain, GUEST_IPA, guest.pa, GUEST_BYTES) == Errno::OK);
      auto queue = st.sys.main<rpc::SmmuQueue>("smmu_queue");
      auto allocViommu = queue.allocViommuRequest();
      allocViommu.setS2Domain(parent.domain);
      auto v = allocViommu.send().wait(st.ws);
      REQUIRE(v.getErrno() == Errno::OK);
      auto viommu = v.getViommu();
      auto add = viommu.addVdeviceRequest();
      add.setVsid(VSID);
      add.setSid(st.master("0000:00:10.0").sids[0]);
      REQUIRE(add.send().wait(st.ws).getErrno() == Errno::OK);

      // Invalid guest data: eIo; a malformed request: eInval.
      CHECK(allocNested(st, viommu, vste(guest.s1Trans(), 0xd6 | (1ull << 19))).errno_ ==
            Errno::E_IO);
      CHECK(allocNested(st, viommu, vste(1 | (6ull << 1))).errno_ == Errno::E_IO);
      CHECK(allocNested(st, viommu, vste(guest.s1Trans(), 2ull << 28)).errno_ == Errno::E_IO);
      CHECK(allocNested(st, viommu, kj::heapArray<uint64_t>({1, 0, 0})).errno_ == Errno::E_INVAL);
      CHECK(st.counter("domains", "vste_rejected") == 3);

      auto owner = st.claimDevice("00:10.0");
      // PASIDs in use: no nested domain (eBusy).
      auto s1 = st.s1("00:10.0");
      CHECK(st.attachPasid(owner, 3, s1) == Errno::OK);
      auto translate = allocNested(st, viommu, vste(guest.s1Trans()));
      REQUIRE(translate.errno_ == Errno::OK);
      CHECK(st.attach(owner, translate.domain) == Errno::E_BUSY);
      auto detach = owner.detachPasidRequest();
      detach.setPasid(3);
      CHECK(detach.send().wait(st.ws).getErrno() == Errno::OK);

      // s1_trans: the nested STE, and DMA lands where the guest's tables say.
      CHECK(st.attach(owner, translate.domain) == Errno::OK);
      kj::Own<capnp::MallocMessageBuilder> keep;
      auto info = st.info(translate.domain, keep);
      CHECK(info.getKind() == rpc::DomainKind::NESTED);
      CHECK(info.getVsteConfig() == rpc::VsteConfig::S1_TRANS);
      kj::Own<capnp::MallocMessageBuilder> keepParent;
      CHECK(info.getVmid() == st.info(parent.domain, keepParent).getVmid());
      auto ste = st.master("0000:00:10.0").ste;
      CHECK(ste[0] == (1 | (7ull << 1) | guest.ipa(CD)));
      CHECK(ste[1] == (0xd6 | (1ull << 19) | (1ull << 44)));  // guest bits, MEV, SHCFG
      CHECK(st.dma("ep1", GVA + 0x10, "nest"_kj).outcome == "ok"_kj);
      CHECK(st.read(guest.pagePa(DATA) + 0x10, 4) == "nest"_kj);

      // bypass: stage 2 only — the device's addresses are guest-physical.
      auto bypass = allocNested(st, viommu, vste(1 | (4ull << 1), 0));
      REQUIRE(bypass.errno_ == Errno::OK);
      CHECK(st.replace(owner, bypass.domain) == Errno::OK);
      CHECK(st.dma("ep1", guest.ipa(DATA) + 0x20, "ipa"_kj).outcome == "ok"_kj);
      CHECK(st.read(guest.pagePa(DATA) + 0x20, 3) == "ipa"_kj);
      CHECK(st.master("0000:00:10.0").ste[0] == 0xd);  // the parent's stage-2 STE

      // abort, and V = 0 (abort too).
      auto abort = allocNested(st, viommu, vste(1, 0));
      CHECK(st.replace(owner, abort.domain) == Errno::OK);
      CHECK(st.dma("ep1", guest.ipa(DATA)).outcome == "abort ste"_kj);
      auto invalid = allocNested(st, viommu, vste(0xffff0000, ~0ull));
      REQUIRE(invalid.errno_ == Errno::OK);
      CHECK(st.info(invalid.domain, keep).getVsteConfig() == rpc::VsteConfig::ABORT);

      // A translating nested domain needs the device's vDEVICE; abort/bypass do not.
      auto other = st.claimDevice("01:00.0");
      CHECK(st.attach(other, translate.domain) == Errno::E_NO_ENT);
      CHECK(st.attach(other, bypass.domain) == Errno::OK);

      // Back to translating; then the nest parent's unmap invalidates the guest's combined
      // entries too (TLBI_S2_IPA + TLBI_NH_ALL): the cached translation is gone.
      CHECK(st.replace(owner, translate.domain) == Errno::OK);
      CHECK(st.dma("ep1", GVA + 0x10, nullptr, 4).outcome == "ok"_kj);
      auto u = st.unmap(parent.domain, guest.ipa(DATA), 4096);
      CHECK(u.errno_ == Errno::OK);
      CHECK(u.commands >= 2);
      CHECK(st.dma("ep1", GVA + 0x10, nullptr, 4).outcome == "fault fTranslation"_kj);
    }
  }
}

}  // namespace
}  // namespace nb::domains::testing
