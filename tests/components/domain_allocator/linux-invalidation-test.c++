// Golden command streams: what reaches the SMMU's command queue when a domain unmaps, against
// sequences derived by hand from linux-invalidation-facts 1.2, 1.3, 2.2-2.6 and 3.1 (never
// from nestbed's output): 4K, 2M, 1 MiB of 4K pages and an aligned 1 GiB of 4K pages, with
// and without RIL, stage 1 and nest-parent stage 2, kernels 6.18 (default) and 7.1; then the
// flush queue of a lazy (IOMMU_DOMAIN_DMA_FQ) domain — the lazy window, a full queue — and
// counters identical inline and process-placed.
//
// The stream is read back from the CMDQ ring in memory between two CMDQ_PROD values, each
// command decoded with the facts' literal field positions (smmuv3-iommu-facts 1.3): opcode
// dw0[7:0], NUM dw0[16:12], SCALE dw0[24:20], VMID dw0[47:32], ASID dw0[63:48]; LEAF dw1[0],
// TTL dw1[9:8], TG dw1[11:10], ADDR dw1[63:12].

#include "tests/components/domain_allocator/domains-testing.h"

#include <string>
#include <vector>

namespace nb::domains::testing {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr uint64_t BASE = 4 * GiB;  // 1 GiB aligned
constexpr uint64_t PAGE = 4 * KiB;

std::string decode(uint64_t dw0, uint64_t dw1) {
  const unsigned op = dw0 & 0xff;
  auto field = [](uint64_t w, unsigned hi, unsigned lo) {
    return (w >> lo) & ((uint64_t(1) << (hi - lo + 1)) - 1);
  };
  auto range = [&](const char* name, bool asid) {
    std::string s = name;
    if (asid) s += kj::str(" asid=", field(dw0, 63, 48)).cStr();
    s += kj::str(" vmid=", field(dw0, 47, 32), " addr=0x", kj::hex(dw1 & ~uint64_t(0xfff)),
                 " tg=", field(dw1, 11, 10), " ttl=", field(dw1, 9, 8), " num=",
                 field(dw0, 16, 12), " scale=", field(dw0, 24, 20),
                 (dw1 & 1) ? " leaf" : "")
             .cStr();
    return s;
  };
  switch (op) {
    case 0x12: return range("NH_VA", true);
    case 0x2a: return range("S2_IPA", false);
    case 0x10: return kj::str("NH_ALL vmid=", field(dw0, 47, 32)).cStr();
    case 0x11: return kj::str("NH_ASID asid=", field(dw0, 63, 48)).cStr();
    case 0x28: return kj::str("S12_VMALL vmid=", field(dw0, 47, 32)).cStr();
    case 0x46: return "SYNC";
  }
  return kj::str("op 0x", kj::hex(op)).cStr();
}

// Expected lines, typed in the decode() format.
std::string va(uint16_t asid, uint64_t addr, unsigned tg, unsigned ttl, unsigned num,
               unsigned scale, bool leaf) {
  return kj::str("NH_VA asid=", asid, " vmid=0 addr=0x", kj::hex(addr), " tg=", tg, " ttl=", ttl,
                 " num=", num, " scale=", scale, leaf ? " leaf" : "")
      .cStr();
}
std::string ipa(uint16_t vmid, uint64_t addr, unsigned tg, unsigned ttl, unsigned num,
                unsigned scale, bool leaf) {
  return kj::str("S2_IPA vmid=", vmid, " addr=0x", kj::hex(addr), " tg=", tg, " ttl=", ttl,
                 " num=", num, " scale=", scale, leaf ? " leaf" : "")
      .cStr();
}
const std::string SYNC = "SYNC";

struct Case {
  bool ril;
  bool s2;  // nest-parent stage 2 instead of stage 1
  kj::StringPtr kernel;
};

kj::String manifestFor(const Case& c, kj::StringPtr placement = "inline",
                       kj::StringPtr domainsExtra = "") {
  // A 2^13-entry CMDQ so that a stream of a few thousand commands can be read back whole.
  return oneSmmuManifest(Placement{placement}, c.ril ? "" : "ril = false\n", "",
                         "cmdq_log2size = 13\n",
                         kj::str("kernel = \"", c.kernel, "\"\n", domainsExtra));
}

class Golden {
public:
  Golden(Stack& st) : st(st), smmu(st.sys.main<rpc::Smmuv3>("smmu0")) {
    auto info = st.sys.main<rpc::SmmuQueue>("smmu_queue").infoRequest().send().wait(st.ws);
    cmdqPa = info.getInfo().getCmdqPa();
    log2 = info.getInfo().getCmdqLog2Size();
  }

