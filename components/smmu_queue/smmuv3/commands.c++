// components/smmu_queue/smmuv3: the host's command builders and range encodings (facts 1.3,
// 1.4). Every field is placed through the architected layout in util/smmuv3/commands.h.

#include "components/smmu_queue/smmuv3/commands.h"

#include "util/bits.h"
#include "util/smmuv3/commands.h"

#include <kj/debug.h>

namespace nb::smmuq {

namespace {

using namespace nb::smmuv3::cmd;
using nb::smmuv3::Opcode;

Command withOp(Opcode op) { return Command{CMD_0_OP.with(0, uint64_t(op)), 0}; }

unsigned log2Of(uint64_t v) { return 63u - unsigned(__builtin_clzll(v)); }

// fls(): the 1-based index of the most significant set bit, 0 for 0 (Linux's fls_long).
unsigned fls(uint64_t v) { return v == 0 ? 0 : 64u - unsigned(__builtin_clzll(v)); }

bool validPageSize(uint64_t pageSize) {
  return pageSize == 4096 || pageSize == 16384 || pageSize == 65536;
}

}  // namespace

uint8_t opcodeOf(const Command& c) { return uint8_t(CMD_0_OP.get(c.dw0)); }

namespace build {

Command cfgiSte(uint32_t sid, bool leaf) {
  // Facts 1.3: SID and LEAF (Linux always sets LEAF for one STE).
  Command c = withOp(Opcode::CFGI_STE);
  c.dw0 = CFGI_0_SID.set(c.dw0, sid);
  c.dw1 = CFGI_1_LEAF.set(c.dw1, leaf);
  return c;
}

Command cfgiCd(uint32_t sid, uint32_t ssid, bool leaf) {
  // Facts 1.3: SSID, SID and LEAF (Linux does not set SSV here).
  Command c = withOp(Opcode::CFGI_CD);
  c.dw0 = CFGI_0_SSID.set(c.dw0, ssid);
  c.dw0 = CFGI_0_SID.set(c.dw0, sid);
  c.dw1 = CFGI_1_LEAF.set(c.dw1, leaf);
  return c;
}

Command cfgiCdAll(uint32_t sid) {
  Command c = withOp(Opcode::CFGI_CD_ALL);
  c.dw0 = CFGI_0_SID.set(c.dw0, sid);
  return c;
}

Command cfgiSteRange(uint32_t sid, uint8_t range) {
  Command c = withOp(Opcode::CFGI_STE_RANGE);
  c.dw0 = CFGI_0_SID.set(c.dw0, sid);
  c.dw1 = CFGI_1_RANGE.set(c.dw1, range);
  return c;
}

Command cfgiAll() {
  // Discrepancy D2: Linux's CFGI_ALL is CFGI_STE_RANGE (0x04) with RANGE = 31, SID 0.
  return cfgiSteRange(0, uint8_t(CFGI_RANGE_ALL));
}

Command tlbiNhAll(uint16_t vmid) {
  Command c = withOp(Opcode::TLBI_NH_ALL);
  c.dw0 = TLBI_0_VMID.set(c.dw0, vmid);
  return c;
}

Command tlbiNhAsid(uint16_t asid, uint16_t vmid) {
  Command c = withOp(Opcode::TLBI_NH_ASID);
  c.dw0 = TLBI_0_VMID.set(c.dw0, vmid);
  c.dw0 = TLBI_0_ASID.set(c.dw0, asid);
  return c;
}

Command tlbiS12Vmall(uint16_t vmid) {
  Command c = withOp(Opcode::TLBI_S12_VMALL);
  c.dw0 = TLBI_0_VMID.set(c.dw0, vmid);
  return c;
}

Command tlbiNsnhAll() { return withOp(Opcode::TLBI_NSNH_ALL); }

Command tlbiEl2All() { return withOp(Opcode::TLBI_EL2_ALL); }

Command atcInv(uint32_t sid, bool ssv, uint32_t ssid, uint64_t iova, uint64_t size) {
  // Facts 1.4 (arm_smmu_atc_inv_to_cmd): the smallest naturally aligned power-of-two span of
  // 4 KiB pages covering the range; size 0 is the whole ATC.
  Command c = withOp(Opcode::ATC_INV);
  c.dw0 = CMD_0_SSV.set(c.dw0, ssv);
  c.dw0 = ATC_0_SSID.set(c.dw0, ssv ? ssid : 0);
  c.dw0 = ATC_0_SID.set(c.dw0, sid);
  if (size == 0) {
    c.dw1 = ATC_1_SIZE.set(c.dw1, ATC_INV_SIZE_ALL);
    return c;
  }
  const uint64_t last = iova + (size - 1) < iova ? ~uint64_t(0) : iova + (size - 1);
  uint64_t pageStart = iova >> 12;
  const uint64_t pageEnd = last >> 12;
  const unsigned log2Span = fls(pageStart ^ pageEnd);
  pageStart &= ~((uint64_t(1) << log2Span) - 1);
  c.dw1 = ATC_1_SIZE.set(c.dw1, log2Span);
  c.dw1 = ATC_1_ADDR.set(c.dw1, pageStart & ATC_1_ADDR.maxValue());
  return c;
}

Command sync() {
  // Facts 1.3: no MSI address given, so CS = SEV; the host polls CMDQ_CONS (facts 1.5).
  Command c = withOp(Opcode::SYNC);
  c.dw0 = SYNC_0_CS.set(c.dw0, SYNC_CS_SEV);
  return c;
}

}  // namespace build

kj::Maybe<kj::String> checkTlbiRange(const TlbiRange& r) {
  if (!validPageSize(r.pageSize)) {
    return kj::str("page size ", r.pageSize, " is not 4K, 16K or 64K");
  }
  if (r.granule != 0 && (!isPow2(r.granule) || r.granule < r.pageSize)) {
    return kj::str("granule ", r.granule, " is not a power of two >= the page size ",
                   r.pageSize);
  }
  if (!isAligned(r.addr, r.pageSize) || !isAligned(r.size, r.pageSize)) {
    return kj::str("range 0x", kj::hex(r.addr), "+0x", kj::hex(r.size),
                   " is not aligned to the page size ", r.pageSize);
  }
  if (r.size != 0 && r.addr + (r.size - 1) < r.addr) {
    return kj::str("range 0x", kj::hex(r.addr), "+0x", kj::hex(r.size), " wraps");
  }
  if (r.stage == TlbiRange::Stage::S2_IPA && r.size != 0 &&
      ((r.addr + (r.size - 1)) >> 52) != 0) {
    return kj::str("IPA range 0x", kj::hex(r.addr), "+0x", kj::hex(r.size),
                   " is beyond 52 bits");
  }
  return nullptr;
}

void buildTlbiRange(const TlbiRange& r, bool ril, kj::Vector<Command>& out) {
  KJ_IF_MAYBE(why, checkTlbiRange(r)) { KJ_FAIL_REQUIRE("bad TLBI range", *why); }
  if (r.size == 0) return;

  const uint64_t granule = r.granule == 0 ? r.pageSize : r.granule;
  Command base;
  if (r.stage == TlbiRange::Stage::NH_VA) {
    // Facts 1.3: NH_VA carries NUM, SCALE, VMID, ASID, LEAF, TTL, TG, VA.
    base = withOp(Opcode::TLBI_NH_VA);
    base.dw0 = TLBI_0_ASID.set(base.dw0, r.asid);
  } else {
    // S2_IPA: NUM, SCALE, VMID, LEAF, TTL, TG, IPA.
    base = withOp(Opcode::TLBI_S2_IPA);
  }
  base.dw0 = TLBI_0_VMID.set(base.dw0, r.vmid);
  base.dw1 = TLBI_1_LEAF.set(base.dw1, r.leaf);

  auto emit = [&](Command c, uint64_t addr) {
    if (r.stage == TlbiRange::Stage::NH_VA) {
      c.dw1 = TLBI_1_VA.set(c.dw1, addr >> 12);
    } else {
      c.dw1 = TLBI_1_IPA.set(c.dw1, addr >> 12);
    }
    out.add(c);
  };

  if (!ril) {
    // Facts 1.4 step 7: TG/TTL/NUM/SCALE stay 0, one command per `granule` step from addr
    // until the end of the range.
    const uint64_t count = r.size / granule + (r.size % granule != 0 ? 1 : 0);
    for (uint64_t i = 0; i < count; i++) emit(base, r.addr + i * granule);
    return;
  }

  // Facts 1.4 steps 1-5.
  const unsigned tg = log2Of(r.pageSize);
  uint64_t numPages = r.size >> tg;
  base.dw1 = TLBI_1_TG.set(base.dw1, (tg - 10) / 2);
  unsigned ttl = 0;
  if (r.leaf) {
    // The leaf's level; a granule above the level-1 block size has no TTL (0 = unknown), and
    // neither has an unknown granule (commands.h: granule 0).
    ttl = r.granule == 0 ? 0 : 4 - ((log2Of(granule) - 3) / (tg - 3));
    if (ttl < 1 || ttl > 3) ttl = 0;
    base.dw1 = TLBI_1_TTL.set(base.dw1, ttl);
  }
  if (!r.leaf && (numPages & TLBI_RANGE_NUM_MAX) == 1) {
    numPages++;  // so that SCALE and NUM are never both 0
  }
  uint64_t addr = r.addr;
  while (numPages != 0) {
    unsigned scale = unsigned(__builtin_ctzll(numPages));
    uint64_t num = (numPages >> scale) & TLBI_RANGE_NUM_MAX;
    if (scale > TLBI_0_SCALE.maxValue()) {
      // A page count whose lowest set bit is above SCALE's 5 bits (a guest's legal
      // NUM 31, SCALE 31 range of 64K pages re-encoded from a generic descriptor): the largest
      // SCALE, as many times it as NUM holds. Linux never builds such a range (a 48-bit VA).
      scale = TLBI_0_SCALE.maxValue();
      num = kj::min(numPages >> scale, TLBI_RANGE_NUM_MAX + 1);
    }
    Command c = base;
    c.dw0 = TLBI_0_SCALE.set(c.dw0, scale);
    c.dw0 = TLBI_0_NUM.set(c.dw0, num - 1);
    if (ttl == 0 && num == 1 && scale == 0) {
      // One page of a leaf whose level is unknown: TTL = NUM = SCALE = 0 with TG != 0 is a
      // reserved encoding (IHI 0070 §4.4.1, CERROR_ILL), so it goes as a plain TG = 0
      // invalidation of that address, which says the same.
      c = base;
      c.dw1 = TLBI_1_TG.set(c.dw1, 0);
    }
    emit(c, addr);
    addr += num << (scale + tg);  // may wrap past 2^64 on the last command: the loop ends
    numPages -= num << scale;
  }
}

}  // namespace nb::smmuq
