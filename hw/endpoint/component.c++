// hw/endpoint: a DMA engine over RPC translation and shared memory. See component.h.
//
// A DMA is all or nothing, as the interface promises: the whole transfer is translated first —
// one translateBatch call, which stops at the first page that does not translate — and checked
// against physical memory; only then are bytes moved. So a fault (the SMMU's event, returned as
// data) or an abort leaves memory untouched.

#include "hw/endpoint/component.h"

#include "interfaces/endpoint.capnp.h"
#include "interfaces/pci.capnp.h"
#include "interfaces/smmuv3.capnp.h"
#include "system/runtime/sizes.h"
#include "util/bits.h"

#include <toml++/toml.h>
#include <cstring>

namespace nb::endpoint {

namespace {

constexpr uint64_t PAGE_SIZE = 4096;       // the smallest translation granule
constexpr uint32_t SSID_LIMIT = 1u << 20;  // PCIe PASIDs are 20 bits
constexpr uint64_t DEFAULT_MAX_DMA = 16ull << 20;
constexpr uint64_t MAX_MAX_DMA = 64ull << 20;  // a read's bytes travel back in one message

struct Chunk {
  uint64_t iova;
  uint64_t pa;
  uint64_t bytes;
  bool razWi = false;  // terminated as RAZ/WI by the SMMU: reads zero, writes ignored
};

class EndpointServer final : public rpc::Endpoint::Server, public ComponentCore {
public:
  EndpointServer(PhysMem& mem, rpc::PciTopology::Client pci, kj::String bdf, uint32_t streamId,
                 rpc::Smmuv3::Client smmu, uint64_t maxDma, ModeledClock& clock)
      : clock(clock),
        mem(mem),
        pci(kj::mv(pci)),
        bdf(kj::mv(bdf)),
        streamId(streamId),
        smmu(kj::mv(smmu)),
        maxDma(maxDma) {}

  // implements ComponentCore ----------------------------------------------------------------
  void stats(kj::Vector<Stat>& out) override {
    out.add(Stat{kj::str("dma_reads"), counters.reads});
    out.add(Stat{kj::str("dma_writes"), counters.writes});
    out.add(Stat{kj::str("bytes_read"), counters.bytesRead});
    out.add(Stat{kj::str("bytes_written"), counters.bytesWritten});
    out.add(Stat{kj::str("transactions"), counters.transactions});
    out.add(Stat{kj::str("faults"), counters.faults});
    out.add(Stat{kj::str("aborts"), counters.aborts});
    out.add(Stat{kj::str("raz_wi_pages"), counters.razWi});
    out.add(Stat{kj::str("invalid_requests"), counters.invalid});
  }

