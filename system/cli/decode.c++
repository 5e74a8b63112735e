// SMMUv3 structures decoded. See decode.h.

#include "system/cli/decode.h"

#include "interfaces/report.capnp.h"
#include "util/smmuv3/cd.h"
#include "util/smmuv3/commands.h"
#include "util/smmuv3/registers.h"
#include "util/smmuv3/ste.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace nb::decode {

namespace {

using namespace smmuv3;

enum class Shown : uint8_t {
  NUMBER,    // decimal
  HEX,       // a register-like value
  ADDRESS,   // the field's bits in place: an address aligned to its low bit
};

struct FieldDesc {
  const char* name;
  uint8_t word;
  Field field;
  Shown shown;
};

kj::String valueText(uint64_t word, const FieldDesc& d) {
  switch (d.shown) {
    case Shown::NUMBER: return kj::str(d.field.get(word));
    case Shown::HEX: return kj::str("0x", kj::hex(d.field.get(word)));
    case Shown::ADDRESS: return kj::str("0x", kj::hex(word & d.field.mask()));
  }
  KJ_UNREACHABLE;
}

kj::String fieldsText(kj::ArrayPtr<const uint64_t> words, kj::ArrayPtr<const FieldDesc> fields,
                      bool skipZero = false) {
  kj::Vector<kj::String> lines;
  for (auto& d : fields) {
    uint64_t word = d.word < words.size() ? words[d.word] : 0;
    if (skipZero && d.field.get(word) == 0) continue;
    lines.add(kj::str("  ", d.name, kj::repeat(' ', 12 - kj::min(size_t(11), strlen(d.name))),
                      valueText(word, d)));
  }
  return kj::strArray(lines, "\n");
}

kj::String wordsText(kj::ArrayPtr<const uint64_t> words) {
  kj::Vector<kj::String> w;
  for (auto x : words) w.add(kj::str("0x", kj::hex(x)));
  return kj::strArray(w, " ");
}

// ---- commands (facts 1.2, 1.3)

constexpr FieldDesc TLBI_FIELDS[] = {
    {"ASID", 0, cmd::TLBI_0_ASID, Shown::NUMBER},   {"VMID", 0, cmd::TLBI_0_VMID, Shown::NUMBER},
    {"NUM", 0, cmd::TLBI_0_NUM, Shown::NUMBER},     {"SCALE", 0, cmd::TLBI_0_SCALE, Shown::NUMBER},
    {"LEAF", 1, cmd::TLBI_1_LEAF, Shown::NUMBER},   {"TTL", 1, cmd::TLBI_1_TTL, Shown::NUMBER},
    {"TG", 1, cmd::TLBI_1_TG, Shown::NUMBER},       {"ADDR", 1, cmd::TLBI_1_VA, Shown::ADDRESS},
};
constexpr FieldDesc TLBI_IPA_FIELDS[] = {
    {"VMID", 0, cmd::TLBI_0_VMID, Shown::NUMBER},   {"NUM", 0, cmd::TLBI_0_NUM, Shown::NUMBER},
    {"SCALE", 0, cmd::TLBI_0_SCALE, Shown::NUMBER}, {"LEAF", 1, cmd::TLBI_1_LEAF, Shown::NUMBER},
    {"TTL", 1, cmd::TLBI_1_TTL, Shown::NUMBER},     {"TG", 1, cmd::TLBI_1_TG, Shown::NUMBER},
    {"IPA", 1, cmd::TLBI_1_IPA, Shown::ADDRESS},
};
constexpr FieldDesc CFGI_FIELDS[] = {
    {"SID", 0, cmd::CFGI_0_SID, Shown::HEX}, {"SSID", 0, cmd::CFGI_0_SSID, Shown::HEX},
    {"LEAF", 1, cmd::CFGI_1_LEAF, Shown::NUMBER},
};
constexpr FieldDesc CFGI_RANGE_FIELDS[] = {
    {"SID", 0, cmd::CFGI_0_SID, Shown::HEX}, {"RANGE", 1, cmd::CFGI_1_RANGE, Shown::NUMBER},
};
constexpr FieldDesc PREFETCH_FIELDS[] = {
    {"SID", 0, cmd::PREFETCH_0_SID, Shown::HEX},   {"SSV", 0, cmd::CMD_0_SSV, Shown::NUMBER},
    {"SSID", 0, cmd::PREFETCH_0_SSID, Shown::HEX}, {"SIZE", 1, cmd::PREFETCH_1_SIZE, Shown::NUMBER},
    {"ADDR", 1, cmd::PREFETCH_1_ADDR, Shown::ADDRESS},
};
constexpr FieldDesc ATC_FIELDS[] = {
    {"SID", 0, cmd::ATC_0_SID, Shown::HEX},         {"SSV", 0, cmd::CMD_0_SSV, Shown::NUMBER},
    {"SSID", 0, cmd::ATC_0_SSID, Shown::HEX},       {"GLOBAL", 0, cmd::ATC_0_GLOBAL, Shown::NUMBER},
    {"SIZE", 1, cmd::ATC_1_SIZE, Shown::NUMBER},    {"ADDR", 1, cmd::ATC_1_ADDR, Shown::ADDRESS},
};
constexpr FieldDesc PRI_FIELDS[] = {
    {"SID", 0, cmd::PRI_0_SID, Shown::HEX},         {"SSV", 0, cmd::CMD_0_SSV, Shown::NUMBER},
    {"SSID", 0, cmd::PRI_0_SSID, Shown::HEX},       {"GRPID", 1, cmd::PRI_1_GRPID, Shown::NUMBER},
    {"RESP", 1, cmd::PRI_1_RESP, Shown::NUMBER},
};
constexpr FieldDesc RESUME_FIELDS[] = {
    {"SID", 0, cmd::RESUME_0_SID, Shown::HEX}, {"RESP", 0, cmd::RESUME_0_RESP, Shown::NUMBER},
    {"STAG", 1, cmd::RESUME_1_STAG, Shown::NUMBER},
};
constexpr FieldDesc SID_FIELDS[] = {{"SID", 0, bits(63, 32), Shown::HEX}};
constexpr FieldDesc SYNC_FIELDS[] = {
    {"CS", 0, cmd::SYNC_0_CS, Shown::NUMBER},         {"MSH", 0, cmd::SYNC_0_MSH, Shown::NUMBER},
    {"MSIATTR", 0, cmd::SYNC_0_MSIATTR, Shown::HEX},  {"MSIDATA", 0, cmd::SYNC_0_MSIDATA, Shown::HEX},
    {"MSIADDR", 1, cmd::SYNC_1_MSIADDR, Shown::ADDRESS},
};

struct OpcodeDesc {
  uint8_t op;
  const char* name;
  kj::ArrayPtr<const FieldDesc> fields;
};

const OpcodeDesc OPCODES[] = {
    {0x01, "CMD_PREFETCH_CONFIG", kj::arrayPtr(PREFETCH_FIELDS, 3)},
    {0x02, "CMD_PREFETCH_ADDR", PREFETCH_FIELDS},
    {0x03, "CMD_CFGI_STE", CFGI_FIELDS},
    {0x04, "CMD_CFGI_STE_RANGE", CFGI_RANGE_FIELDS},
    {0x05, "CMD_CFGI_CD", CFGI_FIELDS},
    {0x06, "CMD_CFGI_CD_ALL", kj::arrayPtr(CFGI_FIELDS, 1)},
    {0x07, "CMD_CFGI_VMS_PIDM", nullptr},
    {0x10, "CMD_TLBI_NH_ALL", kj::arrayPtr(TLBI_FIELDS + 1, 1)},
    {0x11, "CMD_TLBI_NH_ASID", kj::arrayPtr(TLBI_FIELDS, 2)},
    {0x12, "CMD_TLBI_NH_VA", TLBI_FIELDS},
    {0x13, "CMD_TLBI_NH_VAA", kj::arrayPtr(TLBI_FIELDS + 1, 7)},
    {0x18, "CMD_TLBI_EL3_ALL", nullptr},
    {0x1a, "CMD_TLBI_EL3_VA", kj::arrayPtr(TLBI_FIELDS + 2, 6)},
    {0x20, "CMD_TLBI_EL2_ALL", nullptr},
    {0x21, "CMD_TLBI_EL2_ASID", kj::arrayPtr(TLBI_FIELDS, 1)},
    {0x22, "CMD_TLBI_EL2_VA", TLBI_FIELDS},
    {0x23, "CMD_TLBI_EL2_VAA", kj::arrayPtr(TLBI_FIELDS + 2, 6)},
    {0x28, "CMD_TLBI_S12_VMALL", kj::arrayPtr(TLBI_FIELDS + 1, 1)},
    {0x2a, "CMD_TLBI_S2_IPA", TLBI_IPA_FIELDS},
    {0x30, "CMD_TLBI_NSNH_ALL", nullptr},
    {0x40, "CMD_ATC_INV", ATC_FIELDS},
    {0x41, "CMD_PRI_RESP", PRI_FIELDS},
    {0x44, "CMD_RESUME", RESUME_FIELDS},
    {0x45, "CMD_STALL_TERM", SID_FIELDS},
    {0x46, "CMD_SYNC", SYNC_FIELDS},
};

// ---- STE (facts 2.1) and CD (facts 2.5)

constexpr FieldDesc STE_FIELDS[] = {
    {"V", 0, ste::STE_0_V, Shown::NUMBER},
    {"Config", 0, ste::STE_0_CONFIG, Shown::NUMBER},
    {"S1Fmt", 0, ste::STE_0_S1FMT, Shown::NUMBER},
    {"S1ContextPtr", 0, ste::STE_0_S1CTXPTR, Shown::ADDRESS},
    {"S1CDMax", 0, ste::STE_0_S1CDMAX, Shown::NUMBER},
    {"S1DSS", 1, ste::STE_1_S1DSS, Shown::NUMBER},
    {"S1CIR", 1, ste::STE_1_S1CIR, Shown::NUMBER},
    {"S1COR", 1, ste::STE_1_S1COR, Shown::NUMBER},
    {"S1CSH", 1, ste::STE_1_S1CSH, Shown::NUMBER},
    {"MEV", 1, ste::STE_1_MEV, Shown::NUMBER},
    {"S2FWB", 1, ste::STE_1_S2FWB, Shown::NUMBER},
    {"S1STALLD", 1, ste::STE_1_S1STALLD, Shown::NUMBER},
    {"EATS", 1, ste::STE_1_EATS, Shown::NUMBER},
    {"STRW", 1, ste::STE_1_STRW, Shown::NUMBER},
    {"SHCFG", 1, ste::STE_1_SHCFG, Shown::NUMBER},
    {"S2VMID", 2, ste::STE_2_S2VMID, Shown::NUMBER},
    {"S2T0SZ", 2, ste::STE_2_S2T0SZ, Shown::NUMBER},
    {"S2SL0", 2, ste::STE_2_S2SL0, Shown::NUMBER},
    {"S2IR0", 2, ste::STE_2_S2IR0, Shown::NUMBER},
    {"S2OR0", 2, ste::STE_2_S2OR0, Shown::NUMBER},
    {"S2SH0", 2, ste::STE_2_S2SH0, Shown::NUMBER},
    {"S2TG", 2, ste::STE_2_S2TG, Shown::NUMBER},
    {"S2PS", 2, ste::STE_2_S2PS, Shown::NUMBER},
    {"S2AA64", 2, ste::STE_2_S2AA64, Shown::NUMBER},
    {"S2ENDI", 2, ste::STE_2_S2ENDI, Shown::NUMBER},
    {"S2AFFD", 2, ste::STE_2_S2AFFD, Shown::NUMBER},
    {"S2PTW", 2, ste::STE_2_S2PTW, Shown::NUMBER},
    {"S2HD", 2, ste::STE_2_S2HD, Shown::NUMBER},
    {"S2HA", 2, ste::STE_2_S2HA, Shown::NUMBER},
    {"S2S", 2, ste::STE_2_S2S, Shown::NUMBER},
    {"S2R", 2, ste::STE_2_S2R, Shown::NUMBER},
    {"S2TTB", 3, ste::STE_3_S2TTB, Shown::ADDRESS},
};

constexpr FieldDesc CD_FIELDS[] = {
    {"T0SZ", 0, cd::CD_0_T0SZ, Shown::NUMBER},   {"TG0", 0, cd::CD_0_TG0, Shown::NUMBER},
    {"IRGN0", 0, cd::CD_0_IRGN0, Shown::NUMBER}, {"ORGN0", 0, cd::CD_0_ORGN0, Shown::NUMBER},
    {"SH0", 0, cd::CD_0_SH0, Shown::NUMBER},     {"EPD0", 0, cd::CD_0_EPD0, Shown::NUMBER},
    {"ENDI", 0, cd::CD_0_ENDI, Shown::NUMBER},   {"T1SZ", 0, cd::CD_0_T1SZ, Shown::NUMBER},
    {"TG1", 0, cd::CD_0_TG1, Shown::NUMBER},     {"EPD1", 0, cd::CD_0_EPD1, Shown::NUMBER},
    {"V", 0, cd::CD_0_V, Shown::NUMBER},         {"IPS", 0, cd::CD_0_IPS, Shown::NUMBER},
    {"AFFD", 0, cd::CD_0_AFFD, Shown::NUMBER},   {"TBI0", 0, cd::CD_0_TBI0, Shown::NUMBER},
    {"AA64", 0, cd::CD_0_AA64, Shown::NUMBER},   {"HD", 0, cd::CD_0_HD, Shown::NUMBER},
    {"HA", 0, cd::CD_0_HA, Shown::NUMBER},       {"S", 0, cd::CD_0_S, Shown::NUMBER},
    {"R", 0, cd::CD_0_R, Shown::NUMBER},         {"A", 0, cd::CD_0_A, Shown::NUMBER},
    {"ASET", 0, cd::CD_0_ASET, Shown::NUMBER},   {"ASID", 0, cd::CD_0_ASID, Shown::NUMBER},
    {"TTB0", 1, cd::CD_1_TTB0, Shown::ADDRESS},  {"TTB1", 2, cd::CD_2_TTB1, Shown::ADDRESS},
    {"MAIR", 3, cd::CD_3_MAIR, Shown::HEX},
};

const char* configName(uint64_t config) {
  switch (config) {
    case ste::CONFIG_BYPASS: return "bypass";
    case ste::CONFIG_S1_TRANS: return "stage 1";
    case ste::CONFIG_S2_TRANS: return "stage 2";
    case ste::CONFIG_NESTED: return "nested (stage 1 over stage 2)";
    default: return config < 4 ? "abort" : "reserved";
  }
}

// ---- walks (facts 4.1, 4.3): VMSAv8-64 long descriptors, OA up to 48 bits


unsigned granuleBitsOfTg0(uint64_t tg0) { return tg0 == cd::TG0_64K ? 16 : tg0 == cd::TG0_16K ? 14 : 12; }
unsigned granuleBitsOfS2Tg(uint64_t tg) { return tg == ste::S2TG_64K ? 16 : tg == ste::S2TG_16K ? 14 : 12; }

// The level a walk of `ias` bits starts at with granule 2^g (one table per level above it).
unsigned startLevelFor(unsigned ias, unsigned g) {
  unsigned stride = g - 3;
  unsigned levels = (ias - g + stride - 1) / stride;
  return 4 - kj::min(levels, 4u);
}

}  // namespace

