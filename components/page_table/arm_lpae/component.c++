// The page_table component: PageTableEngine and PageTable servers over IoPageTable.
//
// Frames: every table page comes from hw/mem's allocator through a FramePool. Before a batch
// the component reserves (one RPC) at most what the batch can need; the engine then runs
// synchronously; frames the engine frees return to the pool, and the surplus goes back to
// hw/mem after each call. Bulk data never crosses RPC — only runs, results and invalidations.

#include "components/page_table/arm_lpae/component.h"

#include "components/page_table/arm_lpae/io-page-table.h"
#include "hw/mem/frame-pool.h"
#include "interfaces/page-table.capnp.h"

#include <kj/debug.h>

namespace nb::pt {

namespace {

constexpr uint64_t POOL_KEEP = 64;     // frames per size class kept on hand between calls
constexpr int MAX_NOMEM_RETRIES = 4;   // top-ups when an estimate fell short

rpc::Errno toRpc(Errno e) {
  switch (e) {
    case Errno::OK: return rpc::Errno::OK;
    case Errno::NOENT: return rpc::Errno::E_NO_ENT;
    case Errno::NOMEM: return rpc::Errno::E_NO_MEM;
    case Errno::EXIST: return rpc::Errno::E_EXIST;
    case Errno::INVAL: return rpc::Errno::E_INVAL;
    case Errno::RANGE: return rpc::Errno::E_RANGE;
    case Errno::OPNOTSUPP: return rpc::Errno::E_OP_NOT_SUPP;
  }
  KJ_UNREACHABLE;
}

Prot fromRpc(rpc::Prot::Reader p) {
  Prot out = Prot::NONE;
  if (p.getRead()) out = out | Prot::READ;
  if (p.getWrite()) out = out | Prot::WRITE;
  if (p.getCache()) out = out | Prot::CACHE;
  if (p.getNoexec()) out = out | Prot::NOEXEC;
  if (p.getMmio()) out = out | Prot::MMIO;
  if (p.getPriv()) out = out | Prot::PRIV;
  return out;
}

Granule fromRpc(rpc::Granule g) {
  switch (g) {
    case rpc::Granule::SIZE4K: return Granule::SIZE_4K;
    case rpc::Granule::SIZE16K: return Granule::SIZE_16K;
    case rpc::Granule::SIZE64K: return Granule::SIZE_64K;
  }
  return Granule::SIZE_4K;  // unknown enumerant from a newer peer: the create() check rejects
}

kj::StringPtr granuleName(Granule g) {
  switch (g) {
    case Granule::SIZE_4K: return "4K";
    case Granule::SIZE_16K: return "16K";
    case Granule::SIZE_64K: return "64K";
  }
  KJ_UNREACHABLE;
}

void setInvalidations(capnp::List<rpc::Invalidation>::Builder out, kj::ArrayPtr<const Invalidation> in) {
  for (auto i : kj::indices(in)) {
    out[i].setIova(in[i].iova);
    out[i].setSize(in[i].size);
    out[i].setGranule(in[i].granule);
    out[i].setLeaf(in[i].leaf);
    out[i].setRange(in[i].range);
  }
}

// What every table of one component instance shares.
struct Shared final : public kj::Refcounted {
  Shared(PhysMem& mem, rpc::FrameAllocator::Client frames, PartialUnmap policy,
         TableLifetime lifetime, ModeledClock& clock)
      : mem(mem), pool(kj::mv(frames)), policy(policy), lifetime(lifetime), clock(clock) {}

  PhysMem& mem;
  FramePool pool;
  PartialUnmap policy;
  TableLifetime lifetime;
  ModeledClock& clock;
  kj::Vector<class TableServer*> live;
  uint64_t nextId = 1;

