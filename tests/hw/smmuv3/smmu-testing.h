// tests/hw/smmuv3: hand-built SMMU structures and a harness around one Smmuv3.
//
// Owns: test-only encoders for STEs, CDs, page-table descriptors, commands and expected event
// records, written with literal bit positions straight from the facts (sections 1.3, 2.1, 2.5,
// 3.2, 4.1) — deliberately NOT the production field tables, so a wrong production layout cannot
// hide behind the same wrong constant. Also a bump allocator over PhysMem, a small page-table
// writer (not the page-table engine), and register/queue helpers that bring the SMMU up the way
// the Linux reset sequence does (facts 1.8).

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/smmuv3.h"
#include <catch2/catch.hpp>
#include <kj/debug.h>
#include <kj/vector.h>
#include <initializer_list>

namespace nb::smmu::testing {

constexpr uint64_t MEM_BASE = 0x80000000;
constexpr uint64_t MEM_SIZE = 256ull << 20;  // memfd: only touched pages cost memory

inline constexpr uint64_t mask(unsigned hi, unsigned lo) {
  return (hi >= 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);
}

// ---- register offsets (facts 1.8) ----------------------------------------------------------
namespace off {
constexpr uint32_t IDR0 = 0x00, IDR1 = 0x04, IDR2 = 0x08, IDR3 = 0x0c, IDR4 = 0x10,
                   IDR5 = 0x14, IIDR = 0x18, AIDR = 0x1c, CR0 = 0x20, CR0ACK = 0x24, CR1 = 0x28,
                   CR2 = 0x2c, GBPA = 0x44, IRQ_CTRL = 0x50, IRQ_CTRL_ACK = 0x54, GERROR = 0x60,
                   GERRORN = 0x64, STRTAB_BASE = 0x80, STRTAB_BASE_CFG = 0x88, CMDQ_BASE = 0x90,
                   CMDQ_PROD = 0x98, CMDQ_CONS = 0x9c, EVTQ_BASE = 0xa0,
                   EVTQ_PROD = 0x10000 + 0xa8, EVTQ_CONS = 0x10000 + 0xac;
}
constexpr uint32_t CR0_SMMUEN = 1, CR0_EVTQEN = 4, CR0_CMDQEN = 8;
constexpr uint32_t CR2_E2H = 1, CR2_RECINVSID = 2, CR2_PTM = 4;  // facts 1.8

// ---- STE (facts 2.1) -----------------------------------------------------------------------
struct Words8 {
  uint64_t w[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};

struct S2Params {
  unsigned pageShift = 12;
  unsigned ias = 48;
  unsigned sl0 = 2;
  unsigned ps = 5;       // 48 bits
  uint64_t ttb = 0;
  uint16_t vmid = 1;
  bool s2r = true;
  bool ha = false, hd = false, affd = false;
};

inline uint64_t s2tg(unsigned pageShift) { return pageShift == 12 ? 0 : pageShift == 16 ? 1 : 2; }

inline Words8 steAbort() {
  Words8 s;
  s.w[0] = 1 | (0ull << 1);
  return s;
}
inline Words8 steBypass() {
  Words8 s;
  s.w[0] = 1 | (4ull << 1);
  return s;
}
inline void steSetS1(Words8& s, uint64_t cdPtr, unsigned cdMax = 0, unsigned fmt = 0,
                     unsigned dss = 0) {
  s.w[0] |= (uint64_t(fmt) << 4) | (cdPtr & mask(51, 6)) | (uint64_t(cdMax) << 59);
  s.w[1] |= uint64_t(dss) | (1ull << 2) | (1ull << 4) | (3ull << 6);  // S1DSS, CIR, COR, CSH
}
inline void steSetS2(Words8& s, const S2Params& p) {
  s.w[2] = uint64_t(p.vmid) | (uint64_t(64 - p.ias) << 32) | (uint64_t(p.sl0) << 38) |
           (1ull << 40) | (1ull << 42) | (3ull << 44) | (s2tg(p.pageShift) << 46) |
           (uint64_t(p.ps) << 48) | (1ull << 51) | (uint64_t(p.affd) << 53) |
           (uint64_t(p.hd) << 55) | (uint64_t(p.ha) << 56) | (uint64_t(p.s2r) << 58);
  s.w[3] = p.ttb & mask(51, 4);
}
inline Words8 steS1(uint64_t cdPtr, unsigned cdMax = 0, unsigned fmt = 0, unsigned dss = 0) {
  Words8 s;
  s.w[0] = 1 | (5ull << 1);
  steSetS1(s, cdPtr, cdMax, fmt, dss);
  return s;
}
inline Words8 steS2(const S2Params& p) {
  Words8 s;
  s.w[0] = 1 | (6ull << 1);
  steSetS2(s, p);
  return s;
}
inline Words8 steNested(uint64_t cdPtrIpa, const S2Params& p, unsigned cdMax = 0,
                        unsigned fmt = 0, unsigned dss = 0) {
  Words8 s;
  s.w[0] = 1 | (7ull << 1);
  steSetS1(s, cdPtrIpa, cdMax, fmt, dss);
  steSetS2(s, p);
  return s;
}

// ---- CD (facts 2.5) ------------------------------------------------------------------------
struct CdParams {
  unsigned pageShift = 12;
  unsigned ias = 48;
  unsigned ips = 5;      // 48 bits
  uint64_t ttb0 = 0;
  uint16_t asid = 1;
  bool record = true;
  bool ha = false, hd = false;
  bool epd0 = false, epd1 = true;
  bool abort = true;     // A: terminated faults abort (0: RAZ/WI when IDR0.TERM_MODEL = 0)
};
inline uint64_t tg0(unsigned pageShift) { return pageShift == 12 ? 0 : pageShift == 16 ? 1 : 2; }

inline Words8 cdS1(const CdParams& p) {
  Words8 c;
  c.w[0] = uint64_t(64 - p.ias) | (tg0(p.pageShift) << 6) | (1ull << 8) | (1ull << 10) |
           (3ull << 12) | (uint64_t(p.epd0) << 14) | (uint64_t(p.epd1) << 30) | (1ull << 31) |
           (uint64_t(p.ips) << 32) | (1ull << 41) | (uint64_t(p.hd) << 42) |
           (uint64_t(p.ha) << 43) | (uint64_t(p.record) << 45) | (uint64_t(p.abort) << 46) |
           (1ull << 47) | (uint64_t(p.asid) << 48);
  c.w[1] = p.ttb0 & mask(51, 4);
  c.w[3] = 0xf404ff44;  // facts 4.2 MAIR
  return c;
}

// ---- descriptors (facts 4.1) ---------------------------------------------------------------
constexpr uint64_t PTE_AF = 1ull << 10;
constexpr uint64_t PTE_NG = 1ull << 11;
constexpr uint64_t PTE_AP_UNPRIV = 1ull << 6;
constexpr uint64_t PTE_AP_RDONLY = 1ull << 7;
constexpr uint64_t PTE_S2_READ = 1ull << 6;
constexpr uint64_t PTE_S2_WRITE = 1ull << 7;
constexpr uint64_t PTE_DBM = 1ull << 51;
constexpr uint64_t PTE_PXN = 1ull << 53;
constexpr uint64_t PTE_UXN = 1ull << 54;
constexpr uint64_t PTE_XN = 1ull << 54;
// Linux's defaults (facts 4.2): S1 cached RW unprivileged; S2 cached RW.
constexpr uint64_t S1_RW = PTE_AF | PTE_NG | PTE_AP_UNPRIV | (3ull << 8) | (1ull << 2);
constexpr uint64_t S2_RW = PTE_AF | PTE_S2_READ | PTE_S2_WRITE | (3ull << 8) | (0xfull << 2);

inline unsigned levelShift(unsigned pageShift, unsigned level) {
  return (4 - level) * (pageShift - 3) + 3;  // facts 4.3
}

// ---- commands (facts 1.3) ------------------------------------------------------------------
struct Cmd {
  uint64_t dw0 = 0, dw1 = 0;
};
inline Cmd cmdCfgiSte(uint32_t sid) { return {0x03 | (uint64_t(sid) << 32), 1}; }
inline Cmd cmdCfgiSteRange(uint32_t sid, unsigned range) {
  return {0x04 | (uint64_t(sid) << 32), range};
}
inline Cmd cmdCfgiCd(uint32_t sid, uint32_t ssid) {
  return {0x05 | (uint64_t(ssid) << 12) | (uint64_t(sid) << 32), 1};
}
inline Cmd cmdCfgiCdAll(uint32_t sid) { return {0x06 | (uint64_t(sid) << 32), 0}; }
inline Cmd cmdTlbi(uint8_t op, uint16_t vmid = 0, uint16_t asid = 0, uint64_t addr = 0,
                   unsigned tg = 0, unsigned num = 0, unsigned scale = 0, unsigned ttl = 0,
                   bool leaf = true) {
  Cmd c;
  c.dw0 = op | (uint64_t(num) << 12) | (uint64_t(scale) << 20) | (uint64_t(vmid) << 32) |
          (uint64_t(asid) << 48);
  // Only the VA/IPA forms have a dw1 (facts 1.3); the others must leave it zero.
  bool hasAddress = op == 0x12 || op == 0x13 || op == 0x22 || op == 0x23 || op == 0x2a;
  if (hasAddress) {
    c.dw1 = uint64_t(leaf) | (uint64_t(ttl) << 8) | (uint64_t(tg) << 10) | (addr & mask(63, 12));
  }
  return c;
}
inline Cmd cmdSync(unsigned cs = 0, uint64_t msiAddr = 0, uint32_t msiData = 0) {
  return {0x46 | (uint64_t(cs) << 12) | (uint64_t(msiData) << 32), msiAddr & mask(51, 2)};
}

// ---- expected event records (facts 3.2) ----------------------------------------------------
struct Rec {
  uint8_t id;
  uint32_t sid = 0;
  kj::Maybe<uint32_t> ssid;
  bool pnu = false, ind = false, rnw = false, s2 = false, ttrnw = false;
  unsigned cls = 0;
  uint64_t input = 0;
  uint64_t dw3 = 0;

