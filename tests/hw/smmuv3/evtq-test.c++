// tests/hw/smmuv3: the event queue — ring, wrap, overflow, aborts, enable and interrupt
// (facts 1.1, 1.7, 3.3).

#include "smmu-testing.h"

namespace nb::smmu::testing {
namespace {

// Each call raises one C_BAD_STREAMID event (the SID is beyond the 16-entry table).
void raise(Harness& h, uint32_t n = 1) {
  for (uint32_t i = 0; i < n; i++) h.translate(16 + i, 0);
}

TEST_CASE("Smmuv3: events go to the ring and wrap", "[smmuv3][evtq]") {
  Harness h;
  h.evtqLog2 = 2;  // 4 entries
  h.setUp(4);
  for (unsigned round = 0; round < 3; round++) {
    raise(h, 3);
    auto events = h.drainEvents();
    REQUIRE(events.size() == 3);
    for (unsigned i = 0; i < 3; i++) NB_REQUIRE_RECORD(events[i], (Rec{0x02, 16 + i}.make()));
  }
  // 9 events: index 1, wrap bit toggled twice.
  CHECK(h.read32(off::EVTQ_PROD) == 1);
  CHECK(h.read32(off::EVTQ_CONS) == 1);
  CHECK(h.stat("evtq.written") == 9);
}

TEST_CASE("Smmuv3: EVTQ overflow sets the flag and keeps running", "[smmuv3][evtq]") {
  Harness h;
  h.evtqLog2 = 2;
  h.setUp(4);
  raise(h, 4);  // full: index equal, wrap different
  CHECK(h.read32(off::EVTQ_PROD) == 4);
  CHECK(h.stat("evtq.lost_full") == 0);
  raise(h, 2);
  // Facts 3.3: PROD.OVFLG (bit 31) now differs from CONS.OVACKFLG; it toggles once.
  CHECK(h.read32(off::EVTQ_PROD) == (0x80000000u | 4));
  CHECK(h.stat("evtq.lost_full") == 2);
  // The consumer drains and acknowledges the overflow by copying the flag into CONS.
  auto events = h.drainEvents();
  REQUIRE(events.size() == 4);
  NB_REQUIRE_RECORD(events[3], (Rec{0x02, 19}.make()));
  CHECK(h.read32(off::EVTQ_CONS) == (0x80000000u | 4));
  // And events flow again.
  raise(h, 1);
  CHECK(h.read32(off::EVTQ_PROD) == (0x80000000u | 5));
  // A second overflow toggles the flag back.
  raise(h, 4);
  CHECK(h.read32(off::EVTQ_PROD) == (0x00000000u | 0));
  CHECK(h.stat("evtq.lost_full") == 3);
}

TEST_CASE("Smmuv3: events are discarded while EVTQEN is clear", "[smmuv3][evtq]") {
  Harness h;
  h.setUp(4);
  h.write32(off::CR0, CR0_SMMUEN | CR0_CMDQEN);
  CHECK(expectFault(h.translate(99, 0)).id() == EventId::C_BAD_STREAMID);
  CHECK(h.read32(off::EVTQ_PROD) == 0);
  CHECK(h.stat("evtq.discarded") == 1);
  CHECK(h.irqs.size() == 0);
}

TEST_CASE("Smmuv3: a write outside memory is GERROR.EVTQ_ABT_ERR", "[smmuv3][evtq]") {
  Harness h;
  h.setUp(4);
  h.write32(off::CR0, CR0_SMMUEN | CR0_CMDQEN);
  h.write64(off::EVTQ_BASE, 0x10'0000'0000 | 4);
  h.enable();
  raise(h, 2);
  CHECK(h.read32(off::GERROR) == (1u << 2));
  CHECK(h.read32(off::EVTQ_PROD) == 0);
  CHECK(h.stat("evtq.lost_abort") == 2);
  // Software repairs the queue and acknowledges; events flow again.
  h.write32(off::CR0, CR0_SMMUEN | CR0_CMDQEN);
  h.write64(off::EVTQ_BASE, h.evtq | h.evtqLog2);
  h.write32(off::GERRORN, h.read32(off::GERROR));
  h.enable();
  raise(h, 1);
  CHECK(h.drainEvents().size() == 1);
}

TEST_CASE("Smmuv3: the EVTQ interrupt follows IRQ_CTRL.EVTQ_IRQEN", "[smmuv3][evtq]") {
  Harness h;
  h.setUp(4);
  raise(h, 1);
  REQUIRE(h.irqs.size() == 1);
  CHECK(h.irqs[0] == Irq::EVTQ);
  h.write32(off::IRQ_CTRL, 0x1);  // GERROR only
  raise(h, 1);
  CHECK(h.irqs.size() == 1);
  CHECK(h.drainEvents().size() == 2);
}

}  // namespace
}  // namespace nb::smmu::testing
