// Modeled time: the virtual clock of the modeled machine, and the cost profile that drives it.
//
// Owns: the cost classes (what the modeled system is charged for), cost profiles (TOML files
// under system/costs/, one value per class, each with its source), and the clock itself — one
// page of shared memory that every process of a composition maps, so a charge made by a
// component in its own process moves the same clock as one made inline.
// Does not own: deciding *when* work happens (each component charges what it does), or reports.
//
// The concurrency model (docs/MODELED-TIME.md has the long form):
// - One timeline for the thread of control: the scenario's steps and everything they cause on
//   CPUs (guest, VMM, host kernel, services) and on devices doing a DMA the step waits for.
//   It is `now()`, advanced by `charge()`; every charge is additive, so the order in which
//   components charge never changes the result and placement cannot either.
// - One timeline per SMMU for its command queue, owned by the SMMU model: commands are
//   consumed from the doorbell on, each taking its class's cost, after whatever the queue was
//   still doing. Software that waits for a CMD_SYNC observes it when it reads CMDQ_CONS; the
//   read joins the two timelines (`joinAt`): now = max(now, when the SMMU got there), and the
//   difference is charged as `wait`.
// - The functional effect of every operation is immediate (a command's invalidation has
//   happened when PROD is written); time says when it would have been observed. A DMA racing
//   an invalidation inside one step is therefore never modeled as hitting the stale entry.
//
// Determinism: modeled time depends only on the manifest, the profile and the scenario — never
// on placement, load or the machine. Charges are integers (nanoseconds), sums commute.

#pragma once

#include <kj/common.h>
#include <kj/memory.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <atomic>
#include <cstdint>

namespace nb {

// Every class of modeled work: profile key, who is busy, and what one unit is.
#define NB_COST_CLASSES(X)                                                                      \
  X(MMIO_READ, "mmio_read", "a CPU's read of an SMMU register (non-posted)")                    \
  X(MMIO_WRITE, "mmio_write", "a CPU's write of an SMMU register")                              \
  X(GUEST_EXIT_KERNEL, "guest_exit_kernel",                                                     \
    "a guest exit handled in the kernel or hypervisor, and the return to the guest")            \
  X(GUEST_EXIT_VMM, "guest_exit_vmm",                                                           \
    "a guest exit handled by the VMM in user space (KVM_EXIT_MMIO), and the return")            \
  X(HYPERCALL, "hypercall", "a guest hypercall (HVC) round trip")                               \
  X(SYSCALL, "syscall", "a system call or ioctl round trip from user space")                    \
  X(COPY_4K, "copy_4k", "copying 4 KiB (charged pro rata for N bytes)")                          \
  X(PTE_STORE, "pte_store", "one software store of a page-table descriptor")                    \
  X(DESCRIPTOR_STORE, "descriptor_store", "one software 64-bit store into an STE or CD")        \
  X(CMD_STORE, "cmd_store", "writing one 16-byte command into a command queue ring")            \
  X(TABLE_PAGE, "table_page", "allocating and zeroing one page-table page")                     \
  X(VMM_CMD, "vmm_cmd", "the VMM reading, checking and rewriting one guest command")            \
  X(VCMDQ_DOORBELL, "vcmdq_doorbell", "a guest's doorbell write to a software VCMDQ (trapped)") \
  X(IRQ, "irq", "an interrupt or MSI taken by the host")                                        \
  X(CROSSING_CALL, "crossing_call", "a call between components inside one kernel")              \
  X(CROSSING_IPC, "crossing_ipc", "a call between isolated services (microkernel IPC)")         \
  X(CROSSING_HYPERCALL, "crossing_hypercall",                                                   \
    "a call into a hypervisor-resident component (hypercall round trip)")                       \
  X(CROSSING_PROCESS, "crossing_process",                                                       \
    "a call to a component in another Linux process (socket RPC round trip)")                   \
  X(IOTLB_LOOKUP, "iotlb_lookup", "one IOTLB lookup by the SMMU")                               \
  X(CONFIG_LOOKUP, "config_lookup", "one configuration-cache lookup (STE, and CD if stage 1)")   \
  X(CONFIG_FETCH, "config_fetch", "the SMMU's fetch of an STE or CD from memory on a miss")     \
  X(WALK_READ, "walk_read", "one descriptor read from memory by the SMMU's table walker")       \
  X(EVENT_WRITE, "event_write", "the SMMU writing one event record")                            \
  X(SMMU_CMD_TLBI, "smmu_cmd_tlbi", "the SMMU consuming one TLBI command")                      \
  X(SMMU_CMD_CFGI, "smmu_cmd_cfgi", "the SMMU consuming one CFGI command")                      \
  X(SMMU_CMD_ATC, "smmu_cmd_atc", "the SMMU consuming one ATC_INV command")                     \
  X(SMMU_CMD_SYNC, "smmu_cmd_sync", "the SMMU completing one CMD_SYNC")                         \
  X(SMMU_CMD_OTHER, "smmu_cmd_other", "the SMMU consuming any other command (PREFETCH, ...)")

enum class Cost : uint8_t {
#define NB_COST_ENUM(name, key, doc) name,
  NB_COST_CLASSES(NB_COST_ENUM)
#undef NB_COST_ENUM
};

constexpr size_t COST_CLASSES = 0
#define NB_COST_COUNT(name, key, doc) +1
    NB_COST_CLASSES(NB_COST_COUNT)
#undef NB_COST_COUNT
    ;

kj::StringPtr costKey(Cost c);
kj::StringPtr costDoc(Cost c);
kj::Maybe<Cost> costFromKey(kj::StringPtr key);

// What a component's calls cost to reach it: what the boundary *is* in the modeled system.
// Separate from placement (how nestbed runs the component).
enum class Boundary : uint8_t { NONE, CALL, IPC, HYPERCALL, PROCESS };
kj::StringPtr boundaryName(Boundary b);
kj::Maybe<Boundary> boundaryFromName(kj::StringPtr name);
kj::Maybe<Cost> crossingCost(Boundary b);  // NONE: no cost

// ======================================================================================
// Cost profiles

struct CostValue {
  uint64_t ns = 0;
  kj::String status;   // "verified", "derived", "unverified", "estimate" (cost-anchor honesty)
  kj::String source;   // paper and table, mailing-list message, datasheet — or why an estimate
};

struct CostProfile {
  kj::String name;     // as the manifest named it
  kj::String about;
  CostValue costs[COST_CLASSES];
  uint64_t ns(Cost c) const { return costs[uint(c)].ns; }
};

struct ProfileError {
  kj::String file;
  uint32_t line = 0;
  uint32_t column = 0;
  kj::String key;
  kj::String message;
};
kj::String KJ_STRINGIFY(const ProfileError& e);

using ProfileResult = kj::OneOf<CostProfile, kj::Array<ProfileError>>;

// Parses a profile: every class exactly once with ns >= 0, a status and a source; unknown keys
// are errors (with a did-you-mean). `file` names the text in errors.
ProfileResult parseCostProfile(kj::StringPtr text, kj::StringPtr file);

// The profiles nestbed ships (system/costs/*.toml, compiled into the binary), by name.
kj::ArrayPtr<const kj::StringPtr> shippedProfileNames();
kj::Maybe<kj::StringPtr> shippedProfileText(kj::StringPtr name);

// ======================================================================================
// The clock

class ModeledClock {
public:
  // A clock with its own shared page (a memfd): the composer's. Costs come from `profile`.
  static kj::Own<ModeledClock> create(const CostProfile& profile);
  // Maps the page another process created (the host process of a process-placed component).
  static kj::Own<ModeledClock> attach(int fd);
  // A clock that charges nothing (timing off): unit tests and benchmarks of single engines.
  static ModeledClock& off();
  ~ModeledClock() noexcept(false);
  KJ_DISALLOW_COPY(ModeledClock);