  EventRecord make() const {
    EventRecord r;
    r.dw[0] = id | (uint64_t(sid) << 32);
    KJ_IF_MAYBE(s, ssid) r.dw[0] |= (1ull << 11) | (uint64_t(*s) << 12);
    r.dw[1] = (uint64_t(pnu) << 33) | (uint64_t(ind) << 34) | (uint64_t(rnw) << 35) |
              (uint64_t(s2) << 39) | (uint64_t(cls) << 40) | (uint64_t(ttrnw) << 44);
    r.dw[2] = input;
    r.dw[3] = dw3;
    return r;
  }
};
inline uint64_t ipaField(uint64_t ipa) { return ipa & mask(51, 12); }
inline uint64_t fetchField(uint64_t pa) { return pa & mask(51, 3); }

// ---- harness -------------------------------------------------------------------------------
class Harness {
public:
  explicit Harness(Features features = Features(), uint64_t memBase = MEM_BASE,
                   uint64_t memSize = MEM_SIZE)
      : memory(PhysMem::createAnonymous(memBase, memSize)),
        next(memBase),
        smmuOwn(kj::heap<Smmuv3>(*memory, features, [this](Irq i) { irqs.add(i); })),
        smmu(*smmuOwn) {}

  kj::Own<PhysMem> memory;
  kj::Vector<Irq> irqs;
  uint64_t next;
  kj::Own<Smmuv3> smmuOwn;
  Smmuv3& smmu;
  PhysMem& mem() { return *memory; }