  uint32_t prod() {
    auto req = smmu.readRequest();
    req.setOffset(0x98);  // CMDQ_PROD
    return uint32_t(req.send().wait(st.ws).getValue());
  }

  // The commands written between two PROD values (index + wrap bit).
  std::vector<std::string> between(uint32_t from, uint32_t to) {
    const uint32_t entries = uint32_t(1) << log2, mask = (entries << 1) - 1;
    const uint32_t n = (to - from) & mask;
    std::vector<std::string> out;
    for (uint32_t i = 0; i < n; i++) {
      const uint32_t slot = (from + i) & (entries - 1);
      out.push_back(decode(st.mem().load64(cmdqPa + slot * 16),
                           st.mem().load64(cmdqPa + slot * 16 + 8)));
    }
    return out;
  }

  // The last `k` commands written before PROD.
  std::vector<std::string> last(uint32_t k) {
    const uint32_t entries = uint32_t(1) << log2, mask = (entries << 1) - 1;
    return between((prod() - k) & mask, prod());
  }

  Stack& st;
  rpc::Smmuv3::Client smmu;
  uint64_t cmdqPa = 0;
  unsigned log2 = 0;
};

struct Fixture {
  Stack st;
  Golden golden{st};
  rpc::Domain::Client d = nullptr;
  uint16_t id = 0;  // ASID (stage 1) or VMID (stage 2)

  explicit Fixture(const Case& c) : st(manifestFor(c)) {
    auto a = st.paging("01:00.0", c.s2);
    REQUIRE(a.errno_ == Errno::OK);
    d = kj::mv(a.domain);
    kj::Own<capnp::MallocMessageBuilder> keep;
    auto info = st.info(d, keep);
    REQUIRE(info.getNestParent() == c.s2);
    id = c.s2 ? info.getVmid() : info.getAsid();
  }

  // Maps [iova, iova + size) as 4K pages (a PA congruent modulo 4K only), unmaps it, and
  // returns the stream.
  std::vector<std::string> unmapPages(uint64_t iova, uint64_t size) {
    REQUIRE(st.map(d, iova, 0x1000, size) == Errno::OK);
    const uint32_t before = golden.prod();
    auto u = st.unmap(d, iova, size);
    REQUIRE(u.errno_ == Errno::OK);
    REQUIRE(u.bytes == size);
    return golden.between(before, golden.prod());
  }
};

void checkStream(const std::vector<std::string>& got, const std::vector<std::string>& expected) {
  std::string all;
  for (auto& g : got) all += g + "\n";
  INFO("stream:\n" << all);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); i++) {
    INFO("command " << i);
    CHECK(got[i] == expected[i]);
  }
}

// Without RIL: `count` per-granule commands from addr (TG/TTL/NUM/SCALE 0).
void perGranule(std::vector<std::string>& out, bool s2, uint16_t id, uint64_t addr,
                uint64_t count, uint64_t step, bool leaf) {
  for (uint64_t i = 0; i < count; i++) {
    out.push_back(s2 ? ipa(id, addr + i * step, 0, 0, 0, 0, leaf)
                     : va(id, addr + i * step, 0, 0, 0, 0, leaf));
  }
}

