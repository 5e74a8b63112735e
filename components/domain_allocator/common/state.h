// components/domain_allocator/common: the allocator's state, shared by its files (internal).
//
// Owns: what the allocator knows about each SMMU (its smmu_queue, features, stream table, ASID
// and VMID spaces, level-2 stream tables), each device ("master": its StreamIDs, CD table,
// RID and PASID domains, the STE in memory), each domain (DomainServer), and the counters.
// The pieces: writer.c++ (memory: STEs, CDs, tables, invalidation), domain.c++ (the Domain
// capability), allocator.c++ (the DomainAllocator capability, attach, the factory).

#pragma once

#include "components/domain_allocator/common/entries.h"
#include "components/domain_allocator/common/hitless.h"
#include "hw/mem/phys-mem.h"
#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/mem.capnp.h"
#include "interfaces/page-table.capnp.h"
#include "interfaces/smmu-queue.capnp.h"
#include "system/runtime/contract.h"

#include <capnp/message.h>
#include <kj/async.h>
#include <kj/map.h>
#include <kj/vector.h>
#include <deque>
#include <vector>

namespace nb::domains {

using rpc::Errno;

struct Result {
  Errno errno_ = Errno::OK;
  kj::String message;
};

class IdSpace {
  // ASIDs or VMIDs: the lowest free ID from 1 (0 is reserved, facts 2.5 "ID allocation").
public:
  explicit IdSpace(uint32_t max) : used_(max + 1, false) { used_[0] = true; }
  kj::Maybe<uint32_t> alloc();
  void free(uint32_t id);
  uint32_t live() const { return live_; }
  uint32_t max() const { return uint32_t(used_.size() - 1); }

private:
  std::vector<bool> used_;
  uint32_t live_ = 0;
};

struct Smmu {
  // One SMMU instance, as its smmu_queue describes it.
  kj::String name;
  rpc::SmmuQueue::Client queue;
  // Features (QueueInfo.features, from IDR0..5).
  bool stage1 = false, stage2 = false, nesting = false, ril = false, httuDirty = false;
  bool attrTypesOvr = false, cd2l = false, gran4k = false, gran16k = false, gran64k = false;
  uint8_t ssidBits = 0, oas = 48;
  // The stream table smmu_queue installed at reset.
  uint64_t strtab = 0;
  uint8_t log2Size = 0;
  bool twoLevel = false;
  uint8_t split = 8;
  kj::HashMap<uint32_t, uint64_t> l2Tables;  // level-1 index -> level-2 table PA
  IdSpace asids;
  IdSpace vmids;
  kj::HashMap<uint16_t, class DomainServer*> nestParents;  // nest-parent stage-2 domains by VMID