kj::String command(uint64_t dw0, uint64_t dw1) {
  uint64_t words[2] = {dw0, dw1};
  uint8_t op = uint8_t(cmd::CMD_0_OP.get(dw0));
  for (auto& o : OPCODES) {
    if (o.op != op) continue;
    auto fields = fieldsText(words, o.fields);
    return kj::str(o.name, " (opcode 0x", kj::hex(op), ")  ", wordsText(words), fields.size() ? "\n" : "",
                   fields, "\n");
  }
  return kj::str("unknown opcode 0x", kj::hex(op), "  ", wordsText(words), "\n");
}

kj::String ste(kj::ArrayPtr<const uint64_t> q) {
  uint64_t config = ste::STE_0_CONFIG.get(q[0]);
  bool valid = ste::STE_0_V.test(q[0]);
  return kj::str("STE ", valid ? "valid" : "invalid (V = 0: C_BAD_STE)", ", Config ", config, " = ",
                 configName(config), "  ", wordsText(q), "\n", fieldsText(q, STE_FIELDS), "\n");
}

kj::String cd(kj::ArrayPtr<const uint64_t> q) {
  bool valid = cd::CD_0_V.test(q[0]);
  uint64_t t0sz = cd::CD_0_T0SZ.get(q[0]);
  return kj::str("CD ", valid ? "valid" : "invalid (V = 0: C_BAD_CD)", ", ASID ", cd::CD_0_ASID.get(q[0]),
                 ", ", 64 - t0sz, "-bit input, ", 1u << (granuleBitsOfTg0(cd::CD_0_TG0.get(q[0])) - 10),
                 "K granule  ", wordsText(q), "\n", fieldsText(q, CD_FIELDS), "\n");
}

