// tests/components/smmu_queue: what a guest's commands become on each path — the conversion
// table of arm_vsmmu_convert_user_cmd (facts 5.3), the software VCMDQ's subset, and the
// generic path's decode (with its lost precision) and re-encode. Expected commands are written
// with literal bit positions from facts 1.3 and 5.3, not with the production field tables.

#include "components/smmu_queue/smmuv3/guest-commands.h"

#include <capnp/message.h>
#include <catch2/catch.hpp>

namespace Catch {
template <>
struct StringMaker<nb::smmuq::Command> {
  static std::string convert(const nb::smmuq::Command& c) {
    return kj::str("{dw0 0x", kj::hex(c.dw0), ", dw1 0x", kj::hex(c.dw1), "}").cStr();
  }
};
}  // namespace Catch

namespace nb::smmuq {
namespace {

constexpr uint16_t VMID = 0x77;
constexpr uint64_t VSID = 0x10;
constexpr uint32_t SID = 0x300;

VsidLookup lookup() {
  return [](uint64_t vsid) -> kj::Maybe<uint32_t> {
    if (vsid == VSID) return SID;
    return nullptr;
  };
}

constexpr uint64_t vmidField(uint64_t v) { return v << 32; }   // TLBI dw0[47:32]
constexpr uint64_t asidField(uint64_t a) { return a << 48; }   // TLBI dw0[63:48]
constexpr uint64_t sidField(uint64_t s) { return s << 32; }    // CFGI/ATC dw0[63:32]

// The SMMU of these tables: RIL, ATS, 16-bit ASIDs, 20-bit SubstreamIDs.
GuestRules rules() {
  GuestRules r;
  r.ats = true;
  return r;
}

struct Row {
  const char* name;
  Command guest;
  bool accepted;
  Command expected;  // when accepted
};

void checkRow(const Row& row, kj::OneOf<Command, Refusal> result) {
  INFO(row.name);
  if (row.accepted) {
    REQUIRE(result.is<Command>());
    auto c = result.get<Command>();
    CHECK(c.dw0 == row.expected.dw0);
    CHECK(c.dw1 == row.expected.dw1);
  } else {
    REQUIRE(result.is<Refusal>());
    CHECK(result.get<Refusal>().errno_ == rpc::Errno::E_IO);
    CHECK(result.get<Refusal>().message.size() > 0);
  }
}

TEST_CASE("native conversion follows arm_vsmmu_convert_user_cmd opcode by opcode") {
  const Row rows[] = {
      // TLBI_NSNH_ALL becomes TLBI_NH_ALL of the vIOMMU's VMID, dw1 cleared.
      {"NSNH_ALL", {0x30, 0}, true, {0x10 | vmidField(VMID), 0}},
      // ... but a reserved dw1 bit is refused before it could reach the shared queue.
      {"NSNH_ALL with dw1 bits", {0x30, 0xdead}, false, {}},
      // NH_* keep every field but the VMID, which is forced.
      {"NH_ALL", {0x10 | vmidField(5), 0}, true, {0x10 | vmidField(VMID), 0}},
      {"NH_ASID", {0x11 | vmidField(5) | asidField(0x1234), 0}, true,
       {0x11 | vmidField(VMID) | asidField(0x1234), 0}},
      {"NH_VA range",
       {0x12 | (1ull << 12) | (2ull << 20) | vmidField(9) | asidField(7),
        0x4000'0000 | (1ull << 10) | (3ull << 8) | 1},
       true,
       {0x12 | (1ull << 12) | (2ull << 20) | vmidField(VMID) | asidField(7),
        0x4000'0000 | (1ull << 10) | (3ull << 8) | 1}},
      {"NH_VAA", {0x13 | vmidField(9), 0x1000}, true, {0x13 | vmidField(VMID), 0x1000}},
      // ATC_INV, CFGI_CD, CFGI_CD_ALL: vSID replaced by the physical SID, the rest kept.
      {"ATC_INV", {0x40 | (1ull << 11) | (5ull << 12) | sidField(VSID), 0x2000 | 3}, true,
       {0x40 | (1ull << 11) | (5ull << 12) | sidField(SID), 0x2000 | 3}},
      {"CFGI_CD", {0x05 | (3ull << 12) | sidField(VSID), 1}, true,
       {0x05 | (3ull << 12) | sidField(SID), 1}},
      {"CFGI_CD_ALL", {0x06 | sidField(VSID), 0}, true, {0x06 | sidField(SID), 0}},
      // A vSID without a vDEVICE, and every other opcode: EIO.
      {"ATC_INV unknown vSID", {0x40 | sidField(0x11), 0}, false, {}},
      {"CFGI_CD unknown vSID", {0x05 | sidField(0x11), 1}, false, {}},
      {"CFGI_STE", {0x03 | sidField(VSID), 1}, false, {}},
      {"CFGI_STE_RANGE (CFGI_ALL)", {0x04, 31}, false, {}},
      {"PREFETCH_CONFIG", {0x01 | sidField(VSID), 0}, false, {}},
      {"TLBI_S12_VMALL", {0x28 | vmidField(VMID), 0}, false, {}},
      {"TLBI_S2_IPA", {0x2a | vmidField(VMID), 0x1000}, false, {}},
      {"TLBI_EL2_ALL", {0x20, 0}, false, {}},
      {"TLBI_EL2_ASID", {0x21, 0}, false, {}},
      {"CMD_SYNC", {0x46, 0}, false, {}},
      {"RESUME", {0x44, 0}, false, {}},
      {"PRI_RESP", {0x41, 0}, false, {}},
      {"undefined opcode", {0xff, 0}, false, {}},
  };
  auto vsids = lookup();
  for (auto& row : rows) checkRow(row, convertNative(row.guest, VMID, vsids, rules()));
}

TEST_CASE("the software VCMDQ accepts only TLBI_NH_ASID, TLBI_NH_VA, ATC_INV and SYNC") {
  const Row rows[] = {
      {"NH_ASID", {0x11 | vmidField(1) | asidField(3), 0}, true,
       {0x11 | vmidField(VMID) | asidField(3), 0}},
      {"NH_VA", {0x12 | asidField(3), 0x5000 | 1}, true,
       {0x12 | vmidField(VMID) | asidField(3), 0x5000 | 1}},
      {"ATC_INV", {0x40 | sidField(VSID), 52}, true, {0x40 | sidField(SID), 52}},
      {"SYNC", {0x46 | (2ull << 12), 0}, true, {0x46 | (2ull << 12), 0}},
      {"NH_ALL", {0x10, 0}, false, {}},
      {"NSNH_ALL", {0x30, 0}, false, {}},
      {"NH_VAA", {0x13, 0x1000}, false, {}},
      {"CFGI_CD", {0x05 | sidField(VSID), 1}, false, {}},
      {"CFGI_CD_ALL", {0x06 | sidField(VSID), 0}, false, {}},
      {"ATC_INV unknown vSID", {0x40 | sidField(0x99), 52}, false, {}},
  };
  auto vsids = lookup();
  for (auto& row : rows) checkRow(row, convertVcmdq(row.guest, VMID, vsids, rules()));
}

TEST_CASE("a guest command the SMMU would refuse is EIO on every path, before the host queue",
          "[smmu_queue][guest][conformance]") {
  // IHI 0070 §4.1.3 (reserved fields are RES0, CERROR_ILL), §4.4.1 (range encodings), §4.5.1
  // (ATC_INV SIZE); field positions facts 1.3; the refusal is Linux's vIOMMU validation (facts
  // 5.3, "per-opcode reserved-bit validation"). `ok` rows are the same command made legal.
  struct VRow {
    const char* name;
    GuestRules rules;
    Command guest;
    bool ok;
  };
  const GuestRules all = rules();
  GuestRules noRil = all, noAts = all, asid8 = all, noSsid = all;
  noRil.ril = false;
  noAts.ats = false;
  asid8.asid16 = false;
  noSsid.ssidBits = 0;
  constexpr uint64_t VA = 0x4000'0000;
  constexpr uint64_t TG4K = 1ull << 10, TG16K = 2ull << 10;
  auto ttl = [](uint64_t t) { return t << 8; };
  auto num = [](uint64_t n) { return n << 12; };
  auto scale = [](uint64_t n) { return n << 20; };
  const VRow rows[] = {
      {"NH_VA TG=4K NUM=SCALE=TTL=0 (reserved)", all, {0x12 | asidField(1), VA | TG4K}, false},
      {"NH_VA TG=4K TTL=3 one page", all, {0x12 | asidField(1), VA | TG4K | ttl(3)}, true},
      {"NH_VAA TG=16K NUM=SCALE=TTL=0 (reserved)", all, {0x13, VA | TG16K}, false},
      {"NH_VAA TG=16K NUM=1", all, {0x13 | num(1), VA | TG16K}, true},
      {"NH_VA TG=0 NUM=1 (RES0)", all, {0x12 | num(1), VA}, false},
      {"NH_VA TG=0 SCALE=1 (RES0)", all, {0x12 | scale(1), VA}, false},
      {"NH_VA TG=0 TTL=2 (RES0)", all, {0x12, VA | ttl(2)}, false},
      {"NH_VA TG=16K TTL=1 without DS", all, {0x12 | num(1), VA | TG16K | ttl(1)}, false},
      {"NH_VA range fields without RIL", noRil, {0x12 | num(1), VA | TG4K}, false},
      {"NH_VA plain without RIL", noRil, {0x12, VA | 1}, true},
      {"NH_VA dw1[7:1] reserved", all, {0x12, VA | 2}, false},
      {"NH_VA dw0[19:17] reserved", all, {0x12 | (1ull << 17), VA}, false},
      {"NH_ASID ASID 0x100 with 8-bit ASIDs", asid8, {0x11 | asidField(0x100), 0}, false},
      {"NH_ASID ASID 0xff with 8-bit ASIDs", asid8, {0x11 | asidField(0xff), 0}, true},
      {"NH_ALL with an ASID", all, {0x10 | asidField(1), 0}, false},
      {"NH_ASID with dw1", all, {0x11 | asidField(1), 0x1000}, false},
      {"NSNH_ALL with a VMID", all, {0x30 | vmidField(1), 0}, false},
      {"ATC_INV without ATS", noAts, {0x40 | sidField(VSID), 52}, false},
      {"ATC_INV SIZE 53 (reserved)", all, {0x40 | sidField(VSID), 53}, false},
      {"ATC_INV SSV without substreams", noSsid, {0x40 | (1ull << 11) | sidField(VSID), 52},
       false},
      {"ATC_INV dw1[11:6] reserved", all, {0x40 | sidField(VSID), 1ull << 6}, false},
      {"CFGI_CD SSV (CFGI_CD has none)", all, {0x05 | (1ull << 11) | sidField(VSID), 1}, false},
      {"CFGI_CD SSID without substreams", noSsid, {0x05 | (1ull << 12) | sidField(VSID), 1},
       false},
      {"CFGI_CD dw1[1] reserved", all, {0x05 | sidField(VSID), 2}, false},
      {"CFGI_CD_ALL with an SSID", all, {0x06 | (1ull << 12) | sidField(VSID), 0}, false},
  };
  auto vsids = lookup();
  for (auto& row : rows) {
    INFO(row.name);
    auto native = convertNative(row.guest, VMID, vsids, row.rules);
    capnp::MallocMessageBuilder message;
    GenericLoss loss;
    auto generic =
        decodeGeneric(row.guest, message.initRoot<rpc::GenericInvalidation>(), loss, row.rules);
    if (row.ok) {
      CHECK(native.is<Command>());
      CHECK(generic == nullptr);
    } else {
      REQUIRE(native.is<Refusal>());
      CHECK(native.get<Refusal>().errno_ == rpc::Errno::E_IO);
      REQUIRE(generic != nullptr);
      CHECK(KJ_ASSERT_NONNULL(generic).errno_ == rpc::Errno::E_IO);
      // The VCMDQ's subset: its refusal becomes the VCMDQ's CERROR_ILL.
      auto op = row.guest.dw0 & 0xff;
      if (op == 0x11 || op == 0x12 || op == 0x40) {
        CHECK(convertVcmdq(row.guest, VMID, vsids, row.rules).is<Refusal>());
      }
    }
  }
}

struct DecodeRow {
  const char* name;
  Command guest;
  rpc::GenericCache cache;
  rpc::GenericScope scope;
  uint32_t asid;
  uint64_t addr, size, granule;
  bool leaf;
  uint64_t vsid;
  GenericLoss loss;
};

TEST_CASE("generic decoding says what it can and counts what it widens") {
  using C = rpc::GenericCache;
  using S = rpc::GenericScope;
  const DecodeRow rows[] = {
      {"NSNH_ALL", {0x30, 0}, C::IOTLB, S::ALL, 0, 0, 0, 0, false, 0, {}},
      {"NH_ALL", {0x10, 0}, C::IOTLB, S::ALL, 0, 0, 0, 0, false, 0, {}},
      {"NH_ASID", {0x11 | asidField(9), 0}, C::IOTLB, S::ASID, 9, 0, 0, 0, false, 0, {}},
      // Not a range (TG = 0): the page holding the VA.
      {"NH_VA one VA", {0x12 | asidField(9), 0x7000 | 1}, C::IOTLB, S::RANGE, 9, 0x7000, 0x1000,
       0x1000, true, 0, {}},
      // Range: (NUM + 1) << SCALE pages of TG's granule; TTL = 3 is dropped.
      {"NH_VA range 16K TTL", {0x12 | (2ull << 12) | (1ull << 20) | asidField(4),
                               0x10'0000 | (2ull << 10) | (3ull << 8)},
       C::IOTLB, S::RANGE, 4, 0x10'0000, 6 * 0x4000, 0x4000, false, 0, {1, 0, 0, 0}},
      {"NH_VAA", {0x13, 0x1000}, C::IOTLB, S::ALL, 0, 0, 0, 0, false, 0, {0, 1, 0, 0}},
      {"ATC_INV all", {0x40 | sidField(VSID), 52}, C::DEVICE_TLB, S::ALL, 0, 0, 0, 0, false,
       VSID, {}},
      {"ATC_INV span of 8 pages, one SSID",
       {0x40 | (1ull << 11) | (7ull << 12) | sidField(VSID), 0x8000 | 3}, C::DEVICE_TLB,
       S::RANGE, 0, 0x8000, 0x8000, 0x1000, false, VSID, {0, 0, 1, 0}},
      {"CFGI_CD", {0x05 | (2ull << 12) | sidField(VSID), 1}, C::CONTEXT, S::ALL, 0, 0, 0, 0,
       false, VSID, {0, 0, 0, 1}},
      {"CFGI_CD_ALL", {0x06 | sidField(VSID), 0}, C::CONTEXT, S::ALL, 0, 0, 0, 0, false, VSID,
       {}},
  };
  for (auto& row : rows) {
    INFO(row.name);
    capnp::MallocMessageBuilder message;
    auto d = message.initRoot<rpc::GenericInvalidation>();
    GenericLoss loss;
    CHECK(decodeGeneric(row.guest, d, loss, rules()) == nullptr);
    CHECK(d.getCache() == row.cache);
    CHECK(d.getScope() == row.scope);
    CHECK(d.getAsid() == row.asid);
    CHECK(d.getAddr() == row.addr);
    CHECK(d.getSize() == row.size);
    CHECK(d.getGranule() == row.granule);
    CHECK(d.getLeaf() == row.leaf);
    CHECK(d.getVsid() == row.vsid);
    CHECK(loss.ttl == row.loss.ttl);
    CHECK(loss.vaa == row.loss.vaa);
    CHECK(loss.atcSsid == row.loss.atcSsid);
    CHECK(loss.cdSsid == row.loss.cdSsid);
  }

  for (uint8_t op : {0x03, 0x04, 0x28, 0x2a, 0x46, 0x20}) {
    INFO("opcode " << int(op));
    capnp::MallocMessageBuilder message;
    GenericLoss loss;
    auto refusal =
        decodeGeneric(Command{op, 0}, message.initRoot<rpc::GenericInvalidation>(), loss, rules());
    REQUIRE(refusal != nullptr);
    CHECK(KJ_ASSERT_NONNULL(refusal).errno_ == rpc::Errno::E_IO);
  }
}

kj::Vector<Command> encode(rpc::GenericCache cache, rpc::GenericScope scope, uint32_t asid,
                           uint64_t addr, uint64_t size, uint64_t granule, bool leaf,
                           uint64_t vsid, bool ril, kj::Maybe<rpc::Errno> expectError = nullptr) {
  capnp::MallocMessageBuilder message;
  auto d = message.initRoot<rpc::GenericInvalidation>();
  d.setCache(cache);
  d.setScope(scope);
  d.setAsid(asid);
  d.setAddr(addr);
  d.setSize(size);
  d.setGranule(granule);
  d.setLeaf(leaf);
  d.setVsid(vsid);
  kj::Vector<Command> out;
  auto vsids = lookup();
  auto refusal = encodeGeneric(d.asReader(), VMID, ril, vsids, out);
  KJ_IF_MAYBE(e, expectError) {
    REQUIRE(refusal != nullptr);
    CHECK(KJ_ASSERT_NONNULL(refusal).errno_ == *e);
  } else {
    REQUIRE(refusal == nullptr);
  }
  return out;
}

TEST_CASE("generic descriptors re-encode into SMMUv3 commands of the vIOMMU's VMID") {
  using C = rpc::GenericCache;
  using S = rpc::GenericScope;

  auto all = encode(C::IOTLB, S::ALL, 0, 0, 0, 0, false, 0, true);
  REQUIRE(all.size() == 1);
  CHECK(all[0] == Command{0x10 | vmidField(VMID), 0});

  auto asid = encode(C::IOTLB, S::ASID, 7, 0, 0, 0, false, 0, true);
  REQUIRE(asid.size() == 1);
  CHECK(asid[0] == Command{0x11 | vmidField(VMID) | asidField(7), 0});

  // 8 pages of 4K with RIL (facts 1.4): SCALE = 3, NUM = 0, TG = 1 (4K), no TTL (the
  // descriptor has no level hint).
  auto ranged = encode(C::IOTLB, S::RANGE, 7, 0x4000'0000, 0x8000, 0x1000, true, 0, true);
  REQUIRE(ranged.size() == 1);
  CHECK(ranged[0] ==
        Command{0x12 | (3ull << 20) | vmidField(VMID) | asidField(7), 0x4000'0000 | (1ull << 10) | 1});

  // The widest legal guest range: NUM 31, SCALE 31 of 64K pages (32 x 2^31 pages = 2^52
  // bytes) decodes to one descriptor and re-encodes to one command of the same NUM and SCALE
  // (it used to throw: the page count's lowest set bit, 36, is beyond SCALE's 5 bits).
  auto widest = encode(C::IOTLB, S::RANGE, 7, 0, uint64_t(1) << 52, 0x10000, true, 0, true);
  REQUIRE(widest.size() == 1);
  CHECK(widest[0] == Command{0x12 | (31ull << 12) | (31ull << 20) | vmidField(VMID) | asidField(7),
                             (3ull << 10) | 1});

  // Without RIL: one TLBI_NH_VA per 4K page.
  auto paged = encode(C::IOTLB, S::RANGE, 7, 0x4000'0000, 0x8000, 0x1000, true, 0, false);
  REQUIRE(paged.size() == 8);
  for (unsigned i = 0; i < 8; i++) {
    CHECK(paged[i] == Command{0x12 | vmidField(VMID) | asidField(7), (0x4000'0000 + i * 0x1000ull) | 1});
  }

  // ATC: [0x3000, 0x5000) -> the 8-page span at 0 (facts 1.4 arm_smmu_atc_inv_to_cmd).
  auto atc = encode(C::DEVICE_TLB, S::RANGE, 0, 0x3000, 0x2000, 0x1000, false, VSID, true);
  REQUIRE(atc.size() == 1);
  CHECK(atc[0] == Command{0x40 | sidField(SID), 3});
  auto atcAll = encode(C::DEVICE_TLB, S::ALL, 0, 0, 0, 0, false, VSID, true);
  REQUIRE(atcAll.size() == 1);
  CHECK(atcAll[0] == Command{0x40 | sidField(SID), 52});

  auto context = encode(C::CONTEXT, S::ALL, 0, 0, 0, 0, false, VSID, true);
  REQUIRE(context.size() == 1);
  CHECK(context[0] == Command{0x06 | sidField(SID), 0});

  // Malformed descriptors and unknown vSIDs.
  encode(C::IOTLB, S::RANGE, 7, 0x1000, 0x1000, 0x2000, false, 0, true, rpc::Errno::E_INVAL);
  encode(C::IOTLB, S::RANGE, 7, 0x1800, 0x1000, 0x1000, false, 0, true, rpc::Errno::E_INVAL);
  encode(C::IOTLB, S::RANGE, 7, 0x1000, 0, 0x1000, false, 0, true, rpc::Errno::E_INVAL);
  encode(C::IOTLB, S::ASID, 0x10000, 0, 0, 0, false, 0, true, rpc::Errno::E_INVAL);
  encode(C::DEVICE_TLB, S::ALL, 0, 0, 0, 0, false, 0x99, true, rpc::Errno::E_IO);
  encode(C::CONTEXT, S::ALL, 0, 0, 0, 0, false, 0x99, true, rpc::Errno::E_IO);
  encode(C::CONTEXT, S::RANGE, 0, 0, 0x1000, 0x1000, false, VSID, true, rpc::Errno::E_INVAL);
}

}  // namespace
}  // namespace nb::smmuq