  Smmu(kj::String name, rpc::SmmuQueue::Client queue, uint32_t asidMax, uint32_t vmidMax)
      : name(kj::mv(name)), queue(kj::mv(queue)), asids(asidMax), vmids(vmidMax) {}
  SteOptions steOptions() const { return SteOptions{attrTypesOvr, false, false}; }
};

struct Hold {
  // An installed domain: the capability keeps its server alive while it is installed.
  rpc::Domain::Client cap;
  class DomainServer* server;
  Hold(rpc::Domain::Client cap, DomainServer* server) : cap(kj::mv(cap)), server(server) {}
  Hold(const Hold& o) : cap(const_cast<rpc::Domain::Client&>(o.cap)), server(o.server) {}
  Hold(Hold&&) = default;
  Hold& operator=(Hold&&) = default;
};

struct CdTable {
  // A master's context descriptors (facts 2.5): linear, or two-level with 64 KiB leaves.
  uint64_t pa = 0;  // the linear table or the level-1 table
  uint64_t bytes = 0;
  CdTableFormat format = CdTableFormat::LINEAR;
  uint8_t s1CdMax = 0;                     // log2 of the CDs it holds
  kj::HashMap<uint32_t, uint64_t> leaves;  // two-level: level-1 index -> leaf PA
};

struct Master {
  // One PCI function (Linux's arm_smmu_master).
  kj::String bdf;  // "ssss:bb:dd.f"
  uint16_t segment = 0, rid = 0;
  bool endpoint = false;
  Smmu* smmu = nullptr;
  kj::Vector<uint32_t> sids;   // every StreamID its DMA can carry
  kj::Vector<uint32_t> owned;  // those whose STE it writes (a SID another master already has
                               // — two functions behind one PCIe-to-PCI bridge — is not)
  uint8_t ssidBits = 0;        // S1CDMax of its CD table
  Ste ste;                     // what its STEs hold now
  kj::Maybe<Hold> domain;      // its RID domain
  kj::TreeMap<uint32_t, Hold> pasids;
  kj::Maybe<CdTable> cdTable;
  kj::ForkedPromise<void> tail = kj::Promise<void>(kj::READY_NOW).fork();
};

struct Inv {
  // One interfaces/smmu-queue.capnp HostInvalidation.
  rpc::HostOp op;
  uint32_t sid = 0, ssid = 0;
  uint16_t asid = 0, vmid = 0;
  uint64_t addr = 0, size = 0, granule = 0, pageSize = 0;
  bool leaf = true;
};

enum class KernelEra : uint8_t {
  // Which kernel's invalidation rules the allocator follows (the `kernel` setting).
  K6_12,  // no nest-parent NH_ALL (nesting arrived in 6.13); pair with page_table's
          // partial_unmap = "split" (split on unmap was removed in 6.13)
  K6_18,  // 6.13 .. 7.0, arm_smmu_tlb_inv_range_domain: no threshold on the DMA path
  K7_1,   // the arm_smmu_invs era: arm_smmu_inv_size_too_big turns a large range without RIL
          // into a whole-ASID/VMID flush
};

struct InvalidationPlan {
  // What one unmap (or map) sends: Linux's submissions in order, each ending in a CMD_SYNC,
  // carried by one SmmuQueue.invalidate call (a SYNC operation between two submissions; the
  // last one's SYNC is appended by smmu_queue). Built by the functions in invalidation.c++.
  kj::Vector<Inv> ops;
  uint32_t submissions = 0;  // CMD_SYNCs the plan costs
  void add(const Inv& op) { ops.add(op); }
  void endSubmission();      // arm_smmu_cmdq_batch_submit: what was added gets its SYNC
};

struct Gather {
  // struct iommu_iotlb_gather: [start, end] and the page size of what was gathered.
  uint64_t start = ~uint64_t(0), end = 0, pgsize = 0;
};

struct Counters {
  uint64_t domainsAllocated[5] = {};  // by rpc::DomainKind
  uint64_t allocErrors = 0, vsteRejected = 0;
  uint64_t attaches = 0, attachErrors = 0, pasidSets = 0, pasidErrors = 0;
  uint64_t updates[4] = {};  // STE and CD updates by UpdateKind
  uint64_t qwordStores = 0, cfgiSte = 0, cfgiCd = 0, syncs = 0, invalidateCalls = 0;
  uint64_t tlbiCommands = 0, wholeDomainFlushes = 0;
  uint64_t walkFlushes = 0, leafFlushes = 0, gatherEarlySyncs = 0, nestParentFlushes = 0;
  uint64_t fqQueued = 0, fqFullFlushes = 0, fqTimeoutFlushes = 0, fqPending = 0;
  uint64_t mapCalls = 0, unmapCalls = 0, bytesMapped = 0, bytesUnmapped = 0;
  uint64_t l2StreamTables = 0, cdTables = 0, cdLeaves = 0, framesBytes = 0;
  uint64_t sharedStreamIds = 0, taskFailures = 0;
};

class Shared final : public kj::Refcounted, public kj::TaskSet::ErrorHandler {
public:
  Shared(PhysMem& mem, rpc::FrameAllocator::Client frames, rpc::PageTableEngine::Client pageTables,
         rpc::Policy policy, rpc::Granule granule, uint8_t pasidBits, KernelEra kernel,
         bool defaultFq, ModeledClock& clock)
      : mem(mem),
        clock(clock),
        frames(kj::mv(frames)),
        pageTables(kj::mv(pageTables)),
        policy(policy),
        granule(granule),
        pasidBits(pasidBits),
        kernel(kernel),
        defaultFq(defaultFq) {}

  void taskFailed(kj::Exception&& e) override;

  PhysMem& mem;
  ModeledClock& clock;  // the modeled machine's time: STE/CD stores are charged here
  rpc::FrameAllocator::Client frames;
  rpc::PageTableEngine::Client pageTables;
  rpc::Policy policy;
  rpc::Granule granule;  // the `granule` setting (4K unless set)
  uint8_t pasidBits;     // the `pasid_bits` setting
  KernelEra kernel;      // the `kernel` setting
  bool defaultFq;        // the `default_domain_type` setting is "dma_fq" (iommu.strict=0)
  kj::Vector<kj::Own<Smmu>> smmus;
  kj::Vector<kj::Own<Master>> masters;
  capnp::CapabilityServerSet<rpc::Domain> domains;
  kj::Maybe<rpc::Domain::Client> identity, blocked;
  uint32_t nextId = 1;
  uint32_t liveDomains = 0;
  bool stopped = false;  // shut down: domains that end now issue no more commands
  Counters counters;
  kj::TaskSet tasks{*this};

  kj::Maybe<Smmu&> findSmmu(kj::StringPtr name);
  kj::Maybe<Master&> findMaster(kj::StringPtr bdf);  // Errno-free: callers map to eNoDev
  bool ambiguous(kj::StringPtr bdf);