TEST_CASE("Linux invalidation: golden streams, stage 1 and nest-parent stage 2, kernel 6.18",
          "[domain_allocator][linux][golden]") {
  for (bool s2 : {false, true}) {
    for (bool ril : {true, false}) {
      DYNAMIC_SECTION((s2 ? "nest-parent S2" : "S1") << (ril ? " RIL" : " no RIL")) {
        Fixture f(Case{ril, s2, "6.18"});
        const uint16_t id = f.id;
        auto range = [&](uint64_t addr, unsigned ttl, unsigned num, unsigned scale, bool leaf) {
          return s2 ? ipa(id, addr, 1, ttl, num, scale, leaf)
                    : va(id, addr, 1, ttl, num, scale, leaf);
        };
        // After each S2_IPA group of a nest parent: TLBI_NH_ALL of its VMID + SYNC.
        auto group = [&](std::vector<std::string>& out) {
          out.push_back(SYNC);
          if (s2) {
            out.push_back(kj::str("NH_ALL vmid=", id).cStr());
            out.push_back(SYNC);
          }
        };

        // One 4K page: 1 leaf command (TTL 3, NUM 0, SCALE 0 with RIL) + SYNC.
        std::vector<std::string> expected;
        if (ril) {
          expected.push_back(range(BASE, 3, 0, 0, true));
        } else {
          perGranule(expected, s2, id, BASE, 1, PAGE, true);
        }
        group(expected);
        checkStream(f.unmapPages(BASE, PAGE), expected);

        // 1 MiB of 4K pages, 1 MiB aligned: (4K, 256), no table freed: one leaf range
        // (256 pages = NUM 0, SCALE 8) or 256 per-page commands, one SYNC.
        expected.clear();
        if (ril) {
          expected.push_back(range(BASE + 16 * MiB, 3, 0, 8, true));
        } else {
          perGranule(expected, s2, id, BASE + 16 * MiB, 256, PAGE, true);
        }
        group(expected);
        checkStream(f.unmapPages(BASE + 16 * MiB, MiB), expected);

        // 2 MiB of 4K pages, 2M aligned: the L3 table freed. Walk: 512 pages (SCALE 9, TTL 0)
        // or 512 per-granule non-leaf commands; then the leaf flush at gather.pgsize = 2M (TTL
        // 2, SCALE 9; without RIL one command per 2M step).
        expected.clear();
        if (ril) {
          expected.push_back(range(BASE + 32 * MiB, 0, 0, 9, false));
        } else {
          perGranule(expected, s2, id, BASE + 32 * MiB, 512, PAGE, false);
        }
        group(expected);
        if (ril) {
          expected.push_back(range(BASE + 32 * MiB, 2, 0, 9, true));
        } else {
          perGranule(expected, s2, id, BASE + 32 * MiB, 1, 2 * MiB, true);
        }
        group(expected);
        checkStream(f.unmapPages(BASE + 32 * MiB, 2 * MiB), expected);

        // An aligned 1 GiB of 4K pages: one walk flush of 262,144 pages (SCALE 18) and the
        // leaf flush at gather.pgsize = 1G (TTL 1). Without RIL: 262,144 walk commands (the
        // ring is too small to read back: counted instead) + SYNC, 1 leaf + SYNC.
        const uint64_t g = BASE + GiB;
        if (ril) {
          expected.clear();
          expected.push_back(range(g, 0, 0, 18, false));
          group(expected);
          expected.push_back(range(g, 1, 0, 18, true));
          group(expected);
          checkStream(f.unmapPages(g, GiB), expected);
        } else {
          const auto op = s2 ? "cmdq_op_tlbi_s2_ipa"_kj : "cmdq_op_tlbi_nh_va"_kj;
          const uint64_t tlbis = f.st.counter("smmu0", op);
          const uint64_t syncs = f.st.counter("smmu0", "cmdq_op_sync");
          const uint64_t nhAll = f.st.counter("smmu0", "cmdq_op_tlbi_nh_all");
          REQUIRE(f.st.map(f.d, g, 0x1000, GiB) == Errno::OK);
          auto u = f.st.unmap(f.d, g, GiB);
          REQUIRE(u.bytes == GiB);
          CHECK(f.st.counter("smmu0", op) - tlbis == 262144 + 1);
          CHECK(f.st.counter("smmu0", "cmdq_op_sync") - syncs == (s2 ? 4 : 2));
          CHECK(f.st.counter("smmu0", "cmdq_op_tlbi_nh_all") - nhAll == (s2 ? 2 : 0));
          CHECK(u.commands == 262144 + 1 + (s2 ? 2 : 0));
          CHECK(u.syncs == (s2 ? 4u : 2u));
          // The tail of the stream is still in the ring: the last walk commands, the SYNC,
          // the leaf command.
          std::vector<std::string> tail;
          perGranule(tail, s2, id, g + GiB - 2 * PAGE, 2, PAGE, false);
          group(tail);
          perGranule(tail, s2, id, g, 1, GiB, true);
          group(tail);
          checkStream(f.golden.last(uint32_t(tail.size())), tail);
        }
        // The page table read no leaf freeing that 1 GiB.
        CHECK(f.st.counter("page_table", "unmap_last_level_reads") == 1 + 256);
      }
    }
  }
}