kj::OneOf<Image, kj::String> Image::open(kj::StringPtr path) {
  auto sidecar = kj::str(path, ".json");
  auto readAll = [](kj::StringPtr p) -> kj::Maybe<kj::Array<kj::byte>> {
    FILE* f = fopen(p.cStr(), "rb");
    if (f == nullptr) return nullptr;
    kj::Vector<kj::byte> out;
    kj::byte buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.addAll(kj::arrayPtr(buf, n));
    fclose(f);
    return out.releaseAsArray();
  };
  Image image;
  KJ_IF_MAYBE(bytes, readAll(path)) { image.bytes_ = kj::mv(*bytes); } else {
    return kj::str("cannot read ", path, ": ", strerror(errno));
  }
  kj::Array<kj::byte> json;
  KJ_IF_MAYBE(bytes, readAll(sidecar)) { json = kj::mv(*bytes); } else {
    return kj::str("cannot read ", sidecar, " (written beside the image by --dump-memory): ", strerror(errno));
  }
  capnp::MallocMessageBuilder message;
  auto dump = message.initRoot<rpc::MemoryDump>();
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    capnp::JsonCodec().decode(kj::StringPtr(reinterpret_cast<const char*>(json.begin()), json.size()), dump);
  })) {
    return kj::str(sidecar, ": not a --dump-memory sidecar: ", e->getDescription());
  }
  image.base_ = dump.asReader().getBase();
  kj::Vector<StreamTable> tables;
  for (auto e : dump.asReader().getStructures()) {
    auto s = e.getStructure();
    if (s.getKind() != "stream_table") continue;
    // The SMMU and its driver may both report the table: once each.
    bool seen = false;
    for (auto& t : tables) seen = seen || (t.smmu == s.getName() && t.pa == s.getPa());
    if (seen) continue;
    kj::StringPtr detail = s.getDetail();
    StreamTable t{kj::heapString(s.getName()), s.getPa(), detail.startsWith("2-level"), 0, 0};
    // "linear log2size=N" or "2-level log2size=N split=S" (hw/smmuv3's structures()).
    if (const char* size = strstr(detail.cStr(), "log2size=")) t.log2Size = unsigned(atoi(size + 9));
    if (const char* split = strstr(detail.cStr(), "split=")) t.split = unsigned(atoi(split + 6));
    tables.add(kj::mv(t));
  }
  image.streamTables_ = tables.releaseAsArray();
  return kj::mv(image);
}