  struct Counters {
    uint64_t tablesCreated = 0, createErrors = 0;
    uint64_t mapCalls = 0, mapErrors = 0, bytesMapped = 0;
    uint64_t unmapCalls = 0, unmapErrors = 0, bytesUnmapped = 0;
    uint64_t lookups = 0, walks = 0, dirtyScans = 0;
    uint64_t invalidationsReturned = 0;
    // Engine counters of tables already destroyed (live ones are summed on demand).
    uint64_t ptesWritten = 0, tablePagesAllocated = 0, tablePagesFreed = 0;
    uint64_t unmapLastLevelReads = 0;
  } counters;
};

class TableServer final : public rpc::PageTable::Server {
public:
  TableServer(kj::Own<Shared> shared, kj::Own<IoPageTable> table)
      : shared_(kj::mv(shared)), table_(kj::mv(table)), id_(shared_->nextId++) {
    shared_->live.add(this);
  }
  ~TableServer() noexcept(false) { release(); }

  uint64_t id() const { return id_; }
  kj::Maybe<IoPageTable&> table() {
    KJ_IF_MAYBE(t, table_) { return **t; }
    return nullptr;
  }

  // Frees the engine (its pages return to the pool) and forgets this table.
  void release() {
    KJ_IF_MAYBE(t, table_) {
      // A copy: the statistics live in the engine, which the next line destroys.
      const auto s = (*t)->stats();
      table_ = nullptr;  // destructor frees every page into the pool
      shared_->counters.ptesWritten += s.ptesWritten;
      shared_->counters.tablePagesAllocated += s.tablesAllocated;
      shared_->counters.tablePagesFreed += s.tablesAllocated;
      shared_->counters.unmapLastLevelReads += s.unmapLastLevelReads;
      for (auto i : kj::indices(shared_->live)) {
        if (shared_->live[i] == this) {
          // Keep creation order (stats and structures list tables in it).
          for (size_t j = i; j + 1 < shared_->live.size(); j++) shared_->live[j] = shared_->live[j + 1];
          shared_->live.removeLast();
          break;
        }
      }
    }
  }

private:
  // The modeled time of the software's stores into the table and of the table pages it took.
  void chargeWork(const IoPageTable::Stats& before) {
    KJ_IF_MAYBE(t, table()) {
      auto& after = t->stats();
      shared_->clock.charge(Cost::PTE_STORE, after.ptesWritten - before.ptesWritten);
      shared_->clock.charge(Cost::TABLE_PAGE, after.tablesAllocated - before.tablesAllocated);
    }
  }

protected:
  kj::Promise<void> map(MapContext context) override {
    auto& table = requireTable();
    shared_->counters.mapCalls++;
    auto params = context.getParams().getRuns();
    auto runs = kj::heapArray<MapRun>(params.size());
    uint64_t need = 0;
    for (auto i : kj::indices(runs)) {
      auto r = params[i];
      runs[i] = MapRun{r.getIova(), r.getPa(), r.getSize(), fromRpc(r.getProt())};
      need += tablesForRun(table.geometry(), r.getIova(), r.getPa(), r.getSize());
    }
    context.releaseParams();
    auto state = kj::heap<MapState>();
    state->runs = kj::mv(runs);
    auto& ref = *state;
    auto before = table.stats();
    return mapFrom(ref, 0, need, MAX_NOMEM_RETRIES).then([this, context, state = kj::mv(state),
                                                          before]() mutable {
      chargeWork(before);
      auto results = context.getResults();
      results.setErrno(toRpc(state->error));
      results.setBytesMapped(state->bytesMapped);
      KJ_IF_MAYBE(f, state->failedIndex) { results.setFailedIndex(*f); }
      setInvalidations(results.initInvalidations(state->invalidations.size()), state->invalidations);
      shared_->counters.bytesMapped += state->bytesMapped;
      shared_->counters.invalidationsReturned += state->invalidations.size();
      if (state->error != Errno::OK) shared_->counters.mapErrors++;
      return shared_->pool.trim(POOL_KEEP);
    });
  }