TEST_CASE("Linux invalidation: kernel 7.1 without RIL — a large range is a whole-domain flush",
          "[domain_allocator][linux][golden]") {
  for (bool s2 : {false, true}) {
    DYNAMIC_SECTION((s2 ? "nest-parent S2" : "S1")) {
      Fixture f(Case{false, s2, "7.1"});
      const uint16_t id = f.id;
      // 2 MiB of 4K pages: the walk flush is 512 granules >= 4K / 8: NH_ASID / S12_VMALL +
      // SYNC, the nest parent's NH_ALL skipped; the 2M leaf flush (1 granule of 2M) is one
      // command + SYNC (+ NH_ALL + SYNC for the nest parent).
      std::vector<std::string> expected;
      expected.push_back(s2 ? kj::str("S12_VMALL vmid=", id).cStr()
                            : kj::str("NH_ASID asid=", id).cStr());
      expected.push_back(SYNC);
      perGranule(expected, s2, id, BASE, 1, 2 * MiB, true);
      expected.push_back(SYNC);
      if (s2) {
        expected.push_back(kj::str("NH_ALL vmid=", id).cStr());
        expected.push_back(SYNC);
      }
      checkStream(f.unmapPages(BASE, 2 * MiB), expected);
      // 16 pages: 16 per-page commands, below the threshold.
      expected.clear();
      perGranule(expected, s2, id, BASE + 4 * MiB + 3 * PAGE, 16, PAGE, true);
      expected.push_back(SYNC);
      if (s2) {
        expected.push_back(kj::str("NH_ALL vmid=", id).cStr());
        expected.push_back(SYNC);
      }
      REQUIRE(f.st.map(f.d, BASE + 4 * MiB, 0x1000, 2 * MiB) == Errno::OK);
      const uint32_t before = f.golden.prod();
      REQUIRE(f.st.unmap(f.d, BASE + 4 * MiB + 3 * PAGE, 16 * PAGE).bytes == 16 * PAGE);
      checkStream(f.golden.between(before, f.golden.prod()), expected);
    }
  }
}

TEST_CASE("Linux invalidation: the gather's early syncs (4K head, 2M body, 4K tail)",
          "[domain_allocator][linux][golden]") {
  // Facts 1.3/1.4: (4K, 2) add_page, then (2M, 1) frees an L3 table — its walk flush at once,
  // its add_page(2M) meets a gather of pgsize 4K: sync the head first — then (4K, 3) meets a
  // gather of pgsize 2M: sync the body; the final sync flushes the tail. Three leaf flushes.
  Fixture f(Case{true, false, "6.18"});
  const uint16_t a = f.id;
  const uint64_t iova = BASE + 2 * MiB - 2 * PAGE;
  std::vector<std::string> expected = {
      va(a, BASE + 2 * MiB, 1, 0, 0, 9, false), SYNC,  // walk of the freed L3 table
      va(a, iova, 1, 3, 0, 1, true),            SYNC,  // head: 2 pages (NUM 0, SCALE 1)
      va(a, BASE + 2 * MiB, 1, 2, 0, 9, true),  SYNC,  // body: 512 pages, TTL 2
      va(a, BASE + 4 * MiB, 1, 3, 2, 0, true),  SYNC,  // tail: 3 pages (NUM 2)
  };
  checkStream(f.unmapPages(iova, 2 * PAGE + 2 * MiB + 3 * PAGE), expected);
  CHECK(f.st.counter("domains", "gather_early_syncs") == 2);
}