kj::OneOf<kj::Array<uint64_t>, kj::String> Image::read(uint64_t pa, size_t qwords) const {
  if (pa < base_ || pa - base_ + qwords * 8 > bytes_.size() || pa % 8 != 0) {
    return kj::str("0x", kj::hex(pa), " is outside the image (0x", kj::hex(base_), " + 0x",
                   kj::hex(bytes_.size()), ")");
  }
  auto out = kj::heapArray<uint64_t>(qwords);
  memcpy(out.begin(), bytes_.begin() + (pa - base_), qwords * 8);
  return kj::mv(out);
}

kj::OneOf<uint64_t, kj::String> Image::steAddress(uint32_t sid, kj::StringPtr smmu) const {
  const StreamTable* table = nullptr;
  kj::Vector<kj::StringPtr> names;
  for (auto& t : streamTables_) {
    names.add(t.smmu);
    if (smmu == nullptr || smmu.size() == 0 || t.smmu == smmu) {
      if (table != nullptr && (smmu == nullptr || smmu.size() == 0)) {
        return kj::str("several SMMUs have stream tables (", kj::strArray(names, ", "), "...): name one with --smmu");
      }
      if (table == nullptr) table = &t;
    }
  }
  if (table == nullptr) {
    return streamTables_.size() == 0 ? kj::str("the image has no stream table (no SMMU was enabled)")
                                     : kj::str("no stream table of SMMU '", smmu, "'");
  }
  if (sid >> table->log2Size != 0) {
    return kj::str("SID 0x", kj::hex(sid), " is beyond ", table->smmu, "'s stream table (2^", table->log2Size,
                   " StreamIDs)");
  }
  if (!table->twoLevel) return table->pa + uint64_t(sid) * ste::STE_BYTES;
  auto l1 = read(table->pa + uint64_t(sid >> table->split) * ste::L1STD_BYTES, 1);
  if (l1.is<kj::String>()) return kj::mv(l1.get<kj::String>());
  uint64_t desc = l1.get<kj::Array<uint64_t>>()[0];
  uint64_t span = ste::L1STD_SPAN.get(desc);
  uint32_t index = sid & ((1u << table->split) - 1);
  if (span == 0 || index >> (span - 1) != 0) {
    return kj::str("SID 0x", kj::hex(sid), ": its level-1 descriptor 0x", kj::hex(desc), " has SPAN ", span,
                   " (C_BAD_STREAMID)");
  }
  return (desc & ste::L1STD_L2PTR.mask()) + uint64_t(index) * ste::STE_BYTES;
}

