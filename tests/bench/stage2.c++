// stage2_shadow benchmark: the two stage-2 shadow designs side by side (kvm_read, pinned_pfn),
// through the composed stack — hw/smmuv3, hw/pci, hw/endpoint and hw/vm inline; page_table,
// smmu_queue, domain_allocator, group_manager and the shadow inline, then all process-placed.
// One `name: value unit` line per figure, each the median of 5 runs:
//   shadow_build_64g_ms_<impl>_<placement>   Stage2Shadow.shadow of a 64 GiB VM in 16 slots of
//                                            4 GiB (1 GiB-aligned backings: 64 1 GiB blocks),
//                                            from the call to the domain mapped and subscribed
//   memslot_update_us_<impl>_<placement>     Vm.deleteMemslot + Vm.addMemslot of a 2 MiB slot
//                                            (fixed backing): both notices each, unmap with
//                                            TLBI_S2_IPA + TLBI_NH_ALL + SYNC, remap
//   nested_dma_4k_ns_<placement>             a 4 KiB DMA read with the guest's IOVA through the
//                                            guest's stage 1 over the shadow stage 2, IOTLB warm
// Memory is a sparse memfd (72 GiB): only touched pages cost.

#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/endpoint.capnp.h"
#include "interfaces/group-manager.capnp.h"
#include "interfaces/smmu-queue.capnp.h"
#include "interfaces/stage2-shadow.capnp.h"
#include "interfaces/vm.capnp.h"
#include "system/composer/composer.h"
#include "system/guest/guest-driver.h"
#include "system/registry.h"

#include <kj/async-unix.h>
#include <stdlib.h>
#include <algorithm>
#include <chrono>
#include <stdio.h>
#include <vector>

namespace nb::s2::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
constexpr uint64_t MEM_BASE = 1 * GiB;
constexpr uint64_t BIG_PA = 4 * GiB;          // the 64 GiB VM's backings from here
constexpr uint64_t UPDATE_GPA = 0x100'0000'0000 - 2 * MiB;  // below 2^40 (ipa_bits 40)
constexpr uint64_t UPDATE_PA = BIG_PA + 64 * GiB;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

kj::String manifest(kj::StringPtr impl, kj::StringPtr placement) {
  kj::Vector<kj::String> slots;
  for (unsigned i = 0; i < 16; i++) {
    slots.add(kj::str("  { slot = ", i, ", gpa = ", i * 4 * GiB, ", size = \"4GiB\", pa = ",
                      BIG_PA + i * 4 * GiB, " },"));
  }
  slots.add(kj::str("  { slot = 16, gpa = ", UPDATE_GPA, ", size = \"2MiB\", pa = ", UPDATE_PA,
                    " },"));
  return kj::str(
      "[memory]\nbase = ", MEM_BASE, "\nsize = \"72GiB\"\n",
      "[[hw.smmuv3]]\nname = \"smmu0\"\niotlb_entries = 4096\n",
      "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\ndevices = [\n"
      "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", \"cr\", "
      "\"uf\"] },\n  { bdf = \"01:00.0\", parent = \"00:01.0\" },\n]\n",
      "[[hw.endpoint]]\nname = \"ep0\"\nuses = { pci = \"pci0\" }\nbdf = \"01:00.0\"\n",
      "[[hw.vm]]\nname = \"vm0\"\nipa_bits = 40\nmemslots = [\n", kj::strArray(slots, "\n"),
      "\n]\n",
      "[components.page_table]\nimpl = \"page_table/arm_lpae\"\nplacement = \"", placement, "\"\n",
      "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\nplacement = \"", placement,
      "\"\nuses = { smmu = \"smmu0\" }\n",
      "[components.domains]\nimpl = \"domain_allocator/device_centric\"\nplacement = \"",
      placement,
      "\"\nuses = { queues = [\"queue\"], pci = [\"pci0\"], page_table = \"page_table\" }\n",
      "[components.groups]\nimpl = \"group_manager/linux\"\nplacement = \"", placement,
      "\"\nuses = { pci = [\"pci0\"], domains = \"domains\" }\n",
      "[components.shadow]\nimpl = \"", impl, "\"\nplacement = \"", placement,
      "\"\nuses = { domains = \"domains\" }\n");
}