  uint64_t alloc(uint64_t bytes, uint64_t align = 4096) {
    next = (next + align - 1) & ~(align - 1);
    uint64_t a = next;
    next += bytes;
    KJ_REQUIRE(memory->contains(a, bytes), "test memory exhausted");
    return a;
  }

  uint32_t read32(uint32_t o) { return uint32_t(smmu.mmioRead(o, 4)); }
  uint64_t read64(uint32_t o) { return smmu.mmioRead(o, 8); }
  void write32(uint32_t o, uint32_t v) { smmu.mmioWrite(o, v, 4); }
  void write64(uint32_t o, uint64_t v) { smmu.mmioWrite(o, v, 8); }

  uint64_t strtab = 0, cmdq = 0, evtq = 0;
  unsigned cmdqLog2 = 8, evtqLog2 = 7;

  // Bring-up in the order of Linux's reset (facts 1.8): linear stream table, queues, enable.
  void setUp(unsigned sidLog2 = 8) {
    write32(off::CR2, CR2_PTM | CR2_RECINVSID);  // as Linux's reset (facts 1.8 step 3)
    strtab = alloc(64ull << sidLog2, 64ull << sidLog2);
    write64(off::STRTAB_BASE, strtab);
    write32(off::STRTAB_BASE_CFG, sidLog2);
    setUpQueues();
    enable();
  }
  void setUpQueues() {
    cmdq = alloc(16ull << cmdqLog2, 16ull << cmdqLog2);
    write64(off::CMDQ_BASE, cmdq | cmdqLog2);
    write32(off::CMDQ_PROD, 0);
    write32(off::CMDQ_CONS, 0);
    evtq = alloc(32ull << evtqLog2, 32ull << evtqLog2);
    write64(off::EVTQ_BASE, evtq | evtqLog2);
    write32(off::EVTQ_PROD, 0);
    write32(off::EVTQ_CONS, 0);
    write32(off::IRQ_CTRL, 0x5);
  }
  void enable() { write32(off::CR0, CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN); }