  kj::Promise<void> unmap(UnmapContext context) override {
    auto& table = requireTable();
    shared_->counters.unmapCalls++;
    auto params = context.getParams().getRanges();
    auto ranges = KJ_MAP(r, params) { return UnmapRange{r.getIova(), r.getSize()}; };
    context.releaseParams();
    // Only a split needs new tables: at most one per level at each end of each range.
    uint64_t need = shared_->policy == PartialUnmap::SPLIT ? ranges.size() * 2 * table.geometry().levels : 0;
    return shared_->pool.reserve(table.geometry().pageSize(), need, tableFrameLimit(table.config()))
        .then([this, context, ranges = kj::mv(ranges)](bool) mutable {
          auto before = requireTable().stats();
          auto result = requireTable().unmap(ranges);
          chargeWork(before);
          auto results = context.getResults();
          results.setErrno(toRpc(result.error));
          results.setBytesUnmapped(result.bytesUnmapped);
          KJ_IF_MAYBE(s, result.stoppedIndex) { results.setStoppedIndex(*s); }
          setInvalidations(results.initInvalidations(result.invalidations.size()), result.invalidations);
          shared_->counters.bytesUnmapped += result.bytesUnmapped;
          shared_->counters.invalidationsReturned += result.invalidations.size();
          if (result.error != Errno::OK) shared_->counters.unmapErrors++;
          return shared_->pool.trim(POOL_KEEP);
        });
  }