TEST_CASE("Linux invalidation: STE and CD transitions cost the KUnit tests' SYNCs",
          "[domain_allocator][linux]") {
  // Facts 3.3's table (arm-smmu-v3-test.c): abort -> bypass 2, bypass -> S2 2, S2 -> S1
  // (cdtable) 3 after the CD's invalid -> valid 2, cdtable -> bypass 3 and the CD cleared 2,
  // bypass -> abort 2.
  Stack st(oneSmmuManifest(Placement{}));
  auto owner = st.claimDevice("01:00.0");  // its STE is abort now (blocked domain)
  REQUIRE(st.master("0000:01:00.0").sids.size() == 1);
  auto identity = st.domains.allocIdentityRequest().send().wait(st.ws).getDomain();
  auto blocked = st.domains.allocBlockedRequest().send().wait(st.ws).getDomain();
  auto s2 = st.paging("01:00.0", true);
  REQUIRE(s2.errno_ == Errno::OK);
  auto s1 = st.s1("01:00.0");
  struct Step {
    const char* what;
    rpc::Domain::Client domain;
    uint64_t syncs;
  } steps[] = {
      {"abort -> bypass", identity, 2},
      {"bypass -> S2", s2.domain, 2},
      {"S2 -> S1 (CD invalid -> valid, then S2 -> cdtable)", s1, 2 + 3},
      // The STE's 3, then arm_smmu_clear_cd(SSID 0) of the valid CD: 2 (arm_smmu_attach_dev_ste
      // clears it after the STE, as for an S2 attach).
      {"cdtable -> bypass, then CD valid -> cleared", identity, 3 + 2},
      {"bypass -> abort", blocked, 2},
  };
  for (auto& step : steps) {
    INFO(step.what);
    const uint64_t before = st.counter("domains", "syncs");
    CHECK(st.replace(owner, step.domain) == Errno::OK);
    CHECK(st.counter("domains", "syncs") - before == step.syncs);
  }
}

TEST_CASE("Linux invalidation: PASID transitions cost the KUnit tests' SYNCs",
          "[domain_allocator][linux]") {
  // Facts 3.3: plain bypass <-> S1DSS-bypass cdtable 2 each way; a CD invalid <-> valid 2; a new
  // leaf of a two-level CD table (pasid_bits 20 > CTXDESC_LINEAR_CDMAX) costs its level-1
  // descriptor's CFGI_CD (leaf = 0) + SYNC: 1 (arm_smmu_alloc_cd_ptr).
  Stack st(oneSmmuManifest(Placement{}));
  auto owner = st.claimDevice("00:10.0");  // integrated endpoint: PASID-capable
  REQUIRE(st.master("0000:00:10.0").sids.size() == 1);
  auto identity = st.domains.allocIdentityRequest().send().wait(st.ws).getDomain();
  auto d = st.s1("00:10.0");
  auto syncs = [&]() { return st.counter("domains", "syncs"); };
  uint64_t before = syncs();
  CHECK(st.attach(owner, identity) == Errno::OK);
  CHECK(syncs() - before == 2);  // abort -> bypass
  before = syncs();
  const uint64_t leaves = st.counter("domains", "cd_leaves");
  CHECK(st.attachPasid(owner, 7, d) == Errno::OK);
  // The device's CD table and its first leaf exist since its boot-time default domain (Linux
  // keeps master->cd_table too): CD invalid -> valid 2, then the STE 2.
  CHECK(st.counter("domains", "cd_leaves") == leaves);
  CHECK(syncs() - before == 2 + 2);
  // A PASID in a leaf not allocated yet: its level-1 descriptor's CFGI_CD (leaf = 0) + SYNC
  // first, then the CD 2; the STE does not change.
  before = syncs();
  auto d2 = st.s1("00:10.0");
  CHECK(st.attachPasid(owner, 1024, d2) == Errno::OK);
  CHECK(st.counter("domains", "cd_leaves") == leaves + 1);
  CHECK(syncs() - before == 1 + 2);
  before = syncs();
  auto req = owner.detachPasidRequest();
  req.setPasid(7);
  CHECK(req.send().wait(st.ws).getErrno() == Errno::OK);
  CHECK(syncs() - before == 2);  // CD valid -> cleared; PASID 1024 keeps the STE
  before = syncs();
  auto last = owner.detachPasidRequest();
  last.setPasid(1024);
  CHECK(last.send().wait(st.ws).getErrno() == Errno::OK);
  CHECK(syncs() - before == 2 + 2);  // CD valid -> cleared, STE back to plain bypass
}

