// hw/smmuv3: the command queue consumer.
//
// Owns: consuming the CMDQ ring (facts 1.1) synchronously when PROD is written, executing each
// command — the exact cache scope of every CFGI_* and TLBI_* (facts 1.2-1.4), CMD_SYNC completion
// (facts 1.5) — and command errors (facts 1.6): stop at the bad entry with CMDQ_CONS.ERR set
// and GERROR.CMDQ_ERR raised, resume once software acknowledges it.
// Does not own: command layouts (commands.h), the caches themselves (tlb.h), the registers.

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/commands.h"
#include "hw/smmuv3/registers.h"
#include "hw/smmuv3/tlb.h"

namespace nb::smmu {

struct CommandStats {
  uint64_t consumed = 0;            // commands executed (CONS advanced past them)
  uint64_t byOpcode[256] = {};      // executed, per opcode
  uint64_t illegal = 0;             // CERROR_ILL
  uint64_t fetchAborts = 0;         // CERROR_ABT
  uint64_t configInvalidated = 0;   // STE/CD cache entries removed
  uint64_t tlbInvalidated = 0;      // IOTLB entries removed
  uint64_t msiWrites = 0;           // CMD_SYNC MSI writes performed
};

class CommandQueue {
public:
  CommandQueue(PhysMem& mem, RegisterFile& regs, const Features& features, ConfigCache& configs,
               Iotlb& iotlb)
      : mem(mem), regs(regs), features(features), configs(configs), iotlb(iotlb) {}
  KJ_DISALLOW_COPY(CommandQueue);

  void consume();
  // Executes commands from CONS up to PROD while CMDQEN is set and no command error is active.
  // Re-entrant calls (an interrupt callback writing PROD) are absorbed by the running loop.

  void acknowledged();
  // GERROR.CMDQ_ERR was acknowledged: clear CMDQ_CONS.ERR and resume at CONS (facts 1.6: after
  // CERROR_ILL, Linux has replaced the entry with a CMD_SYNC; after CERROR_ABT it retries).

  void execute(const Command& command);
  // One command's effect (exposed for tests and benchmarks that bypass the ring).

  const CommandStats& stats() const { return counters; }

private:
  void fail(uint32_t cons, CommandError error);
  void completeSync(const Command& command);

  PhysMem& mem;
  RegisterFile& regs;
  const Features& features;
  ConfigCache& configs;
  Iotlb& iotlb;
  CommandStats counters;
  bool consuming = false;
};

}  // namespace nb::smmu