kj::OneOf<uint64_t, kj::String> Image::cdAddress(kj::ArrayPtr<const uint64_t> s, uint32_t ssid) const {
  uint64_t config = ste::STE_0_CONFIG.get(s[0]);
  if (!ste::STE_0_V.test(s[0]) || (config & 1) == 0) {
    return kj::str("the STE has no stage 1 (Config ", config, " = ", configName(config), "): no CD");
  }
  uint64_t ptr = s[0] & ste::STE_0_S1CTXPTR.mask();
  uint64_t cdmax = ste::STE_0_S1CDMAX.get(s[0]);
  if (ssid >> cdmax != 0) return kj::str("SSID ", ssid, " is beyond S1CDMax ", cdmax);
  if (config == ste::CONFIG_NESTED) {
    return kj::str("a nested STE's S1ContextPtr 0x", kj::hex(ptr), " is an IPA: decode the guest's CD there");
  }
  if (ste::STE_0_S1FMT.get(s[0]) == ste::S1FMT_LINEAR) return ptr + uint64_t(ssid) * cd::CD_BYTES;
  auto l1 = read(ptr + uint64_t(ssid / cd::CTXDESC_L2_ENTRIES) * cd::L1CD_BYTES, 1);
  if (l1.is<kj::String>()) return kj::mv(l1.get<kj::String>());
  uint64_t desc = l1.get<kj::Array<uint64_t>>()[0];
  if (!cd::L1CD_V.test(desc)) return kj::str("SSID ", ssid, ": its level-1 CD descriptor is invalid");
  return (desc & cd::L1CD_L2PTR.mask()) + uint64_t(ssid % cd::CTXDESC_L2_ENTRIES) * cd::CD_BYTES;
}

