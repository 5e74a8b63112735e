// components/domain_allocator/common: planning the change of a live STE or CD (facts 2.4,
// Linux's arm_smmu_write_entry), as pure data.
//
// Owns: computing the sequence of memory images that takes an entry from `current` to
// `target` without the SMMU ever seeing a mixture that means something else: a hitless update
// when the bits the target uses differ from the current entry in one qword only, a breaking
// update (V = 0 first) when they differ in two or more. Each step is one batch of qword stores
// after which the caller invalidates (CFGI_STE / CFGI_CD) and waits on a CMD_SYNC; steps that
// would store nothing are left out. Does not own memory, commands or which entry to build.

#pragma once

#include "components/domain_allocator/common/entries.h"

#include <kj/vector.h>

namespace nb::domains {

enum class UpdateKind : uint8_t {
  NONE,      // nothing to write: the entry already is the target
  DIRECT,    // no used bit changes: the target written at once (only unused bits differ)
  HITLESS,   // one critical qword: unused bits, then the critical qword, then the rest
  BREAKING,  // two or more: qword 0 zeroed (V = 0), qwords 1..7, then qword 0
};

kj::StringPtr KJ_STRINGIFY(UpdateKind kind);

struct UpdateStep {
  Entry image;         // what the entry holds once this step's stores are done
  uint8_t qwords = 0;  // bit i: qword i is stored in this step
};

struct UpdatePlan {
  UpdateKind kind = UpdateKind::NONE;
  int critical = -1;  // HITLESS: the critical qword
  kj::Vector<UpdateStep> steps;
};

using UsedBits = Entry (*)(const Entry&);

UpdatePlan planUpdate(const Entry& current, const Entry& target, UsedBits used);
// Requires every bit set in `target` to be one `used(target)` reports (the recipes' invariant;
// Linux warns otherwise): a broken recipe is a contract failure.

}  // namespace nb::domains