  // ---- writer.c++: memory, tables and invalidation
  kj::Promise<uint64_t> allocFrames(uint64_t bytes, uint64_t align);  // zeroed
  void freeFrames(uint64_t pa, uint64_t bytes);
  uint64_t stePa(const Smmu& smmu, uint32_t sid) const;
  kj::Promise<void> setUpStreamTable(Smmu& smmu);  // level-2 tables for its masters' SIDs
  kj::Promise<uint32_t> invalidate(Smmu& smmu, kj::Vector<Inv> ops);
  // Issues `ops` (SmmuQueue.invalidate, a CMD_SYNC appended); resolves with the commands the
  // SMMU executed. A refusal or a SYNC timeout is the SMMU misbehaving: an exception.
  kj::Promise<void> writeSte(Master& master, Ste target);
  // Every STE `master` owns becomes `target`, planned by planUpdate, CFGI_STE (each SID) + SYNC
  // after each step.
  kj::Promise<void> ensureCdTable(Master& master);
  kj::Promise<uint64_t> cdPa(Master& master, uint32_t ssid);  // allocates a leaf if needed
  kj::Promise<void> writeCd(Master& master, uint32_t ssid, Cd target);
  // CD `ssid` of the master's table becomes `target`, CFGI_CD (each SID) + SYNC after each step.
  Cd readCd(uint64_t pa) const;

  void shutdown();  // drops every installed domain (breaks the references back to `this`)
};

class DomainServer final : public rpc::Domain::Server {
  // One domain. Static identity/blocked domains have no SMMU; paging ones a page table;
  // nested ones a stage-2 parent and a vIOMMU.
public:
  DomainServer(kj::Own<Shared> shared, rpc::DomainKind kind, Smmu* smmu);
  ~DomainServer() noexcept(false);
  KJ_DISALLOW_COPY(DomainServer);

  kj::Own<Shared> shared;
  uint32_t id;
  rpc::DomainKind kind;
  Smmu* smmu;  // null: identity and blocked (any SMMU)
  bool nestParent = false, dirtyTracking = false;
  uint16_t asid = 0, vmid = 0;

  // Paging domains.
  kj::Maybe<rpc::PageTable::Client> table;
  capnp::MallocMessageBuilder tableInfo;  // its TableInfo
  bool hasTable = false;
  uint64_t pageSize = 4096;

  // Strict or lazy (IOMMU_DOMAIN_DMA / IOMMU_DOMAIN_DMA_FQ) and the flush queue: the flush
  // count each pending entry was queued at (fq_ring; dma-iommu's per-CPU ring, one CPU here).
  bool flushQueue = false;
  std::deque<uint64_t> fqEntries;
  uint64_t fqFlushStart = 0, fqFlushFinish = 0;
  bool fqTimerArmed = false;
  uint64_t fqDeadlineNs = 0;   // modeled time the armed timer fires (IOVA_DEFAULT_FQ_TIMEOUT)

  // Nested domains.
  kj::Maybe<Hold> parent;
  kj::Maybe<rpc::Viommu::Client> viommu;
  ValidVste vste{0, 0, VsteConfig::ABORT, false};

  struct Attachment {
    Master* master;
    kj::Maybe<uint32_t> pasid;
  };
  kj::Vector<Attachment> attachments;

  rpc::TableInfo::Reader info() { return tableInfo.getRoot<rpc::TableInfo>().asReader(); }
  rpc::Domain::Client self() { return thisCap(); }  // a new reference to this domain
  Ste steFor(const Master& master);  // the STE this domain needs as a RID domain (not stage 1)
  Cd cd();                           // stage 1: its CD
  void detach(Master& master, kj::Maybe<uint32_t> pasid);

protected:
  kj::Promise<void> info(InfoContext context) override;
  kj::Promise<void> iovaToPhys(IovaToPhysContext context) override;
  kj::Promise<void> map(MapContext context) override;
  kj::Promise<void> unmap(UnmapContext context) override;
  kj::Promise<void> flushAll(FlushAllContext context) override;
  kj::Promise<void> drainFlushQueue(DrainFlushQueueContext context) override;

public:
  // invalidation.c++: Linux's rules, each named after the function it mirrors.
  void armSmmuTlbInvRangeDomain(InvalidationPlan& plan, uint64_t iova, uint64_t size,
                                uint64_t granule, bool leaf);
  void armSmmuTlbInvContext(InvalidationPlan& plan);
  void iommuIotlbGatherAddPage(InvalidationPlan& plan, Gather& gather, uint64_t iova,
                               uint64_t size, uint64_t pgsize);
  void iommuIotlbSync(InvalidationPlan& plan, Gather& gather);
  void queueIova(InvalidationPlan& plan);
  bool fqFlushTimeout(InvalidationPlan& plan, uint32_t& reclaimed);
  // The flush-queue timer, on the modeled clock: fires (fqFlushTimeout) if its deadline passed.
  void fqTimerCheck(InvalidationPlan& plan);
  void replayUnmap(InvalidationPlan& plan, capnp::List<rpc::Invalidation>::Reader list,
                   uint32_t rangesDone);
  struct Issued {
    uint32_t commands = 0;  // invalidation commands executed (SYNCs excluded)
    uint32_t syncs = 0;
  };
  kj::Promise<Issued> issue(InvalidationPlan plan);

private:
  kj::Promise<uint32_t> invalidateRanges(capnp::List<rpc::Invalidation>::Reader ranges);
  kj::Promise<uint32_t> flush();
};

kj::Promise<DomainServer*> unwrap(Shared& shared, rpc::Domain::Client domain);
// The server behind a capability this allocator handed out; a foreign capability is a broken
// contract (an exception).

}  // namespace nb::domains
