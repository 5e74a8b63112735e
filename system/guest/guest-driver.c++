// system/guest: a guest driver's stage-1 side. See guest-driver.h.

#include "system/guest/guest-driver.h"

#include "util/smmuv3/cd.h"
#include "util/smmuv3/commands.h"
#include "util/smmuv3/ste.h"

namespace nb::guest {

namespace {

constexpr uint64_t PAGE = 4096;
constexpr size_t MAX_VA_COMMANDS = 64;  // beyond this a batch invalidates the whole ASID

namespace ste = smmuv3::ste;
namespace cd = smmuv3::cd;
namespace cmd = smmuv3::cmd;

// The smallest valid address size (facts 4.5) holding `bits`.
uint32_t addressSizeFor(unsigned bits) {
  for (uint32_t size : {32u, 36u, 40u, 42u, 44u, 48u, 52u}) {
    if (size >= bits) return size;
  }
  return 52;
}

uint64_t op(smmuv3::Opcode o) { return cmd::CMD_0_OP.with(0, uint64_t(o)); }

}  // namespace

GuestDriver::GuestDriver(PhysMem& mem, rpc::Vm::Client vm, rpc::Viommu::Client viommu,
                         GuestSetup setup, uint64_t pa)
    : vm(kj::mv(vm)),
      viommu(kj::mv(viommu)),
      setup(setup),
      pa(pa),
      window(mem.window(setup.regionGpa, pa, setup.regionSize)),
      frames(setup.regionGpa, setup.regionSize) {
  // The CD table first (one linear table: S1CDMax = 0 needs one CD, a page keeps it simple),
  // then the stage-1 PGD, both from the region, by GPA.
  cdGpa = KJ_REQUIRE_NONNULL(frames.allocFrames(PAGE, PAGE), "the guest region is full");
  window->zero(cdGpa, PAGE);
  table = kj::heap<pt::IoPageTable>(
      *window, frames, pt::TableConfig{pt::Format::STAGE1, setup.granule, setup.ias, setup.oas});
  writeCd();
}

GuestDriver::~GuestDriver() noexcept(false) {}

kj::Promise<kj::Own<GuestDriver>> GuestDriver::create(PhysMem& mem, rpc::Vm::Client vm,
                                                      rpc::Viommu::Client viommu,
                                                      GuestSetup setup) {
  KJ_REQUIRE(isAligned(setup.regionGpa, PAGE) && isAligned(setup.regionSize, PAGE) &&
                 setup.regionSize >= 4 * PAGE,
             "a guest region is whole pages, at least four", setup.regionGpa, setup.regionSize);
  auto translate = vm.translateRequest();
  translate.setGpa(setup.regionGpa);
  auto located = translate.send();
  auto info = vm.infoRequest().send();
  return located
      .then([info = kj::mv(info), setup](auto&& t) mutable {
        KJ_REQUIRE(t.getErrno() == rpc::Errno::OK, "the guest region is not guest memory",
                   setup.regionGpa);
        KJ_REQUIRE(t.getBytes() >= setup.regionSize, "the guest region spans memslots",
                   setup.regionGpa, setup.regionSize);
        KJ_REQUIRE(!t.getReadonly(), "the guest region is read-only", setup.regionGpa);
        uint64_t pa = t.getPa();
        return info.then([pa](auto&& i) { return kj::tuple(pa, i.getInfo().getIpaBits()); });
      })
      .then([&mem, vm, viommu, setup](kj::Tuple<uint64_t, uint8_t> found) mutable {
        uint64_t pa = kj::get<0>(found);
        if (setup.oas == 0) setup.oas = addressSizeFor(kj::get<1>(found));
        auto driver = kj::heap<GuestDriver>(mem, vm, viommu, setup, pa);
        // The VCMDQ ring (used on the sw_vcmdq path only) comes from the region too.
        uint64_t ringBytes = kj::max(uint64_t(16) << setup.ringLog2Entries, PAGE);
        uint64_t ringGpa = KJ_REQUIRE_NONNULL(driver->frames.allocFrames(ringBytes, ringBytes),
                                              "the guest region is full");
        driver->window->zero(ringGpa, ringBytes);
        uint64_t gpaBase = setup.regionGpa, size = setup.regionSize;
        GpaToPa gpaToPa = [gpaBase, size, pa](uint64_t gpa) -> kj::Promise<kj::Maybe<uint64_t>> {
          if (gpa < gpaBase || gpa - gpaBase >= size) return kj::Maybe<uint64_t>(nullptr);
          return kj::Maybe<uint64_t>(pa + (gpa - gpaBase));
        };
        return GuestQueue::create(viommu, mem, kj::mv(gpaToPa),
                                  VcmdqRing{ringGpa, setup.ringLog2Entries})
            .then([driver = kj::mv(driver)](kj::Own<GuestQueue> queue) mutable {
              driver->guestQueue = kj::mv(queue);
              return kj::mv(driver);
            });
      });
}

void GuestDriver::writeCd() {
  // Facts 2.5, the CD Linux writes for a stage-1 domain (arm_smmu_make_s1_cd): the table's
  // TCR fields and IPS, EPD1, V, AA64, R (record faults), A (abort), ASET, the ASID; TTB0; MAIR.
  auto s1 = table->s1Config();
  uint64_t dw0 = cd::CD_0_T0SZ.set(0, s1.tcr.tsz) | cd::CD_0_TG0.set(0, s1.tcr.tg) |
                 cd::CD_0_IRGN0.set(0, s1.tcr.irgn) | cd::CD_0_ORGN0.set(0, s1.tcr.orgn) |
                 cd::CD_0_SH0.set(0, s1.tcr.sh) | cd::CD_0_EPD1.with(0, 1) |
                 cd::CD_0_V.with(0, 1) | cd::CD_0_IPS.set(0, s1.tcr.ips) |
                 cd::CD_0_AA64.with(0, 1) | cd::CD_0_R.with(0, 1) | cd::CD_0_A.with(0, 1) |
                 cd::CD_0_ASET.with(0, 1) | cd::CD_0_ASID.set(0, setup.asid);
  window->store64(cdGpa + 8, s1.ttbr & cd::CD_1_TTB0.mask());
  window->store64(cdGpa + 16, 0);
  window->store64(cdGpa + 24, s1.mair);
  window->store64(cdGpa, dw0);  // V last
}

pt::MapResult GuestDriver::map(uint64_t iova, uint64_t gpa, uint64_t size, pt::Prot prot) {
  pt::MapRun run{iova, gpa, size, prot};
  return table->map(kj::arrayPtr(&run, 1));
}

pt::UnmapResult GuestDriver::unmap(uint64_t iova, uint64_t size) {
  pt::UnmapRange range{iova, size};
  return table->unmap(kj::arrayPtr(&range, 1));
}

kj::Array<uint64_t> GuestDriver::vste() const {
  uint64_t dw0 = ste::STE_0_V.with(0, 1) | ste::STE_0_CONFIG.with(0, ste::CONFIG_S1_TRANS) |
                 ste::STE_0_S1FMT.with(0, ste::S1FMT_LINEAR) |
                 (cdGpa & ste::STE_0_S1CTXPTR.mask()) | ste::STE_0_S1CDMAX.with(0, 0);
  uint64_t dw1 = ste::STE_1_S1DSS.with(0, ste::S1DSS_SSID0) |
                 ste::STE_1_S1CIR.with(0, ste::S1C_CACHE_WBRA) |
                 ste::STE_1_S1COR.with(0, ste::S1C_CACHE_WBRA) |
                 ste::STE_1_S1CSH.with(0, ste::S1C_SH_ISH);
  return kj::heapArray<uint64_t>({dw0, dw1});
}

kj::Promise<GuestStatus> GuestDriver::attach(rpc::DomainAllocator::Client allocator,
                                             rpc::Ownership::Client ownership) {
  auto req = allocator.allocNestedRequest();
  req.setViommu(viommu);
  auto words = vste();
  auto list = req.initVste(uint32_t(words.size()));
  for (auto i : kj::indices(words)) list.set(uint32_t(i), words[i]);
  return req.send().then(
      [this, ownership = kj::mv(ownership)](auto&& r) mutable -> kj::Promise<GuestStatus> {
        if (r.getErrno() != rpc::Errno::OK) {
          return GuestStatus{r.getErrno(), kj::str("allocNested: ", r.getMessage())};
        }
        rpc::Domain::Client domain = r.getDomain();
        nested = domain;
        auto attach = ownership.attachRequest();
        attach.setDomain(kj::mv(domain));
        return attach.send().then([](auto&& a) {
          if (a.getErrno() != rpc::Errno::OK) {
            return GuestStatus{a.getErrno(), kj::str("attach: ", a.getMessage())};
          }
          return GuestStatus{};
        });
      });
}

kj::Promise<GuestOutcome> GuestDriver::invalidate(
    kj::ArrayPtr<const pt::Invalidation> invalidations) {
  kj::Vector<uint64_t> words;
  size_t commands = 0;
  for (auto& inv : invalidations) {
    uint64_t step = kj::max(inv.granule, uint64_t(PAGE));
    for (uint64_t a = alignDown(inv.iova, step); a < inv.iova + inv.size; a += step) {
      if (++commands > MAX_VA_COMMANDS) break;
      words.add(op(smmuv3::Opcode::TLBI_NH_VA) | cmd::TLBI_0_ASID.with(0, setup.asid));
      words.add(cmd::TLBI_1_LEAF.with(0, inv.leaf ? 1 : 0) | (a & cmd::TLBI_1_VA.mask()));
    }
  }
  if (commands > MAX_VA_COMMANDS) {
    words.clear();
    words.add(op(smmuv3::Opcode::TLBI_NH_ASID) | cmd::TLBI_0_ASID.with(0, setup.asid));
    words.add(0);
  }
  endBatch(words);
  return guestQueue->invalidate(words.releaseAsArray());
}

void GuestDriver::endBatch(kj::Vector<uint64_t>& words) {
  // A guest ends a batch with CMD_SYNC. On the trapped paths the VMM consumes it: it is what
  // makes the VMM issue IOMMU_HWPT_INVALIDATE, which carries no SYNC and completes before it
  // returns. In a VCMDQ ring the SYNC is the guest's own, executed by the (virtual) queue.
  if (guestQueue->path() != rpc::GuestPath::SW_VCMDQ) return;
  words.add(op(smmuv3::Opcode::SYNC));
  words.add(0);
}

kj::Promise<GuestOutcome> GuestDriver::invalidateContext() {
  kj::Vector<uint64_t> words;
  words.add(op(smmuv3::Opcode::CFGI_CD) | cmd::CFGI_0_SID.set(0, uint32_t(setup.vsid)));
  words.add(cmd::CFGI_1_LEAF.with(0, 1));
  endBatch(words);
  return guestQueue->invalidate(words.releaseAsArray());
}

}  // namespace nb::guest
