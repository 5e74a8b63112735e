// smmu_queue benchmark, guest side: one guest's invalidations through each guest path —
// `native` (raw commands, one RPC per batch), `generic` (decoded into hardware-neutral
// descriptors and re-encoded on the host side), `sw_vcmdq` (a ring in guest memory and a
// doorbell) — with smmu_queue inline and in its own process, for guest batches of 1, 8, 64 and
// 512 TLBI_NH_VA commands. The guest is system/guest's GuestQueue, waiting for each batch to
// complete (its SYNC) before issuing the next, as a guest CPU does. Figures:
//   guest_invalidations_per_s_<path>_<placement>_b<N>       invalidations/s
//   guest_invalidation_latency_us_<path>_<placement>        one invalidation, issue -> SYNC done
//   guest_<path>_over_native_<placement>_b<N>               ratio to native (same placement)
// No path is tuned to win: the lab reports what it measures.

#include "tests/bench/smmu-queue-bench.h"

#include "interfaces/domain.capnp.h"
#include "system/guest/guest-queue.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdio.h>
#include <string>
#include <vector>

namespace nb::smmuq::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t IPA_DELTA = 0x40'0000'0000;  // guest-physical = physical + IPA_DELTA
constexpr uint16_t VMID = 1;
constexpr uint32_t SID = 0x10;
constexpr uint64_t VSID = 0x1;
constexpr unsigned BATCH_SIZES[] = {1, 8, 64, 512};
const char* const PATHS[] = {"native", "generic", "sw_vcmdq"};

// The nest-parent stage 2 the vIOMMU sits on: a linear guest-physical map of all of memory
// (smmu_queue only reads its info and translates the VCMDQ ring through it).
class LinearStage2 final : public rpc::Domain::Server {
public:
  kj::Promise<void> info(InfoContext context) override {
    auto info = context.getResults().initInfo();
    info.setId(1);
    info.setKind(rpc::DomainKind::STAGE2);
    info.setSmmu("smmu0");
    info.setNestParent(true);
    info.setVmid(VMID);
    return kj::READY_NOW;
  }
  kj::Promise<void> iovaToPhys(IovaToPhysContext context) override {
    context.getResults().setPa(context.getParams().getIova() - IPA_DELTA);
    return kj::READY_NOW;
  }
};

Plan guestPlan(const Registry& registry, kj::StringPtr placement, kj::StringPtr path) {
  auto result = parseManifest(
      kj::str("[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n"
              "[[hw.smmuv3]]\nname = \"smmu0\"\nplacement = \"inline\"\nsid_bits = 8\n"
              "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\nplacement = \"", placement,
              "\"\nuses = { smmu = \"smmu0\" }\ncmdq_log2size = 12\nguest_path = \"", path,
              "\"\n"),
      "bench.toml", registry);
  KJ_REQUIRE(result.is<Plan>(), "benchmark manifest does not validate");
  return kj::mv(result.get<Plan>());
}

struct GuestSystem {
  GuestSystem(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr placement,
              kj::StringPtr path, kj::StringPtr host)
      : io(io),
        composer(io, registry, guestPlan(registry, placement, path),
                 ComposerOptions{kj::heapString(host),
                                 [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }}) {
    composer.start().wait(io.waitScope);
    auto req = composer.root().getRequest();
    req.setName("queue");
    auto queue = req.send().getMain().castAs<rpc::SmmuQueue>();
    auto alloc = queue.allocViommuRequest();
    alloc.setS2Domain(kj::heap<LinearStage2>());
    auto allocated = alloc.send().wait(io.waitScope);
    KJ_REQUIRE(allocated.getErrno() == rpc::Errno::OK, allocated.getMessage());
    viommu = allocated.getViommu();
    auto add = viommu.addVdeviceRequest();
    add.setVsid(VSID);
    add.setSid(SID);
    KJ_REQUIRE(add.send().wait(io.waitScope).getErrno() == rpc::Errno::OK);
    // A 1024-entry VCMDQ ring (16 KiB) in "guest memory" (used by sw_vcmdq only).
    uint64_t ring = KJ_REQUIRE_NONNULL(composer.frames().allocFrames(16384, 16384));
    guest = guest::GuestQueue::create(
                viommu, composer.memory(),
                [](uint64_t gpa) -> kj::Promise<kj::Maybe<uint64_t>> {
                  return kj::Maybe<uint64_t>(gpa - IPA_DELTA);
                },
                guest::VcmdqRing{ring + IPA_DELTA, 10})
                .wait(io.waitScope);
  }
  ~GuestSystem() noexcept(false) {
    guest = nullptr;
    viommu = nullptr;
    composer.shutdown().wait(io.waitScope);
  }

  // `n` TLBI_NH_VA commands of ASID 1, one 4K page each (facts 1.3 layout).
  static kj::Array<const uint64_t> batch(unsigned n) {
    auto words = kj::heapArrayBuilder<const uint64_t>(2 * n);
    for (unsigned i = 0; i < n; i++) {
      words.add(0x12 | (uint64_t(1) << 48));
      words.add((0x10000000 + i * 4096ull) | 1);
    }
    return words.finish();
  }

  double seconds(unsigned n, unsigned batches) {
    auto t = Clock::now();
    for (unsigned b = 0; b < batches; b++) {
      auto outcome = guest->invalidate(batch(n)).wait(io.waitScope);
      KJ_REQUIRE(outcome.errno_ == rpc::Errno::OK && outcome.entryNum == n, outcome.message);
    }
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  double invalidationsPerSecond(unsigned n, unsigned total) {
    unsigned batches = std::max(4u, total / n);
    seconds(n, std::max(1u, batches / 8));  // warm
    std::vector<double> rates;
    for (int r = 0; r < 3; r++) rates.push_back(double(n) * batches / seconds(n, batches));
    std::sort(rates.begin(), rates.end());
    return rates[1];
  }

  double latencyMicros(unsigned samples) {
    std::vector<double> us;
    for (unsigned i = 0; i < samples; i++) us.push_back(seconds(1, 1) * 1e6);
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  }

  kj::AsyncIoContext& io;
  Composer composer;
  rpc::Viommu::Client viommu = nullptr;
  kj::Own<guest::GuestQueue> guest;
};

}  // namespace

void runGuestBench(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr host) {
  for (kj::StringPtr placement : {"inline"_kj, "process"_kj}) {
    const unsigned total = placement == "inline" ? 40000 : 8000;
    std::map<std::string, double> rate;
    for (auto path : PATHS) {
      GuestSystem sys(io, registry, placement, path, host);
      for (unsigned n : BATCH_SIZES) {
        double r = sys.invalidationsPerSecond(n, total);
        rate[kj::str(path, n).cStr()] = r;
        printf("guest_invalidations_per_s_%s_%s_b%u: %.0f invalidations/s\n", path,
               placement.cStr(), n, r);
      }
      printf("guest_invalidation_latency_us_%s_%s: %.2f us\n", path, placement.cStr(),
             sys.latencyMicros(placement == "inline" ? 2000 : 500));
      fflush(stdout);
    }
    for (auto path : {"generic", "sw_vcmdq"}) {
      for (unsigned n : BATCH_SIZES) {
        printf("guest_%s_over_native_%s_b%u: %.2f ratio\n", path, placement.cStr(), n,
               rate[kj::str(path, n).cStr()] / rate[kj::str("native", n).cStr()]);
      }
    }
  }
}

}  // namespace nb::smmuq::bench