struct System {
  System(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr impl,
         kj::StringPtr placement, kj::StringPtr host)
      : io(io),
        ws(io.waitScope),
        composer(io, registry, plan(registry, impl, placement),
                 ComposerOptions{kj::heapString(host), [](kj::StringPtr e) {
                                   fprintf(stderr, "%s\n", e.cStr());
                                 }}) {
    composer.start().wait(ws);
    vm = main<rpc::Vm>("vm0");
    service = main<rpc::Stage2Shadow>("shadow");
  }
  ~System() noexcept(false) {
    driver = nullptr;
    ownership = nullptr;
    viommu = nullptr;
    shadow = nullptr;
    domain = nullptr;
    composer.shutdown().wait(ws);
  }

  static Plan plan(const Registry& registry, kj::StringPtr impl, kj::StringPtr placement) {
    auto result = parseManifest(manifest(impl, placement), "bench.toml", registry);
    KJ_REQUIRE(result.is<Plan>(), "benchmark manifest does not validate");
    return kj::mv(result.get<Plan>());
  }

  template <typename T>
  typename T::Client main(kj::StringPtr name) {
    auto req = composer.root().getRequest();
    req.setName(name);
    return req.send().getMain().castAs<T>();
  }

  void makeShadow() {
    auto req = service.shadowRequest();
    req.setVm(vm);
    req.initTarget().setSmmu("smmu0");
    auto r = req.send().wait(ws);
    KJ_REQUIRE(r.getErrno() == rpc::Errno::OK, r.getMessage());
    shadow = r.getShadow();
    domain = r.getDomain();
  }

  // Each run shadows anew (a fresh domain); the previous shadow is dropped first and its
  // release (an unmap of 64 GiB) finishes outside the timed part.
  double buildMs() {
    std::vector<double> ms;
    for (int r = 0; r < 6; r++) {
      shadow = nullptr;
      domain = nullptr;
      io.provider->getTimer().afterDelay(5 * kj::MILLISECONDS).wait(ws);
      auto t = Clock::now();
      makeShadow();
      double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      if (r > 0) ms.push_back(elapsed);  // the first run warms up
    }
    auto response = shadow.infoRequest().send().wait(ws);
    auto info = response.getInfo();   // points into `response`
    KJ_REQUIRE(info.getMappedBytes() == 64 * GiB + 2 * MiB, info.getMappedBytes());
    return median(ms);
  }