// ---- strict and lazy

struct Lazy {
  Stack st;
  rpc::Ownership::Client owner;
  rpc::Domain::Client d = nullptr;
  uint64_t buffer;

  explicit Lazy(kj::StringPtr placement,
                kj::StringPtr domainsExtra = "default_domain_type = \"dma_fq\"\n")
      : st(manifestFor(Case{true, false, "6.18"}, placement, domainsExtra)),
        owner(st.claimDevice("01:00.0")),
        buffer(st.alloc(0x10000)) {
    d = st.s1("01:00.0");
    REQUIRE(st.attach(owner, d) == Errno::OK);
  }
};

TEST_CASE("Linux invalidation: the lazy window — DMA after unmap succeeds until the drain",
          "[domain_allocator][linux][lazy]") {
  for (kj::StringPtr where : {"inline"_kj, "process"_kj}) {
    DYNAMIC_SECTION(where.cStr()) {
      Lazy l(where);
      kj::Own<capnp::MallocMessageBuilder> keep;
      CHECK(l.st.info(l.d, keep).getFlushQueue());
      const uint64_t iova = 0x1000'0000;
      REQUIRE(l.st.map(l.d, iova, l.buffer, PAGE) == Errno::OK);
      CHECK(l.st.dma("ep0", iova + 8, "lazy"_kj).outcome == "ok"_kj);  // cached in the IOTLB
      const uint64_t syncs = l.st.counter("smmu0", "cmdq_op_sync");
      auto u = l.st.unmap(l.d, iova, PAGE);
      CHECK(u.bytes == PAGE);
      CHECK(u.commands == 0);  // no table freed, the leaf flush deferred
      CHECK(l.st.counter("smmu0", "cmdq_op_sync") == syncs);
      CHECK(l.st.counter("domains", "fq_queued") == 1);
      CHECK(l.st.counter("domains", "fq_pending") == 1);
      // The window: the stale IOTLB entry still translates.
      CHECK(l.st.dma("ep0", iova + 8, nullptr, 4).outcome == "ok"_kj);
      // The timer's expiry (explicit until time is modelled): NH_ASID + SYNC, entry reclaimed.
      auto drained = l.d.drainFlushQueueRequest().send().wait(l.st.ws);
      CHECK(drained.getErrno() == Errno::OK);
      CHECK(drained.getFlushed());
      CHECK(drained.getEntries() == 1);
      CHECK(l.st.counter("smmu0", "cmdq_op_sync") == syncs + 1);
      CHECK(l.st.counter("smmu0", "cmdq_op_tlbi_nh_asid") >= 1);
      CHECK(l.st.counter("domains", "fq_timeout_flushes") == 1);
      CHECK(l.st.counter("domains", "fq_pending") == 0);
      CHECK(l.st.dma("ep0", iova + 8, nullptr, 4).outcome == "fault fTranslation"_kj);
      // Nothing pending: the timer is not armed, a drain flushes nothing.
      auto again = l.d.drainFlushQueueRequest().send().wait(l.st.ws);
      CHECK(!again.getFlushed());
      CHECK(l.st.counter("smmu0", "cmdq_op_sync") == syncs + 1);
    }
  }
}