  bool enabled() const { return page_ != nullptr; }
  int fd() const { return fd_; }

  // `count` units of `c` on the thread of control.
  void charge(Cost c, uint64_t count = 1) {
    if (page_ == nullptr || count == 0) return;
    uint64_t ns = page_->costs[uint(c)] * count;
    page_->units[uint(c)].fetch_add(count, std::memory_order_relaxed);
    page_->charged[uint(c)].fetch_add(ns, std::memory_order_relaxed);
    page_->now.fetch_add(ns, std::memory_order_relaxed);
  }
  // Work done on another agent's timeline (an SMMU consuming commands): counted in the totals
  // of `c` but not on the thread of control, which only waits for it (joinAt). Returns its ns.
  uint64_t account(Cost c, uint64_t count = 1) {
    if (page_ == nullptr || count == 0) return 0;
    uint64_t ns = page_->costs[uint(c)] * count;
    page_->units[uint(c)].fetch_add(count, std::memory_order_relaxed);
    page_->charged[uint(c)].fetch_add(ns, std::memory_order_relaxed);
    return ns;
  }
  // Work the thread of control did not wait for but caused (an interrupt's delivery and its
  // handler): counted while in progress so a scenario step can end only when it is done, and so
  // be charged to the step that caused it whatever the placement.
  void backgroundBegin() {
    if (page_ != nullptr) page_->background.fetch_add(1, std::memory_order_acq_rel);
  }
  void backgroundEnd() {
    if (page_ != nullptr) page_->background.fetch_sub(1, std::memory_order_acq_rel);
  }
  int64_t background() const {
    return page_ ? page_->background.load(std::memory_order_acquire) : 0;
  }

  // Copying `bytes`: COPY_4K pro rata, rounded up to whole nanoseconds.
  void chargeCopy(uint64_t bytes);

  // The thread of control waits until `t` (another timeline's event): the gap is `wait`.
  void joinAt(uint64_t t);

  uint64_t now() const { return page_ ? page_->now.load(std::memory_order_relaxed) : 0; }
  uint64_t cost(Cost c) const { return page_ ? page_->costs[uint(c)] : 0; }

  // Totals since the clock was made: nanoseconds and units per class, and time spent waiting.
  struct Totals {
    uint64_t now = 0;
    uint64_t wait = 0;
    uint64_t ns[COST_CLASSES] = {};
    uint64_t units[COST_CLASSES] = {};
  };
  Totals totals() const;

private:
  struct Page {
    uint64_t magic;
    uint64_t costs[COST_CLASSES];
    std::atomic<uint64_t> now;
    std::atomic<uint64_t> wait;
    std::atomic<int64_t> background;
    std::atomic<uint64_t> charged[COST_CLASSES];
    std::atomic<uint64_t> units[COST_CLASSES];
  };
  static_assert(sizeof(Page) <= 4096, "the clock fits one page");

  ModeledClock(int fd, Page* page) : fd_(fd), page_(page) {}
  int fd_;
  Page* page_;
};

// The difference of two totals, for a step's accounting.
ModeledClock::Totals operator-(const ModeledClock::Totals& a, const ModeledClock::Totals& b);

}  // namespace nb