  kj::Promise<void> iovaToPhys(IovaToPhysContext context) override {
    shared_->counters.lookups++;
    auto results = context.getResults();
    KJ_IF_MAYBE(pa, requireTable().iovaToPhys(context.getParams().getIova())) {
      results.setPa(*pa);
    } else {
      results.setErrno(rpc::Errno::E_NO_ENT);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> walk(WalkContext context) override {
    shared_->counters.walks++;
    auto steps = requireTable().walk(context.getParams().getIova());
    auto out = context.getResults().initSteps(steps.size());
    for (auto i : kj::indices(steps)) {
      out[i].setLevel(steps[i].level);
      out[i].setDescriptorPa(steps[i].descriptorPa);
      out[i].setDescriptor(steps[i].descriptor);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> readAndClearDirty(ReadAndClearDirtyContext context) override {
    shared_->counters.dirtyScans++;
    auto p = context.getParams();
    auto result = requireTable().readAndClearDirty(p.getIova(), p.getSize(), p.getNoClear());
    auto results = context.getResults();
    KJ_SWITCH_ONEOF(result) {
      KJ_CASE_ONEOF(bitmap, DirtyBitmap) {
        results.setPageSize(bitmap.pageSize);
        results.setDirtyPages(bitmap.count());
        auto words = results.initBitmap(bitmap.words.size());
        for (auto i : kj::indices(bitmap.words)) words.set(i, bitmap.words[i]);
      }
      KJ_CASE_ONEOF(e, Errno) { results.setErrno(toRpc(e)); }
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    fillInfo(requireTable(), context.getResults().initInfo());
    return kj::READY_NOW;
  }

  kj::Promise<void> destroy(DestroyContext context) override {
    requireTable();
    release();
    // With no table left, nothing will need pooled frames soon: give them all back.
    return shared_->pool.trim(shared_->live.empty() ? 0 : POOL_KEEP);
  }

public:
  static void fillInfo(IoPageTable& t, rpc::TableInfo::Builder info) {
    auto& g = t.geometry();
    auto& c = t.config();
    info.setRootPa(t.rootPa());
    auto config = info.initConfig();
    config.setFormat(c.format == Format::STAGE1 ? rpc::Format::STAGE1 : rpc::Format::STAGE2);
    config.setGranule(c.granule == Granule::SIZE_4K    ? rpc::Granule::SIZE4K
                      : c.granule == Granule::SIZE_16K ? rpc::Granule::SIZE16K
                                                       : rpc::Granule::SIZE64K);
    config.setIas(c.ias);
    config.setOas(c.oas);
    config.setDirtyTracking(c.hd);
    info.setStartLevel(g.startLevel);
    info.setLevels(g.levels);
    info.setConcatenated(g.concat);
    info.setPgdBytes(g.pgdBytes);
    info.setPgsizeBitmap(g.pgsizeBitmap);
    info.setTablePages(t.tablePagesInUse());
    if (c.format == Format::STAGE1) {
      auto s1 = t.s1Config();
      auto out = info.initS1();
      out.setTtbr(s1.ttbr);
      out.setMair(s1.mair);
      auto tcr = out.initTcr();
      tcr.setIps(s1.tcr.ips);
      tcr.setTg(s1.tcr.tg);
      tcr.setSh(s1.tcr.sh);
      tcr.setOrgn(s1.tcr.orgn);
      tcr.setIrgn(s1.tcr.irgn);
      tcr.setTsz(s1.tcr.tsz);
    } else {
      auto s2 = t.s2Config();
      auto out = info.initS2();
      out.setVttbr(s2.vttbr);
      auto vtcr = out.initVtcr();
      vtcr.setPs(s2.vtcr.ps);
      vtcr.setTg(s2.vtcr.tg);
      vtcr.setSh(s2.vtcr.sh);
      vtcr.setOrgn(s2.vtcr.orgn);
      vtcr.setIrgn(s2.vtcr.irgn);
      vtcr.setSl(s2.vtcr.sl);
      vtcr.setTsz(s2.vtcr.tsz);
    }
  }

private:
  struct MapState {
    kj::Array<MapRun> runs;
    uint64_t bytesMapped = 0;
    kj::Maybe<size_t> failedIndex;
    Errno error = Errno::OK;
    kj::Vector<Invalidation> invalidations;
  };

  // Maps runs[first..] (the first one possibly advanced past what is already mapped), topping
  // up the pool and continuing where the engine ran out of frames.
  kj::Promise<void> mapFrom(MapState& state, size_t first, uint64_t need, int retries) {
    auto& table = requireTable();
    return shared_->pool.reserve(table.geometry().pageSize(), need, tableFrameLimit(table.config()))
        .then([this, &state, first, retries](bool reserved) -> kj::Promise<void> {
          auto result = requireTable().map(state.runs.slice(first, state.runs.size()));
          state.bytesMapped += result.bytesMapped;
          for (auto& inv : result.invalidations) state.invalidations.add(inv);
          KJ_IF_MAYBE(f, result.failedIndex) {
            size_t index = first + *f;
            if (result.error == Errno::NOMEM && reserved && retries > 0) {
              // The estimate fell short: advance the failed run past its mapped head, retry.
              uint64_t before = 0;
              for (size_t i = first; i < index; i++) before += state.runs[i].size;
              uint64_t head = result.bytesMapped - before;
              auto& run = state.runs[index];
              run.iova += head;
              run.pa += head;
              run.size -= head;
              uint64_t more = 16;
              for (size_t i = index; i < state.runs.size(); i++) {
                more += tablesForRun(requireTable().geometry(), state.runs[i].iova, state.runs[i].pa, state.runs[i].size);
              }
              return mapFrom(state, index, shared_->pool.framesOnHand() + more, retries - 1);
            }
            state.failedIndex = index;
            state.error = result.error;
          }
          return kj::READY_NOW;
        });
  }

  IoPageTable& requireTable() {
    KJ_IF_MAYBE(t, table_) { return **t; }
    KJ_FAIL_REQUIRE("page table has been destroyed");
  }

  kj::Own<Shared> shared_;
  kj::Maybe<kj::Own<IoPageTable>> table_;
  uint64_t id_;
};

class EngineServer final : public rpc::PageTableEngine::Server, public ComponentCore {
public:
  explicit EngineServer(kj::Own<Shared> shared) : shared_(kj::mv(shared)) {}

  void stats(kj::Vector<Stat>& out) override {
    auto& c = shared_->counters;
    uint64_t ptes = c.ptesWritten, allocated = c.tablePagesAllocated, inUse = 0;
    uint64_t lastLevelReads = c.unmapLastLevelReads;
    for (auto* t : shared_->live) {
      KJ_IF_MAYBE(table, t->table()) {
        ptes += table->stats().ptesWritten;
        lastLevelReads += table->stats().unmapLastLevelReads;
        allocated += table->stats().tablesAllocated;
        inUse += table->tablePagesInUse();
      }
    }
    out.add(Stat{kj::str("tables_created"), c.tablesCreated});
    out.add(Stat{kj::str("tables_live"), shared_->live.size()});
    out.add(Stat{kj::str("create_errors"), c.createErrors});
    out.add(Stat{kj::str("map_calls"), c.mapCalls});
    out.add(Stat{kj::str("map_errors"), c.mapErrors});
    out.add(Stat{kj::str("bytes_mapped"), c.bytesMapped});
    out.add(Stat{kj::str("unmap_calls"), c.unmapCalls});
    out.add(Stat{kj::str("unmap_errors"), c.unmapErrors});
    out.add(Stat{kj::str("bytes_unmapped"), c.bytesUnmapped});
    out.add(Stat{kj::str("lookups"), c.lookups});
    out.add(Stat{kj::str("walks"), c.walks});
    out.add(Stat{kj::str("dirty_scans"), c.dirtyScans});
    out.add(Stat{kj::str("invalidations_returned"), c.invalidationsReturned});
    out.add(Stat{kj::str("ptes_written"), ptes});
    out.add(Stat{kj::str("table_pages_allocated"), allocated});
    out.add(Stat{kj::str("table_pages_in_use"), inUse});
    out.add(Stat{kj::str("unmap_last_level_reads"), lastLevelReads});
    out.add(Stat{kj::str("frames_pooled"), shared_->pool.framesOnHand()});
  }

  void structures(kj::Vector<StructureInfo>& out) override {
    for (auto* t : shared_->live) {
      KJ_IF_MAYBE(table, t->table()) {
        auto& g = table->geometry();
        auto& c = table->config();
        out.add(StructureInfo{
            kj::str("page_table_root"), kj::str("table ", t->id()), table->rootPa(), g.pgdBytes,
            kj::str(c.format == Format::STAGE1 ? "ARM_64_LPAE_S1" : "ARM_64_LPAE_S2", " ",
                    granuleName(c.granule), " ias=", c.ias, " oas=", c.oas, " start_level=", g.startLevel,
                    " concat=", g.concat, c.hd ? " hd" : "")});
      }
    }
  }

  kj::Promise<void> shutdown() override {
    // Tables still held by clients are freed now; their capabilities then fail.
    while (!shared_->live.empty()) shared_->live.back()->release();
    return shared_->pool.trim(0);
  }

protected:
  kj::Promise<void> create(CreateContext context) override {
    auto c = context.getParams().getConfig();
    TableConfig config{c.getFormat() == rpc::Format::STAGE1 ? Format::STAGE1 : Format::STAGE2,
                       fromRpc(c.getGranule()), c.getIas(), c.getOas(), c.getDirtyTracking(),
                       shared_->policy, shared_->lifetime};
    if (uint16_t(c.getFormat()) > 1 || uint16_t(c.getGranule()) > 2) {
      shared_->counters.createErrors++;
      context.getResults().setErrno(rpc::Errno::E_INVAL);
      return kj::READY_NOW;
    }
    auto geometry = makeGeometry(config.format, config.granule, config.ias, config.oas);
    uint64_t pgd = 0;
    KJ_IF_MAYBE(g, geometry.tryGet<Geometry>()) { pgd = alignUp(g->pgdBytes, FRAME_SIZE); }
    auto reserve =
        pgd ? shared_->pool.reserve(pgd, 1, tableFrameLimit(config)) : kj::Promise<bool>(true);
    return reserve.then([this, context, config](bool) mutable {
      auto made = IoPageTable::create(shared_->mem, shared_->pool, config);
      auto results = context.getResults();
      KJ_SWITCH_ONEOF(made) {
        KJ_CASE_ONEOF(table, kj::Own<IoPageTable>) {
          shared_->counters.tablesCreated++;
          shared_->clock.charge(Cost::TABLE_PAGE, table->stats().tablesAllocated);
          TableServer::fillInfo(*table, results.initInfo());
          results.setTable(kj::heap<TableServer>(kj::addRef(*shared_), kj::mv(table)));
        }
        KJ_CASE_ONEOF(e, Errno) {
          shared_->counters.createErrors++;
          results.setErrno(toRpc(e));
        }
      }
    });
  }

private:
  kj::Own<Shared> shared_;
};

const kj::StringPtr PARTIAL_UNMAP_CHOICES[] = {"refuse", "split", "whole_leaf"};
const kj::StringPtr TABLE_LIFETIME_CHOICES[] = {"linux", "eager"};

kj::Promise<rpc::Component::Client> makePageTable(ComponentContext& ctx) {
  auto policyName = ctx.settings.string("partial_unmap", "refuse");
  PartialUnmap policy = policyName == "split"        ? PartialUnmap::SPLIT
                        : policyName == "whole_leaf" ? PartialUnmap::WHOLE_LEAF
                                                     : PartialUnmap::REFUSE;
  TableLifetime lifetime = ctx.settings.string("table_lifetime", "linux") == "eager"
                               ? TableLifetime::EAGER
                               : TableLifetime::LINUX;
  auto server = kj::heap<EngineServer>(
      kj::refcounted<Shared>(ctx.mem, ctx.frames, policy, lifetime, ctx.clock));
  auto& core = *server;
  rpc::PageTableEngine::Client main = kj::mv(server);
  return makeComponent(ctx.type.name, capnp::typeId<rpc::PageTableEngine>(), kj::mv(main), core);
}

}  // namespace

uint64_t tablesForRun(const Geometry& g, uint64_t iova, uint64_t pa, uint64_t size) {
  uint64_t end = iova + size;
  if (size == 0 || end < iova || !isAligned(iova | pa | size, g.pageSize())) return 0;
  uint64_t total = 0;
  uint64_t cur = iova;
  while (cur < end) {
    uint64_t p = pa + (cur - iova);
    // The largest leaf that fits here, as the engine picks it.
    uint32_t level = MAX_LEVELS - 1;
    for (uint32_t l = g.startLevel; l < MAX_LEVELS; l++) {
      uint64_t bs = g.blockSize(l);
      if (g.leafAllowed(l) && isAligned(cur, bs) && isAligned(p, bs) && end - cur >= bs) {
        level = l;
        break;
      }
    }
    uint64_t bs = g.blockSize(level);
    // Leaves of this size continue until a larger one becomes usable, or the run ends.
    uint64_t segEnd = cur + alignDown(end - cur, bs);
    for (uint32_t l = g.startLevel; l < level; l++) {
      uint64_t big = g.blockSize(l);
      if (!g.leafAllowed(l) || !isAligned(cur ^ p, big)) continue;
      uint64_t boundary = alignUp(cur, big);
      if (boundary > cur && boundary < segEnd && end - boundary >= big) segEnd = boundary;
    }
    for (uint32_t l = g.startLevel + 1; l <= level; l++) {
      uint32_t s = g.levelShift(l - 1);
      total += ((segEnd - 1) >> s) - (cur >> s) + 1;
    }
    cur = segEnd;
  }
  return total;
}

ComponentType pageTableType() {
  return ComponentType{
      "page_table/arm_lpae",
      "VMSAv8-64 stage 1 and stage 2 io page tables in shared memory (Linux io-pgtable-arm)",
      capnp::Schema::from<rpc::PageTableEngine>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"partial_unmap", SettingType::CHOICE, false, PARTIAL_UNMAP_CHOICES,
                      "unmapping part of a larger leaf: refuse (Linux >= 6.13, default), split "
                      "(Linux <= 6.12) or whole_leaf (generic_pt)"},
          SettingSpec{"table_lifetime", SettingType::CHOICE, false, TABLE_LIFETIME_CHOICES,
                      "when unmap frees a table: linux (io-pgtable-arm, every kernel: only when "
                      "an unmap's page size spans the table; default) or eager (once empty)"},
      }),
      nullptr,
      makePageTable,
      /*isHardware=*/false,
      // The engine is a factory: a table lives in its server, and dies (named) with the process.
      Recovery::STATELESS};
}

}  // namespace nb::pt