TEST_CASE("Linux invalidation: a full flush queue flushes on the 256th entry; walks stay strict",
          "[domain_allocator][linux][lazy]") {
  Lazy l("inline");
  const uint64_t iova = 0x1000'0000;
  REQUIRE(l.st.map(l.d, iova, l.buffer, PAGE) == Errno::OK);
  const uint64_t syncs = l.st.counter("smmu0", "cmdq_op_sync");
  // 255 unmaps fill the ring (256 slots, one always free).
  for (int i = 0; i < 255; i++) {
    REQUIRE(l.st.unmap(l.d, iova, PAGE).bytes == PAGE);
    REQUIRE(l.st.map(l.d, iova, l.buffer, PAGE) == Errno::OK);
  }
  CHECK(l.st.counter("smmu0", "cmdq_op_sync") == syncs);
  CHECK(l.st.counter("domains", "fq_pending") == 255);
  // The 256th: the ring is full, nothing reclaimable: one synchronous flush, 255 reclaimed.
  auto u = l.st.unmap(l.d, iova, PAGE);
  CHECK(u.commands == 1);
  CHECK(u.syncs == 1);
  CHECK(l.st.counter("domains", "fq_full_flushes") == 1);
  CHECK(l.st.counter("domains", "fq_pending") == 1);
  CHECK(l.st.counter("smmu0", "cmdq_op_sync") == syncs + 1);
  // A table-freeing unmap still flushes the walk at once (and only the walk).
  auto big = l.st.alloc(2 * MiB, 2 * MiB);
  REQUIRE(l.st.map(l.d, 0x2000'0000, big + PAGE, 2 * MiB - PAGE) == Errno::OK);
  REQUIRE(l.st.map(l.d, 0x2000'0000 + 2 * MiB - PAGE, big, PAGE) == Errno::OK);
  auto w = l.st.unmap(l.d, 0x2000'0000, 2 * MiB);
  CHECK(w.commands == 1);  // the walk range (RIL): no leaf flush
  CHECK(l.st.counter("domains", "walk_flushes") == 1);
  CHECK(l.st.counter("domains", "fq_pending") == 2);
}

TEST_CASE("Linux invalidation: every policy gives identical counters inline and process-placed",
          "[domain_allocator][linux]") {
  struct Config {
    const char* domains;
    const char* queue;
  } configs[] = {
      {"default_domain_type = \"dma\"\nkernel = \"6.18\"\n", ""},
      {"default_domain_type = \"dma_fq\"\nkernel = \"6.18\"\n", ""},
      {"default_domain_type = \"dma\"\nkernel = \"7.1\"\n", ""},
      {"default_domain_type = \"dma\"\nkernel = \"6.12\"\n", ""},
      {"default_domain_type = \"dma\"\n", "sync_policy = \"per_batch\"\nbatch_size = 8\n"},
  };
  const char* names[] = {"smmu0", "smmu_queue", "domains", "page_table"};
  for (auto config : configs) {
    DYNAMIC_SECTION(config.domains << config.queue) {
      std::vector<std::vector<uint64_t>> runs;
      for (kj::StringPtr where : {"inline"_kj, "process"_kj}) {
        Stack st(oneSmmuManifest(Placement{where}, "ril = false\n", "", config.queue,
                                 config.domains));
        auto owner = st.claimDevice("01:00.0");
        auto d = st.s1("01:00.0");
        REQUIRE(st.attach(owner, d) == Errno::OK);
        for (int i = 0; i < 8; i++) {
          REQUIRE(st.map(d, BASE, 0x1000, 2 * MiB + 3 * PAGE) == Errno::OK);
          REQUIRE(st.unmap(d, BASE, PAGE).bytes == PAGE);
          REQUIRE(st.unmap(d, BASE + PAGE, 2 * MiB + 2 * PAGE).bytes == 2 * MiB + 2 * PAGE);
        }
        std::vector<uint64_t> values;
        for (auto& s : st.sys.stats()) {
          for (auto n : names) {
            if (s.name != n) continue;
            for (auto& c : s.counters) {
              // Placement-dependent by nature: doorbells and polls race the model.
              if (c.name == "doorbells" || c.name == "cons_polls" || c.name == "frames_pooled") {
                continue;
              }
              values.push_back(c.value);
            }
          }
        }
        runs.push_back(values);
      }
      REQUIRE(runs[0].size() > 50);
      CHECK(runs[0] == runs[1]);
    }
  }
}

}  // namespace
}  // namespace nb::domains::testing