  void writeWords(uint64_t pa, const Words8& w) {
    for (unsigned i = 0; i < 8; i++) memory->store64(pa + i * 8, w.w[i]);
  }
  void writeSte(uint32_t sid, const Words8& ste) { writeWords(strtab + uint64_t(sid) * 64, ste); }

  // Appends commands at PROD and publishes them with one PROD write.
  void submit(std::initializer_list<Cmd> cmds) {
    uint32_t prod = read32(off::CMDQ_PROD);
    uint32_t n = 1u << cmdqLog2;
    for (auto& c : cmds) {
      uint64_t slot = cmdq + uint64_t(prod & (n - 1)) * 16;
      memory->store64(slot, c.dw0);
      memory->store64(slot + 8, c.dw1);
      prod = (prod + 1) & (2 * n - 1);
    }
    write32(off::CMDQ_PROD, prod);
  }
  void invalidateAll() {
    submit({cmdCfgiSteRange(0, 31), cmdTlbi(0x30), cmdSync()});
    KJ_REQUIRE((read32(off::CMDQ_CONS) >> 24 & 0x7f) == 0, "invalidation commands failed");
  }

  // Reads and consumes every event in the EVTQ (as Linux's handler, facts 3.3).
  kj::Vector<EventRecord> drainEvents() {
    kj::Vector<EventRecord> out;
    uint32_t prod = read32(off::EVTQ_PROD), cons = read32(off::EVTQ_CONS);
    uint32_t n = 1u << evtqLog2, wrapMask = 2 * n - 1;
    while ((prod & wrapMask) != (cons & wrapMask)) {
      EventRecord r;
      uint64_t slot = evtq + uint64_t(cons & (n - 1)) * 32;
      for (unsigned i = 0; i < 4; i++) r.dw[i] = memory->load64(slot + i * 8);
      out.add(r);
      cons = (cons & ~wrapMask) | ((cons + 1) & wrapMask);
    }
    cons = (cons & wrapMask) | (prod & 0x80000000u);
    write32(off::EVTQ_CONS, cons);
    return out;
  }

  TranslateResult translate(uint32_t sid, uint64_t iova, bool write = false,
                            kj::Maybe<uint32_t> ssid = nullptr, bool priv = false,
                            bool exec = false) {
    Transaction t;
    t.sid = sid;
    t.ssid = ssid;
    t.iova = iova;
    t.write = write;
    t.priv = priv;
    t.exec = exec;
    return smmu.translate(t);
  }

  uint64_t stat(kj::StringPtr name) {
    for (auto& s : smmu.stats()) {
      if (s.name == name) return s.value;
    }
    KJ_FAIL_REQUIRE("no such stat", name);
  }
};

inline uint64_t expectPa(const TranslateResult& r) {
  if (r.is<EventRecord>()) {
    FAIL("fault: " << formatEvent(decodeEventRecord(r.get<EventRecord>())).cStr());
  }
  REQUIRE(r.is<TranslateOk>());
  return r.get<TranslateOk>().pa;
}

inline EventRecord expectFault(const TranslateResult& r) {
  if (r.is<TranslateOk>()) FAIL("translated to 0x" << std::hex << r.get<TranslateOk>().pa);
  REQUIRE(r.is<EventRecord>());
  return r.get<EventRecord>();
}

inline std::string show(const EventRecord& r) {
  return formatEvent(decodeEventRecord(r)).cStr() + std::string(" raw=") +
         kj::str(kj::hex(r.dw[0]), " ", kj::hex(r.dw[1]), " ", kj::hex(r.dw[2]), " ",
                 kj::hex(r.dw[3])).cStr();
}

#define NB_REQUIRE_RECORD(actual, expected)                               \
  do {                                                                    \
    ::nb::smmu::EventRecord nbActual = (actual), nbExpected = (expected); \
    INFO("actual:   " << ::nb::smmu::testing::show(nbActual));            \
    INFO("expected: " << ::nb::smmu::testing::show(nbExpected));          \
    REQUIRE(nbActual == nbExpected);                                      \
  } while (0)

// ---- a small page-table writer ---------------------------------------------------------------
// Writes VMSAv8-64 tables for tests. With `viaStage2`, tables are placed at IPAs (PA +
// ipaDelta) and each table page gets a stage-2 mapping, so a nested walk reads them through S2.
// `Owner` provides the memory: `PhysMem& mem()` and `uint64_t alloc(bytes, align)` — the
// Harness above, or any arena over a composed system's memory.
template <typename Owner>
class BasicTables {
public:
  BasicTables(Owner& h, unsigned pageShift, unsigned ias, unsigned startLevel,
              BasicTables* viaStage2 = nullptr, uint64_t ipaDelta = 0, bool lpa = false)
      : h(h), pageShift(pageShift), ias(ias), startLevel(startLevel), viaStage2(viaStage2),
        ipaDelta(ipaDelta), lpa(lpa) {
    unsigned rootBits = ias - levelShift(pageShift, startLevel);
    uint64_t rootBytes = std::max<uint64_t>(8ull << rootBits, 64);
    uint64_t size = std::max<uint64_t>(rootBytes, 1ull << pageShift);
    rootPa = h.alloc(size, size);
    for (uint64_t p = rootPa; p < rootPa + size; p += 1ull << pageShift) exposeTable(p);
  }

