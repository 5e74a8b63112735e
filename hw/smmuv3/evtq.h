// hw/smmuv3: the event queue producer.
//
// Owns: writing 32-byte event records into the EVTQ ring (facts 1.1, 3.2) while EVTQEN is set,
// wrap, the overflow flag (EVTQ_PROD.OVFLG toggles when an event is lost on a full queue and
// software has acknowledged the previous overflow, facts 3.3), GERROR.EVTQ_ABT_ERR for a record
// write outside memory (facts 1.7), and the EVTQ interrupt.
// Does not own: deciding which faults are recorded (smmuv3.c++) or the record layout (events.h).

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/events.h"
#include "hw/smmuv3/registers.h"

namespace nb::smmu {

struct EventQueueStats {
  uint64_t written = 0;     // records written to the ring
  uint64_t lostFull = 0;    // lost because the queue was full (overflow)
  uint64_t lostAbort = 0;   // lost because the write aborted or EVTQ_ABT_ERR was active
  uint64_t discarded = 0;   // produced while EVTQEN was clear
};

class EventQueue {
public:
  EventQueue(PhysMem& mem, RegisterFile& regs) : mem(mem), regs(regs) {}
  KJ_DISALLOW_COPY(EventQueue);

  void record(const EventRecord& record);
  // Appends `record`, or accounts for why it could not be.

  const EventQueueStats& stats() const { return counters; }

private:
  PhysMem& mem;
  RegisterFile& regs;
  EventQueueStats counters;
};

}  // namespace nb::smmu
