// group_manager + domain_allocator benchmark: the control plane's costs through the composed
// stack (hw/smmuv3, hw/pci and hw/endpoint inline; page_table, smmu_queue, the domain allocator
// and the group manager all inline, then all process-placed). Prints one `name: value unit`
// line per figure, each the median of 5 runs:
//   attach_detach_per_s_{inline,process}   Ownership.attach of a stage-1 domain + detach, pairs/s
//                                          (each: CD and STE written by the hitless sequence,
//                                          CFGI + SYNC per step, through smmu_queue)
//   map_unmap_4k_with_invalidation_us_{inline,process}   Domain.map of one 4K page + unmap,
//                                          whose TLBI + SYNC completes before it returns
//   domain_alloc_per_s_{inline,process}    DomainAllocator.allocPaging (stage 1: ASID, page
//                                          table) and its release (TLBI by ASID, table freed)

#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/group-manager.capnp.h"
#include "system/composer/composer.h"
#include "system/registry.h"

#include <kj/async-unix.h>
#include <stdlib.h>
#include <algorithm>
#include <chrono>
#include <stdio.h>
#include <vector>

namespace nb::groups::bench {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Plan benchPlan(const Registry& registry, kj::StringPtr placement) {
  auto result = parseManifest(
      kj::str("[memory]\nbase = 0x80000000\nsize = \"256MiB\"\n"
              "[[hw.smmuv3]]\nname = \"smmu0\"\n"
              "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\ndevices = [\n"
              "  { bdf = \"00:01.0\", kind = \"root_port\", secondary = 1, acs = [\"sv\", \"rr\", "
              "\"cr\", \"uf\"] },\n"
              "  { bdf = \"01:00.0\", parent = \"00:01.0\" },\n]\n"
              "[components.page_table]\nimpl = \"page_table/arm_lpae\"\nplacement = \"",
              placement,
              "\"\n"
              "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\nplacement = \"",
              placement,
              "\"\n"
              "uses = { smmu = \"smmu0\" }\n"
              "[components.domains]\nimpl = \"domain_allocator/device_centric\"\nplacement = \"",
              placement,
              "\"\n"
              "uses = { queues = [\"queue\"], pci = [\"pci0\"], page_table = \"page_table\" }\n"
              "[components.groups]\nimpl = \"group_manager/linux\"\nplacement = \"",
              placement,
              "\"\n"
              "uses = { pci = [\"pci0\"], domains = \"domains\" }\n"),
      "bench.toml", registry);
  KJ_REQUIRE(result.is<Plan>(), "benchmark manifest does not validate");
  return kj::mv(result.get<Plan>());
}

struct System {
  System(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr placement,
         kj::StringPtr host)
      : io(io),
        composer(io, registry, benchPlan(registry, placement),
                 ComposerOptions{kj::heapString(host),
                                 [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }}) {
    composer.start().wait(io.waitScope);
    groups = main<rpc::GroupManager>("groups");
    domains = main<rpc::DomainAllocator>("domains");
    auto claim = groups.claimDeviceRequest();
    claim.setDevice("01:00.0");
    claim.setOwner(1);
    auto r = claim.send().wait(io.waitScope);
    KJ_REQUIRE(r.getErrno() == rpc::Errno::OK, "claim failed");
    owner = r.getOwnership();
    domain = alloc();
    buffer = KJ_ASSERT_NONNULL(composer.frames().allocFrames(4096, 4096));
  }
  ~System() noexcept(false) {
    owner = nullptr;
    domain = nullptr;
    composer.shutdown().wait(io.waitScope);
  }

  template <typename T>
  typename T::Client main(kj::StringPtr name) {
    auto req = composer.root().getRequest();
    req.setName(name);
    return req.send().getMain().castAs<T>();
  }

  rpc::Domain::Client alloc() {
    auto req = domains.allocPagingRequest();
    req.initTarget().setDevice("01:00.0");
    auto r = req.send().wait(io.waitScope);
    KJ_REQUIRE(r.getErrno() == rpc::Errno::OK, "allocation failed", r.getMessage());
    return r.getDomain();
  }

  template <typename F>
  double perSecond(unsigned n, F&& body) {
    for (unsigned i = 0; i < n / 8 + 1; i++) body();  // warm
    std::vector<double> rates;
    for (int r = 0; r < 5; r++) {
      auto t = Clock::now();
      for (unsigned i = 0; i < n; i++) body();
      rates.push_back(n / std::chrono::duration<double>(Clock::now() - t).count());
    }
    return median(rates);
  }

  double attachDetachPerS(unsigned n) {
    return perSecond(n, [this]() {
      auto a = owner.attachRequest();
      a.setDomain(domain);
      KJ_REQUIRE(a.send().wait(io.waitScope).getErrno() == rpc::Errno::OK);
      KJ_REQUIRE(owner.detachRequest().send().wait(io.waitScope).getErrno() == rpc::Errno::OK);
    });
  }

  double mapUnmapUs(unsigned n) {
    double rate = perSecond(n, [this]() {
      auto m = domain.mapRequest(capnp::MessageSize{16, 0});
      auto run = m.initRuns(1)[0];
      run.setIova(0x10000000);
      run.setPa(buffer);
      run.setSize(4096);
      run.getProt().setRead(true);
      run.getProt().setWrite(true);
      KJ_REQUIRE(m.send().wait(io.waitScope).getErrno() == rpc::Errno::OK);
      auto u = domain.unmapRequest(capnp::MessageSize{16, 0});
      auto range = u.initRanges(1)[0];
      range.setIova(0x10000000);
      range.setSize(4096);
      auto r = u.send().wait(io.waitScope);
      KJ_REQUIRE(r.getBytesUnmapped() == 4096 && r.getCommands() >= 1);
    });
    return 1e6 / rate;
  }

  double allocPerS(unsigned n) {
    return perSecond(n, [this]() { alloc(); });
  }

  kj::AsyncIoContext& io;
  Composer composer;
  rpc::GroupManager::Client groups = nullptr;
  rpc::DomainAllocator::Client domains = nullptr;
  rpc::Ownership::Client owner = nullptr;
  rpc::Domain::Client domain = nullptr;
  uint64_t buffer = 0;
};

void run(const Registry& registry, kj::StringPtr host) {
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  for (kj::StringPtr placement : {"inline"_kj, "process"_kj}) {
    System sys(io, registry, placement, host);
    bool inl = placement == "inline";
    printf("attach_detach_per_s_%s: %.0f pairs/s\n", placement.cStr(),
           sys.attachDetachPerS(inl ? 2000 : 200));
    printf("map_unmap_4k_with_invalidation_us_%s: %.1f us\n", placement.cStr(),
           sys.mapUnmapUs(inl ? 4000 : 400));
    printf("domain_alloc_per_s_%s: %.0f domains/s\n", placement.cStr(),
           sys.allocPerS(inl ? 4000 : 400));
    fflush(stdout);
  }
}

}  // namespace
}  // namespace nb::groups::bench

int main(int argc, char* argv[]) {
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  const char* dir = getenv("RUNFILES_DIR");
  auto host = dir != nullptr ? kj::str(dir, "/nestbed/system/nestbed-host")
                             : kj::str("system/nestbed-host");
  nb::groups::bench::run(registry, host);
  return 0;
}