struct Image::Regime {
  const char* stage;
  uint64_t root;
  unsigned granuleBits;   // 12, 14 or 16
  unsigned ias;           // input address bits
  unsigned startLevel;
};

namespace {

using Regime = Image::Regime;

Regime stage2Of(kj::ArrayPtr<const uint64_t> s) {
  unsigned g = granuleBitsOfS2Tg(ste::STE_2_S2TG.get(s[2]));
  uint64_t sl0 = ste::STE_2_S2SL0.get(s[2]);
  unsigned start = g == 12 ? unsigned(2 - sl0) : unsigned(3 - sl0);
  return Regime{"stage 2", s[3] & ste::STE_3_S2TTB.mask(), g, unsigned(64 - ste::STE_2_S2T0SZ.get(s[2])), start};
}

Regime stage1Of(kj::ArrayPtr<const uint64_t> c) {
  Regime r{"stage 1", c[1] & cd::CD_1_TTB0.mask(), granuleBitsOfTg0(cd::CD_0_TG0.get(c[0])),
           unsigned(64 - cd::CD_0_T0SZ.get(c[0])), 0};
  r.startLevel = startLevelFor(r.ias, r.granuleBits);
  return r;
}

}  // namespace

// One stage's walk of `addr`, level by level into `lines`; each table's address goes through
// `table` first (stage 2, for a nested stage 1). The output address, or null on a fault.
kj::Maybe<uint64_t> Image::walkStage(const Regime& r, uint64_t addr, kj::Vector<kj::String>& lines,
                                     kj::StringPtr indent,
                                     kj::Function<kj::Maybe<uint64_t>(uint64_t)>& table) const {
  lines.add(kj::str(indent, r.stage, " walk of 0x", kj::hex(addr), ": root 0x", kj::hex(r.root), ", ",
                    1u << (r.granuleBits - 10), "K granule, ", r.ias, "-bit input, start level ", r.startLevel));
  if (r.ias < 64 && addr >> r.ias != 0) {
    lines.add(kj::str(indent, "  0x", kj::hex(addr), " is beyond the ", r.ias, "-bit input: F_TRANSLATION"));
    return nullptr;
  }
  unsigned g = r.granuleBits, stride = g - 3;
  uint64_t next = r.root;
  for (unsigned level = r.startLevel; level <= 3; level++) {
    uint64_t base;
    KJ_IF_MAYBE(pa, table(next)) { base = *pa; } else { return nullptr; }
    unsigned shift = g + (3 - level) * stride;
    unsigned width = level == r.startLevel ? r.ias - shift : stride;
    uint64_t index = (addr >> shift) & ((uint64_t(1) << width) - 1);
    uint64_t at = base + index * 8;
    auto read1 = read(at, 1);
    if (read1.is<kj::String>()) {
      lines.add(kj::str(indent, "  L", level, "[", index, "] at 0x", kj::hex(at), ": ", read1.get<kj::String>()));
      return nullptr;
    }
    uint64_t d = read1.get<kj::Array<uint64_t>>()[0];
    auto head = kj::str(indent, "  L", level, "[", index, "] at 0x", kj::hex(at), " = 0x", kj::hex(d), ": ");
    if ((d & 1) == 0) {
      lines.add(kj::str(head, "invalid: F_TRANSLATION"));
      return nullptr;
    }
    if (level < 3 && (d & 2)) {
      next = d & bits(47, g).mask();
      lines.add(kj::str(head, "table at 0x", kj::hex(next)));
      continue;
    }
    if (level == 3 && (d & 2) == 0) {
      lines.add(kj::str(head, "reserved at level 3: F_TRANSLATION"));
      return nullptr;
    }
    uint64_t blockMask = bits(47, shift).mask();
    uint64_t out = (d & blockMask) | (addr & ((uint64_t(1) << shift) - 1));
    // Lower attributes (facts 4.1): AP[7:6], AF[10]; upper: XN/UXN[54].
    lines.add(kj::str(head, level == 3 ? "page" : "block", " of 0x", kj::hex(uint64_t(1) << shift), " at 0x",
                      kj::hex(d & blockMask), ", AP ", (d >> 6) & 3, ", AF ", (d >> 10) & 1, ", XN ", (d >> 54) & 1));
    return out;
  }
  return nullptr;
}