  // implements Endpoint ---------------------------------------------------------------------
protected:
  kj::Promise<void> dma(DmaContext context) override {
    auto p = context.getParams();
    const bool write = p.getWrite();
    const uint64_t iova = p.getIova();
    auto data = p.getData();
    const uint64_t length = write && p.getLength() == 0 ? data.size() : p.getLength();
    const bool hasSsid = p.isSsid();
    const uint32_t ssid = hasSsid ? p.getSsid() : 0;
    if (length == 0 || length > maxDma || iova + length < iova || (write && data.size() == 0) ||
        (hasSsid && ssid >= SSID_LIMIT)) {
      counters.invalid++;
      context.getResults().setErrno(rpc::Errno::E_INVAL);
      return kj::READY_NOW;
    }

    // One transaction per page touched, each at the first byte the transfer uses in it.
    const uint64_t end = iova + length;  // exclusive; may be 0 when the transfer ends at 2^64
    const uint64_t pages =
        (alignDown(end - 1, PAGE_SIZE) - alignDown(iova, PAGE_SIZE)) / PAGE_SIZE + 1;
    auto request = smmu.translateBatchRequest(capnp::MessageSize{pages * 5 + 8, 0});
    auto transactions = request.initTransactions(uint32_t(pages));
    for (uint64_t i = 0; i < pages; i++) {
      auto t = transactions[uint32_t(i)];
      t.setSid(streamId);
      if (hasSsid) t.setSsid(ssid);
      t.setIova(i == 0 ? iova : alignDown(iova, PAGE_SIZE) + i * PAGE_SIZE);
      t.setWrite(write);
      t.setPriv(p.getPriv());
      t.setExec(p.getExec() && !write);
    }
    return request.send().then([this, context, iova, length, write, pages](auto response) mutable {
      auto results = response.getResults();
      auto out = context.getResults();
      counters.transactions += results.size();
      out.setTransactions(results.size());
      kj::Vector<Chunk> chunks(results.size());
      for (auto i : kj::indices(results)) {
        auto r = results[i];
        uint64_t at = i == 0 ? iova : alignDown(iova, PAGE_SIZE) + i * PAGE_SIZE;
        switch (r.which()) {
          case rpc::TranslateResult::OK: {
            uint64_t stop = kj::min(alignDown(at, PAGE_SIZE) + PAGE_SIZE - iova, length) + iova;
            chunks.add(Chunk{at, r.getOk().getPa(), stop - at});
            break;
          }
          case rpc::TranslateResult::RAZ_WI: {
            counters.razWi++;
            uint64_t stop = kj::min(alignDown(at, PAGE_SIZE) + PAGE_SIZE - iova, length) + iova;
            chunks.add(Chunk{at, 0, stop - at, true});
            break;
          }
          case rpc::TranslateResult::FAULT:
            counters.faults++;
            out.setFault(r.getFault());
            return;
          case rpc::TranslateResult::ABORTED: {
            counters.aborts++;
            auto aborted = out.initAborted();
            aborted.setCause(r.getAborted() == rpc::AbortCause::GBPA ? rpc::DmaAbortCause::GBPA
                                                                     : rpc::DmaAbortCause::STE);
            aborted.setIova(at);
            return;
          }
        }
      }
      KJ_REQUIRE(chunks.size() == pages, "the SMMU answered fewer transactions than presented",
                 chunks.size(), pages);
      // Every byte must land in memory before any moves: a PA outside it is an external abort.
      for (auto& c : chunks) {
        if (!c.razWi && !mem.contains(c.pa, c.bytes)) {
          counters.aborts++;
          auto aborted = out.initAborted();
          aborted.setCause(rpc::DmaAbortCause::EXTERNAL_ABORT);
          aborted.setIova(c.iova);
          aborted.setPa(c.pa);
          return;
        }
      }
      if (write) {
        auto pattern = context.getParams().getData();
        uint64_t offset = 0;
        kj::Vector<kj::byte> buffer;
        for (auto& c : chunks) {
          if (c.razWi) {
            // WI: the write is ignored.
          } else if (pattern.size() >= length) {
            mem.write(c.pa, pattern.slice(offset, offset + c.bytes));
          } else {
            buffer.clear();
            for (uint64_t k = 0; k < c.bytes; k++)
              buffer.add(pattern[(offset + k) % pattern.size()]);
            mem.write(c.pa, buffer.asPtr());
          }
          offset += c.bytes;
        }
        counters.writes++;
        counters.bytesWritten += length;
        clock.chargeCopy(length);  // the device moves the data at memory speed
      } else {
        auto bytes = out.initData(length);
        uint64_t offset = 0;
        for (auto& c : chunks) {
          if (c.razWi) {
            memset(bytes.begin() + offset, 0, c.bytes);  // RAZ
          } else {
            mem.read(c.pa, bytes.slice(offset, offset + c.bytes));
          }
          offset += c.bytes;
        }
        counters.reads++;
        counters.bytesRead += length;
        clock.chargeCopy(length);
      }
      out.setBytes(length);
    });
  }

