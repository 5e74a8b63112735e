// hw/smmuv3: EVTQ production (facts 1.1, 1.7, 3.3).

#include "hw/smmuv3/evtq.h"

namespace nb::smmu {

namespace {
constexpr unsigned EVT_BYTES = 32;  // facts 1.1
}

void EventQueue::record(const EventRecord& r) {
  if (!regs.evtqEnabled()) {
    counters.discarded++;
    return;
  }
  // While a previous write abort is unacknowledged the queue is unusable.
  if ((regs.gerrorActive() & GERROR::EVTQ_ABT_ERR.mask()) != 0) {
    counters.lostAbort++;
    return;
  }
  RegisterState& s = regs.state();
  const QueueConfig q = regs.evtq();
  const uint32_t prod = q.indexAndWrap(s.evtqProd);
  const uint32_t ovflg = s.evtqProd & uint32_t(Q_PTR::OVFLG.mask());

  if (q.full(prod, s.evtqCons)) {
    // Facts 3.3: overflow is signalled by PROD.OVFLG differing from CONS.OVACKFLG; toggle it
    // only if software has acknowledged the previous overflow.
    counters.lostFull++;
    if (ovflg == (s.evtqCons & uint32_t(Q_PTR::OVFLG.mask()))) {
      s.evtqProd ^= uint32_t(Q_PTR::OVFLG.mask());
    }
    return;
  }

  const uint64_t addr = q.base + uint64_t(q.index(prod)) * EVT_BYTES;
  // The record goes to memory before PROD moves, so a consumer reading PROD sees it whole.
  for (unsigned i = 0; i < 4; i++) {
    if (!mem.tryStore64(addr + i * 8, r.dw[i])) {
      counters.lostAbort++;
      regs.raiseGlobalError(GERROR::EVTQ_ABT_ERR);
      return;
    }
  }
  s.evtqProd = q.next(prod) | ovflg;
  counters.written++;
  regs.signal(Irq::EVTQ);
}

}  // namespace nb::smmu