  double updateUs(unsigned n) {
    auto once = [this]() {
      auto d = vm.deleteMemslotRequest();
      d.setSlot(16);
      KJ_REQUIRE(d.send().wait(ws).getErrno() == rpc::Errno::OK);
      auto a = vm.addMemslotRequest();
      a.setSlot(16);
      a.setGpa(UPDATE_GPA);
      a.setSize(2 * MiB);
      a.setPa(UPDATE_PA);
      KJ_REQUIRE(a.send().wait(ws).getErrno() == rpc::Errno::OK);
    };
    for (unsigned i = 0; i < n / 8 + 1; i++) once();
    std::vector<double> us;
    for (int r = 0; r < 5; r++) {
      auto t = Clock::now();
      for (unsigned i = 0; i < n; i++) once();
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count() / n);
    }
    return median(us);
  }

  // The nested flow: a vIOMMU on the shadow, ep0 as vSID 0x42, a guest driver with its tables
  // in slot 0, one 4 KiB page mapped.
  void nest() {
    auto queue = main<rpc::SmmuQueue>("queue");
    auto alloc = queue.allocViommuRequest();
    alloc.setS2Domain(domain);
    auto v = alloc.send().wait(ws);
    KJ_REQUIRE(v.getErrno() == rpc::Errno::OK);
    viommu = v.getViommu();
    auto add = viommu.addVdeviceRequest();
    add.setVsid(0x42);
    add.setSid(0x100);
    KJ_REQUIRE(add.send().wait(ws).getErrno() == rpc::Errno::OK);
    auto claim = main<rpc::GroupManager>("groups").claimDeviceRequest();
    claim.setDevice("01:00.0");
    claim.setOwner(1);
    auto owned = claim.send().wait(ws);
    KJ_REQUIRE(owned.getErrno() == rpc::Errno::OK);
    ownership = owned.getOwnership();
    guest::GuestSetup setup;
    setup.regionGpa = 32 * MiB;
    setup.vsid = 0x42;
    driver = guest::GuestDriver::create(composer.memory(), vm, viommu, setup).wait(ws);
    auto attached =
        driver->attach(main<rpc::DomainAllocator>("domains"), ownership).wait(ws);
    KJ_REQUIRE(attached.errno_ == rpc::Errno::OK, attached.message);
    auto m = driver->map(0x1000'0000, 16 * MiB, 4096,
                         pt::Prot::READ | pt::Prot::WRITE | pt::Prot::CACHE);
    KJ_REQUIRE(m.error == pt::Errno::OK);
  }

  double dmaNs(unsigned n) {
    auto ep = main<rpc::Endpoint>("ep0");
    auto once = [&]() {
      auto req = ep.dmaRequest(capnp::MessageSize{16, 0});
      req.setIova(0x1000'0000);
      req.setLength(4096);
      auto r = req.send().wait(ws);
      KJ_REQUIRE(r.getErrno() == rpc::Errno::OK && r.isOk() && r.getBytes() == 4096);
    };
    for (unsigned i = 0; i < n / 8 + 1; i++) once();  // warms the IOTLB
    std::vector<double> ns;
    for (int r = 0; r < 5; r++) {
      auto t = Clock::now();
      for (unsigned i = 0; i < n; i++) once();
      ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t).count() / n);
    }
    return median(ns);
  }

  kj::AsyncIoContext& io;
  kj::WaitScope& ws;
  Composer composer;
  rpc::Vm::Client vm = nullptr;
  rpc::Stage2Shadow::Client service = nullptr;
  rpc::Shadow::Client shadow = nullptr;
  rpc::Domain::Client domain = nullptr;
  rpc::Viommu::Client viommu = nullptr;
  rpc::Ownership::Client ownership = nullptr;
  kj::Own<guest::GuestDriver> driver;
};

void run(const Registry& registry, kj::StringPtr host) {
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  for (kj::StringPtr placement : {"inline"_kj, "process"_kj}) {
    bool inl = placement == "inline";
    for (kj::StringPtr impl : {"kvm_read"_kj, "pinned_pfn"_kj}) {
      System sys(io, registry, kj::str("stage2_shadow/", impl), placement, host);
      printf("shadow_build_64g_ms_%s_%s: %.2f ms\n", impl.cStr(), placement.cStr(),
             sys.buildMs());
      printf("memslot_update_us_%s_%s: %.1f us\n", impl.cStr(), placement.cStr(),
             sys.updateUs(inl ? 2000 : 200));
      if (impl == "kvm_read") {
        sys.nest();
        printf("nested_dma_4k_ns_%s: %.0f ns\n", placement.cStr(), sys.dmaNs(inl ? 4000 : 400));
      }
      fflush(stdout);
    }
  }
}

}  // namespace
}  // namespace nb::s2::bench

int main(int argc, char* argv[]) {
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  const char* dir = getenv("RUNFILES_DIR");
  auto host = dir != nullptr ? kj::str(dir, "/nestbed/system/nestbed-host")
                             : kj::str("system/nestbed-host");
  nb::s2::bench::run(registry, host);
  return 0;
}