  kj::Promise<void> info(InfoContext context) override {
    auto request = pci.deviceRequest();
    request.setBdf(bdf);
    return request.send().then(
        [context](auto response) mutable { context.getResults().setDevice(response.getDevice()); });
  }

private:
  ModeledClock& clock;
  PhysMem& mem;
  rpc::PciTopology::Client pci;
  kj::String bdf;
  uint32_t streamId;  // the StreamID its DMA carries (PciDevice.dmaStreamId)
  rpc::Smmuv3::Client smmu;
  uint64_t maxDma;
  struct Counters {
    uint64_t reads = 0, writes = 0, bytesRead = 0, bytesWritten = 0;
    uint64_t transactions = 0, faults = 0, aborts = 0, invalid = 0;
    uint64_t razWi = 0;  // pages the SMMU terminated as RAZ/WI
  } counters;
};

// ======================================================================================
// Settings

// The syntax hw/pci accepts: [ssss:]bb:dd.f in hex (hw/pci checks the device exists at start).
bool isBdf(kj::StringPtr s) {
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  kj::Vector<size_t> widths;
  size_t run = 0;
  kj::Vector<char> separators;
  for (char c : s) {
    if (hex(c)) {
      run++;
    } else if (c == ':' || c == '.') {
      widths.add(run);
      separators.add(c);
      run = 0;
    } else {
      return false;
    }
  }
  widths.add(run);
  size_t n = widths.size();
  if (n < 3 || n > 4 || separators.back() != '.') return false;
  for (size_t i = 0; i + 1 < separators.size(); i++) {
    if (separators[i] != ':') return false;
  }
  const size_t max[] = {4, 2, 2, 1};
  for (size_t i = 0; i < n; i++) {
    size_t limit = max[i + 4 - n];
    if (widths[i] == 0 || widths[i] > limit) return false;
  }
  auto fn = s[s.size() - 1];
  return fn >= '0' && fn <= '7';
}

void checkBdf(const toml::node& value, SettingErrors& errors) {
  auto s = value.value<std::string>();
  if (s && !isBdf(s->c_str())) {
    errors.error(value, "",
                 kj::str("'", s->c_str(),
                         "' is not a BDF: write bus:device.function "
                         "in hex, e.g. \"03:00.0\""));
  }
}

void checkMaxDma(const toml::node& value, SettingErrors& errors) {
  kj::Maybe<uint64_t> bytes;
  if (auto i = value.value<int64_t>()) bytes = uint64_t(*i);
  if (auto s = value.value<std::string>()) bytes = parseSize(s->c_str());
  KJ_IF_MAYBE (b, bytes) {
    if (*b == 0 || *b > MAX_MAX_DMA) {
      errors.error(value, "", kj::str("must be between 1 byte and ", formatSize(MAX_MAX_DMA)));
    }
  }
}

kj::Promise<rpc::Component::Client> startEndpoint(ComponentContext& ctx);

kj::Promise<rpc::Component::Client> makeEndpoint(ComponentContext& ctx) {
  return kj::evalNow([&]() { return startEndpoint(ctx); });
}

kj::Promise<rpc::Component::Client> startEndpoint(ComponentContext& ctx) {
  auto bdf = ctx.settings.string("bdf");
  uint64_t maxDma = ctx.settings.size("max_dma", DEFAULT_MAX_DMA);
  auto pci = ctx.use<rpc::PciTopology>("pci");
  auto request = pci.deviceRequest();
  request.setBdf(bdf);
  kj::StringPtr typeName = ctx.type.name;
  PhysMem& mem = ctx.mem;
  ModeledClock& clock = ctx.clock;
  return request.send().then(
      [typeName, &mem, &clock, pci = kj::mv(pci), bdf = kj::mv(bdf), maxDma](auto response) mutable {
        KJ_REQUIRE(response.getErrno() == rpc::Errno::OK,
                   "the PCI topology has no function with this BDF", bdf);
        auto device = response.getDevice();
        KJ_REQUIRE(device.getKind() == rpc::PciKind::ENDPOINT,
                   "this BDF is a bridge or port in the PCI topology, not an endpoint", bdf);
        auto server = kj::heap<EndpointServer>(mem, kj::mv(pci), kj::mv(bdf),
                                               device.getDmaStreamId(), device.getSmmu(), maxDma,
                                               clock);
        auto& core = *server;
        rpc::Endpoint::Client main = kj::mv(server);
        return makeComponent(typeName, capnp::typeId<rpc::Endpoint>(), kj::mv(main), core);
      });
}

}  // namespace

ComponentType endpointType() {
  return ComponentType{
      "hw/endpoint",
      "a PCI function issuing DMA reads and writes through its SMMU into shared memory",
      capnp::Schema::from<rpc::Endpoint>(),
      kj::heapArray<SettingSpec>({
          SettingSpec{"bdf", SettingType::STRING, true, nullptr,
                      "the function this endpoint is, e.g. \"03:00.0\" (an endpoint in the "
                      "wired topology)",
                      checkBdf},
          SettingSpec{"max_dma", SettingType::SIZE, false, nullptr,
                      "largest transfer (default \"16MiB\", at most \"64MiB\")", checkMaxDma},
      }),
      kj::heapArray<RoleSpec>({RoleSpec{"pci", capnp::Schema::from<rpc::PciTopology>(), true,
                                        "the PCI topology this function sits in"}}),
      makeEndpoint,
      true};
}

}  // namespace nb::endpoint
