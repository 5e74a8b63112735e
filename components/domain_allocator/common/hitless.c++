// The hitless / breaking update planner. See hitless.h.

#include "components/domain_allocator/common/hitless.h"

#include <kj/debug.h>

namespace nb::domains {

kj::StringPtr KJ_STRINGIFY(UpdateKind kind) {
  switch (kind) {
    case UpdateKind::NONE: return "none";
    case UpdateKind::DIRECT: return "direct";
    case UpdateKind::HITLESS: return "hitless";
    case UpdateKind::BREAKING: return "breaking";
  }
  KJ_UNREACHABLE;
}

namespace {

// Appends a step that stores `next` over `memory` (the qwords that differ), if any does.
void step(UpdatePlan& plan, Entry& memory, const Entry& next) {
  uint8_t changed = 0;
  for (unsigned i = 0; i < 8; i++) {
    if (memory.dw[i] != next.dw[i]) changed |= uint8_t(1u << i);
  }
  if (changed != 0) plan.steps.add(UpdateStep{next, changed});
  memory = next;
}

}  // namespace

UpdatePlan planUpdate(const Entry& current, const Entry& target, UsedBits used) {
  Entry curUsed = used(current);
  Entry targetUsed = used(target);
  Entry unusedUpdate;
  uint8_t critical = 0;
  for (unsigned i = 0; i < 8; i++) {
    KJ_REQUIRE((target.dw[i] & ~targetUsed.dw[i]) == 0,
               "target sets bits its own configuration does not use", i, target.dw[i],
               targetUsed.dw[i]);
    // Bits the current entry ignores may take their new value at once.
    unusedUpdate.dw[i] = (current.dw[i] & curUsed.dw[i]) | (target.dw[i] & ~curUsed.dw[i]);
    // A qword whose used-by-the-target bits still differ after that is critical.
    if ((unusedUpdate.dw[i] & targetUsed.dw[i]) != target.dw[i]) critical |= uint8_t(1u << i);
  }

  UpdatePlan plan;
  Entry memory = current;
  if (critical == 0) {
    plan.kind = UpdateKind::DIRECT;
    step(plan, memory, target);
  } else if ((critical & (critical - 1)) == 0) {
    plan.kind = UpdateKind::HITLESS;
    plan.critical = __builtin_ctz(critical);
    // The critical qword keeps its current value until its own step (saves a sync when it is
    // the only change).
    unusedUpdate.dw[plan.critical] = current.dw[plan.critical];
    step(plan, memory, unusedUpdate);
    Entry withCritical = memory;
    withCritical.dw[plan.critical] = target.dw[plan.critical];
    step(plan, memory, withCritical);
    step(plan, memory, target);
  } else {
    plan.kind = UpdateKind::BREAKING;
    Entry invalid = current;
    invalid.dw[0] = 0;  // V = 0: the SMMU stops using the entry
    step(plan, memory, invalid);
    Entry rest = target;
    rest.dw[0] = 0;
    step(plan, memory, rest);
    step(plan, memory, target);
  }
  if (plan.steps.empty()) plan.kind = UpdateKind::NONE;
  return plan;
}

}  // namespace nb::domains