  uint64_t root() const { return visible(rootPa); }

  // Installs a leaf for `ia` at `level` (tables created on the way), returns the leaf's PA.
  uint64_t map(uint64_t ia, uint64_t oa, unsigned level, uint64_t attrs) {
    uint64_t table = rootPa;
    unsigned l = startLevel;
    unsigned indexBits = ias - levelShift(pageShift, startLevel);
    for (;; l++) {
      unsigned shift = levelShift(pageShift, l);
      uint64_t slot = table + ((ia >> shift) & ((1ull << indexBits) - 1)) * 8;
      if (l == level) {
        h.mem().store64(slot, pack(oa & ~((1ull << shift) - 1)) | attrs | (l == 3 ? 3 : 1));
        return slot;
      }
      uint64_t desc = h.mem().load64(slot);
      if ((desc & 3) != 3) {
        uint64_t t = h.alloc(1ull << pageShift, 1ull << pageShift);
        exposeTable(t);
        desc = pack(visible(t)) | 3;
        h.mem().store64(slot, desc);
      }
      table = unpackTable(desc) - (viaStage2 ? ipaDelta : 0);
      indexBits = pageShift - 3;
    }
  }

  // The PA of the descriptor at `level` for `ia` (which must exist).
  uint64_t slotPa(uint64_t ia, unsigned level) {
    uint64_t table = rootPa;
    unsigned indexBits = ias - levelShift(pageShift, startLevel);
    for (unsigned l = startLevel;; l++) {
      uint64_t slot = table + ((ia >> levelShift(pageShift, l)) & ((1ull << indexBits) - 1)) * 8;
      if (l == level) return slot;
      table = unpackTable(h.mem().load64(slot)) - (viaStage2 ? ipaDelta : 0);
      indexBits = pageShift - 3;
    }
  }

private:
  uint64_t visible(uint64_t pa) const { return viaStage2 ? pa + ipaDelta : pa; }
  void exposeTable(uint64_t pa) {
    if (viaStage2 == nullptr) return;
    uint64_t step = 1ull << viaStage2->pageShift;
    for (uint64_t p = pa & ~(step - 1); p < pa + (1ull << pageShift); p += step) {
      viaStage2->map(p + ipaDelta, p, 3, S2_RW);
    }
  }
  uint64_t pack(uint64_t a) const {
    // Facts 4.3: with 64K and a 52-bit OA, PA[51:48] goes in bits [15:12].
    if (pageShift == 16 && lpa) return (a & mask(47, 16)) | (((a >> 48) & 0xf) << 12);
    return a & mask(47, 12);
  }
  uint64_t unpackTable(uint64_t d) const {
    if (pageShift == 16 && lpa) return (d & mask(47, 16)) | (((d >> 12) & 0xf) << 48);
    return d & mask(47, pageShift);
  }

  Owner& h;
  unsigned pageShift, ias, startLevel;
  BasicTables* viaStage2;
  uint64_t ipaDelta;
  bool lpa;
  uint64_t rootPa;
};

using Tables = BasicTables<Harness>;

inline unsigned s1StartLevelFor(unsigned pageShift, unsigned ias) {
  unsigned bpl = pageShift - 3;
  return 4 - (ias - pageShift + bpl - 1) / bpl;  // facts 4.3
}

}  // namespace nb::smmu::testing