kj::String Image::walk(kj::ArrayPtr<const uint64_t> s, kj::Maybe<kj::ArrayPtr<const uint64_t>> maybeCd,
                       uint64_t iova, uint32_t ssid) const {
  uint64_t config = ste::STE_0_CONFIG.get(s[0]);
  if (!ste::STE_0_V.test(s[0])) return kj::str("the STE is invalid: C_BAD_STE\n");
  if (config == ste::CONFIG_BYPASS) return kj::str("bypass: 0x", kj::hex(iova), " -> PA 0x", kj::hex(iova), "\n");
  if (config < 4) return kj::str("the STE aborts (Config ", config, "): no walk\n");
  kj::Vector<kj::String> lines;
  kj::Function<kj::Maybe<uint64_t>(uint64_t)> flat = [](uint64_t pa) -> kj::Maybe<uint64_t> { return pa; };
  auto finish = [&](kj::Maybe<uint64_t> out) {
    KJ_IF_MAYBE(pa, out) { lines.add(kj::str("  -> PA 0x", kj::hex(*pa))); }
    return kj::str(kj::strArray(lines, "\n"), "\n");
  };
  if (config == ste::CONFIG_S2_TRANS) return finish(walkStage(stage2Of(s), iova, lines, "", flat));
  if (config == ste::CONFIG_S1_TRANS) {
    auto& c = KJ_REQUIRE_NONNULL(maybeCd, "a stage-1 walk needs the CD");
    return finish(walkStage(stage1Of(c), iova, lines, "", flat));
  }
  // Nested: the CD and every stage-1 table are at IPAs, each translated at stage 2 first.
  auto s2 = stage2Of(s);
  kj::Function<kj::Maybe<uint64_t>(uint64_t)> throughS2 = [&](uint64_t ipa) -> kj::Maybe<uint64_t> {
    return walkStage(s2, ipa, lines, "    ", flat);
  };
  if (ste::STE_0_S1FMT.get(s[0]) != ste::S1FMT_LINEAR) {
    lines.add(kj::str("nested with a two-level guest CD table: not decoded here"));
    return finish(nullptr);
  }
  uint64_t cdIpa = (s[0] & ste::STE_0_S1CTXPTR.mask()) + uint64_t(ssid) * cd::CD_BYTES;
  lines.add(kj::str("nested: the guest's CD at IPA 0x", kj::hex(cdIpa)));
  uint64_t cdPa;
  KJ_IF_MAYBE(pa, throughS2(cdIpa)) { cdPa = *pa; } else { return finish(nullptr); }
  auto words = read(cdPa, 8);
  if (words.is<kj::String>()) {
    lines.add(kj::str("  the CD: ", words.get<kj::String>()));
    return finish(nullptr);
  }
  auto& c = words.get<kj::Array<uint64_t>>();
  if (!cd::CD_0_V.test(c[0])) {
    lines.add(kj::str("  the guest's CD at PA 0x", kj::hex(cdPa), " is invalid: C_BAD_CD"));
    return finish(nullptr);
  }
  kj::Maybe<uint64_t> ipa = walkStage(stage1Of(c), iova, lines, "", throughS2);
  KJ_IF_MAYBE(i, ipa) {
    lines.add(kj::str("  -> IPA 0x", kj::hex(*i)));
    return finish(walkStage(s2, *i, lines, "", flat));
  }
  return finish(nullptr);
}

}  // namespace nb::decode
