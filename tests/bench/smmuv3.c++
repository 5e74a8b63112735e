// SMMUv3 benchmark: the model's C++ core (smmuv3-core.c++), then DMA through the composed
// system — an endpoint reading through its SMMU over RPC, with the SMMU model inline and in its
// own process side by side. Prints one `name: value unit` line per figure:
//   dma_4k_read_smmu_inline_us     one 4 KiB DMA read (1 page translated, IOTLB hit), SMMU inline
//   dma_4k_read_smmu_process_us    the same with the SMMU process-placed
//   dma_4k_read_smmu_process_over_inline
//   dma_64k_read_smmu_*_us         a 64 KiB read: 16 pages translated in one batched call
// The PCI topology and the endpoint stay inline; both systems run side by side and are measured
// alternately, each figure the median of 7 repetitions with its min-max (wall time).

#include "hw/smmuv3/registers.h"
#include "interfaces/endpoint.capnp.h"
#include "interfaces/smmuv3.capnp.h"
#include "system/composer/composer.h"
#include "system/registry.h"
#include "tests/bench/measure.h"
#include "tests/bench/smmuv3-structures.h"

#include <kj/async-unix.h>
#include <stdlib.h>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdio.h>
#include <vector>

namespace nb::smmu {
void runCoreBench();
}

namespace nb::smmu::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t EP_SID = 0x100;  // 01:00.0, sid_base 0
constexpr unsigned PAGES = 64;

Plan dmaPlan(const Registry& registry, kj::StringPtr smmuPlacement) {
  auto result = parseManifest(
      kj::str("[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n"
              "[[hw.smmuv3]]\nname = \"smmu0\"\nplacement = \"",
              smmuPlacement,
              "\"\n"
              "[[hw.pci]]\nname = \"pci0\"\nuses = { smmu = \"smmu0\" }\n"
              "devices = [{ bdf = \"00:01.0\", kind = \"root_port\", secondary = 1 },\n"
              "           { bdf = \"01:00.0\", parent = \"00:01.0\" }]\n"
              "[[hw.endpoint]]\nname = \"ep0\"\nuses = { pci = \"pci0\" }\nbdf = \"01:00.0\"\n"),
      "bench.toml", registry);
  KJ_REQUIRE(result.is<Plan>(), "benchmark manifest does not validate");
  return kj::mv(result.get<Plan>());
}

// A composed system whose SMMU translates ep0's VA_BASE.. (PAGES pages) through stage 1.
struct System {
  System(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr smmuPlacement,
         kj::StringPtr host)
      : io(io),
        composer(io, registry, dmaPlan(registry, smmuPlacement),
                 ComposerOptions{kj::heapString(host),
                                 [](kj::StringPtr e) { fprintf(stderr, "%s\n", e.cStr()); }}) {
    composer.start().wait(io.waitScope);
    auto smmu = main<rpc::Smmuv3>("smmu0");
    endpoint = main<rpc::Endpoint>("ep0");

    constexpr uint64_t BYTES = 8 << 20;
    uint64_t base = KJ_ASSERT_NONNULL(composer.frames().allocFrames(BYTES, 1 << 20));
    Structures s(composer.memory(), base, BYTES);
    uint64_t strtab = s.alloc(64 << 9, 64 << 9);  // 512 STEs: SID 0x100 fits
    Structures::Tables t(s);
    uint64_t data = s.alloc(PAGES * 4096ull);
    for (unsigned i = 0; i < PAGES; i++) {
      t.map(VA_BASE + i * 4096ull, data + i * 4096ull, Structures::S1_LEAF);
    }
    s.writeSte(strtab, EP_SID, ste::CONFIG_S1_TRANS, s.makeCd(t.root(), 1), 0, 0);

    auto batch = smmu.batchRequest();
    auto a = batch.initAccesses(3);
    a[0].setOffset(STRTAB_BASE::OFFSET);
    a[0].setSize(8);
    a[0].setWrite(true);
    a[0].setValue(strtab);
    a[1].setOffset(STRTAB_BASE_CFG::OFFSET);
    a[1].setWrite(true);
    a[1].setValue(9);
    a[2].setOffset(CR0::OFFSET);
    a[2].setWrite(true);
    a[2].setValue(CR0::SMMUEN.mask());
    batch.send().wait(io.waitScope);
  }
  ~System() noexcept(false) { composer.shutdown().wait(io.waitScope); }

  template <typename T>
  typename T::Client main(kj::StringPtr name) {
    auto req = composer.root().getRequest();
    req.setName(name);
    return req.send().getMain().template castAs<T>();
  }

  void readOnce(uint64_t bytes, unsigned i) {
    auto req = endpoint.dmaRequest(capnp::MessageSize{8, 0});
    req.setIova(VA_BASE + (i * bytes) % (PAGES * 4096ull));
    req.setLength(bytes);
    auto response = req.send().wait(io.waitScope);
    KJ_ASSERT(response.isOk() && response.getData().size() == bytes, "benchmark DMA failed");
  }
  void warm() {
    for (unsigned i = 0; i < 200; i++) readOnce(4096, i);  // IOTLB, config cache, connections
  }
  // One repetition: microseconds per read of `bytes` at successive page-aligned addresses.
  double readUs(uint64_t bytes) {
    constexpr unsigned N = 1000;
    auto t = Clock::now();
    for (unsigned i = 0; i < N; i++) readOnce(bytes, i);
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count() / N;
  }

  kj::AsyncIoContext& io;
  Composer composer;
  rpc::Endpoint::Client endpoint = nullptr;
};

void runDmaBench(const Registry& registry, kj::StringPtr host) {
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  // Both systems up at once, measured alternately: each ratio pairs two measurements taken
  // moments apart.
  System inlineSys(io, registry, "inline", host);
  System processSys(io, registry, "process", host);
  inlineSys.warm();
  processSys.warm();
  std::vector<double> inline4k, inline64k, process4k, process64k, ratio4k;
  for (int r = 0; r < 7; r++) {
    inline4k.push_back(inlineSys.readUs(4096));
    process4k.push_back(processSys.readUs(4096));
    ratio4k.push_back(process4k.back() / inline4k.back());
    inline64k.push_back(inlineSys.readUs(65536));
    process64k.push_back(processSys.readUs(65536));
  }
  auto print = [](const char* name, const char* unit, const std::vector<double>& v) {
    nb::bench::Spread s = nb::bench::spreadOf(v);
    printf("%s: %.2f %s (min-max %.2f-%.2f, median of %zu, wall)\n", name, s.median, unit,
           s.min, s.max, v.size());
  };
  print("dma_4k_read_smmu_inline_us", "us", inline4k);
  print("dma_4k_read_smmu_process_us", "us", process4k);
  print("dma_4k_read_smmu_process_over_inline", "ratio", ratio4k);
  print("dma_64k_read_smmu_inline_us", "us", inline64k);
  print("dma_64k_read_smmu_process_us", "us", process64k);
}

}  // namespace
}  // namespace nb::smmu::bench

int main(int argc, char** argv) {
  // --core: the model's core figures only (no composed system).
  const bool coreOnly = argc > 1 && strcmp(argv[1], "--core") == 0;
  nb::smmu::runCoreBench();
  fflush(stdout);
  if (coreOnly) return 0;
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  const char* dir = getenv("RUNFILES_DIR");
  // `bazel run` starts in the runfiles tree; a direct run finds it through RUNFILES_DIR.
  auto host = dir != nullptr ? kj::str(dir, "/nestbed/system/nestbed-host")
                             : kj::str("system/nestbed-host");
  nb::smmu::bench::runDmaBench(registry, host);
  return 0;
}
