// tests/hw: composing the hardware models (hw/smmuv3, hw/pci, hw/endpoint) from manifest text,
// inline or process-placed, and an arena for hand-built SMMU structures in the composed memory.
//
// Owns: `manifestErrors` (validation messages as text), `Arena` (frames from the composer's
// allocator, usable as smmu-testing.h's table owner) and `RpcSmmu` (smmu-testing.h's Harness
// bring-up, over the SMMU's MMIO capability). Systems are tests/system/compose-testing.h's
// TestSystem: the shipped registry (hardware models included) plus the fixtures, process-placed
// instances served by tests/fixtures:fixture-host.
#pragma once

#include "interfaces/endpoint.capnp.h"
#include "interfaces/pci.capnp.h"
#include "interfaces/smmuv3.capnp.h"
#include "system/composer/composer.h"
#include "tests/hw/smmuv3/smmu-testing.h"
#include "tests/system/compose-testing.h"
#include "util/bits.h"

#include <catch2/catch.hpp>

namespace nb::hw::testing {

using nb::testing::fixtureHostPath;
using nb::testing::planOf;
using nb::testing::testRegistry;
using nb::testing::TestSystem;

// Every validation error of a manifest, formatted as `nestbed check` prints them.
inline kj::Array<kj::String> manifestErrors(kj::StringPtr text) {
  auto result = parseManifest(text, "test.toml", testRegistry());
  if (result.is<Plan>()) return nullptr;
  return KJ_MAP(e, result.get<kj::Array<ManifestError>>()) { return kj::str(e); };
}

// Frames of a composed system's memory for structures a test writes by hand (tables, CDs,
// stream tables), as the owner smmu-testing.h's BasicTables expects.
class Arena {
public:
  explicit Arena(Composer& composer) : memory(composer.memory()), frames(composer.frames()) {}

  PhysMem& mem() { return memory; }
  // Zeroed frames (frames can come back dirty from an earlier user).
  uint64_t alloc(uint64_t bytes, uint64_t align = 4096) {
    uint64_t size = alignUp(bytes, FRAME_SIZE);
    uint64_t pa =
        KJ_REQUIRE_NONNULL(frames.allocFrames(size, align < FRAME_SIZE ? FRAME_SIZE : align),
                           "test memory exhausted", bytes);
    memory.zero(pa, size);
    return pa;
  }

private:
  PhysMem& memory;
  FrameAllocator& frames;
};

// Programs an SMMU over RPC the way smmu-testing.h's Harness programs the model directly:
// structures in the arena, registers through MMIO (facts 1.8 reset order).
class RpcSmmu {
public:
  RpcSmmu(rpc::Smmuv3::Client smmu, kj::WaitScope& ws, Arena& arena)
      : smmu(kj::mv(smmu)), ws(ws), arena(arena) {}

  rpc::Smmuv3::Client smmu;
  kj::WaitScope& ws;
  Arena& arena;
  uint64_t strtab = 0, cmdq = 0, evtq = 0;
  unsigned cmdqLog2 = 8, evtqLog2 = 7;

  uint64_t read(uint32_t offset, uint8_t size) {
    auto req = smmu.readRequest();
    req.setOffset(offset);
    req.setSize(size);
    return req.send().wait(ws).getValue();
  }
  uint32_t read32(uint32_t offset) { return uint32_t(read(offset, 4)); }
  uint64_t read64(uint32_t offset) { return read(offset, 8); }
  void write(uint32_t offset, uint64_t value, uint8_t size) {
    auto req = smmu.writeRequest();
    req.setOffset(offset);
    req.setValue(value);
    req.setSize(size);
    req.send().wait(ws);
  }
  void write32(uint32_t offset, uint32_t value) { write(offset, value, 4); }
  void write64(uint32_t offset, uint64_t value) { write(offset, value, 8); }

  void setUp(unsigned sidLog2 = 8) {
    namespace off = smmu::testing::off;
    write32(off::CR2, smmu::testing::CR2_PTM | smmu::testing::CR2_RECINVSID);  // facts 1.8
    strtab = arena.alloc(64ull << sidLog2, 64ull << sidLog2);
    write64(off::STRTAB_BASE, strtab);
    write32(off::STRTAB_BASE_CFG, sidLog2);
    cmdq = arena.alloc(16ull << cmdqLog2, 16ull << cmdqLog2);
    write64(off::CMDQ_BASE, cmdq | cmdqLog2);
    evtq = arena.alloc(32ull << evtqLog2, 32ull << evtqLog2);
    write64(off::EVTQ_BASE, evtq | evtqLog2);
    write32(off::IRQ_CTRL, 0x5);
    write32(off::CR0,
            smmu::testing::CR0_SMMUEN | smmu::testing::CR0_EVTQEN | smmu::testing::CR0_CMDQEN);
  }

  void writeSte(uint32_t sid, const smmu::testing::Words8& ste) {
    writeWords(strtab + sid * 64ull, ste);
  }
  void writeWords(uint64_t pa, const smmu::testing::Words8& w) {
    for (unsigned i = 0; i < 8; i++) arena.mem().store64(pa + i * 8, w.w[i]);
  }

  // Appends commands at PROD and publishes them with one PROD write; returns CMDQ_CONS.
  uint32_t submit(std::initializer_list<smmu::testing::Cmd> cmds) {
    namespace off = smmu::testing::off;
    uint32_t prod = read32(off::CMDQ_PROD);
    uint32_t n = 1u << cmdqLog2;
    for (auto& c : cmds) {
      uint64_t slot = cmdq + uint64_t(prod & (n - 1)) * 16;
      arena.mem().store64(slot, c.dw0);
      arena.mem().store64(slot + 8, c.dw1);
      prod = (prod + 1) & (2 * n - 1);
    }
    write32(off::CMDQ_PROD, prod);
    return read32(off::CMDQ_CONS);
  }
  void invalidateAll() {
    using namespace smmu::testing;
    uint32_t cons = submit({cmdCfgiSteRange(0, 31), cmdTlbi(0x30), cmdSync()});
    KJ_REQUIRE((cons >> 24 & 0x7f) == 0, "invalidation commands failed");
  }

  // Reads and consumes every event in the EVTQ.
  kj::Vector<smmu::EventRecord> drainEvents() {
    namespace off = smmu::testing::off;
    kj::Vector<smmu::EventRecord> out;
    uint32_t prod = read32(off::EVTQ_PROD), cons = read32(off::EVTQ_CONS);
    uint32_t n = 1u << evtqLog2, wrapMask = 2 * n - 1;
    while ((prod & wrapMask) != (cons & wrapMask)) {
      smmu::EventRecord r;
      uint64_t slot = evtq + uint64_t(cons & (n - 1)) * 32;
      for (unsigned i = 0; i < 4; i++) r.dw[i] = arena.mem().load64(slot + i * 8);
      out.add(r);
      cons = (cons & ~wrapMask) | ((cons + 1) & wrapMask);
    }
    write32(off::EVTQ_CONS, (cons & wrapMask) | (prod & 0x80000000u));
    return out;
  }
};

// The raw record a Fault carries.
inline smmu::EventRecord recordOf(rpc::Fault::Reader fault) {
  smmu::EventRecord r;
  auto raw = fault.getRaw();
  KJ_REQUIRE(raw.size() == 4, "a fault carries its 4-qword record");
  for (unsigned i = 0; i < 4; i++) r.dw[i] = raw[i];
  return r;
}

}  // namespace nb::hw::testing
