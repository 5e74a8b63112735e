// tests/components/smmu_queue: composing an SMMU (and the smmu_queue component) for the host
// side's tests, a HostQueue over a composed SMMU, and `SpySmmu`: an Smmuv3 capability that
// forwards to the real one while recording every command the SMMU is given (read from the ring
// at each CMDQ_PROD write) — and, in slow mode, lets CMDQ_PROD reach the SMMU a few entries at
// a time, as an SMMU that consumes asynchronously would.
//
// Commands are encoded with smmu-testing.h's literal-position helpers (facts 1.3), never with
// the production builders.
#pragma once

#include "components/smmu_queue/smmuv3/host-queue.h"
#include "interfaces/smmu-queue.capnp.h"
#include "tests/hw/hw-testing.h"

#include <capnp/message.h>
#include <initializer_list>

namespace nb::smmuq::testing {

using namespace nb::hw::testing;
using namespace nb::smmu::testing;

constexpr uint32_t CR0_ALL = CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN;

inline kj::String smmuManifest(kj::StringPtr smmuSettings = "",
                               kj::StringPtr smmuPlacement = "inline") {
  // 8 StreamID bits unless the settings say otherwise: small linear stream tables.
  bool sidBits = strstr(smmuSettings.cStr(), "sid_bits") != nullptr;
  return kj::str("[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n",
                 "[[hw.smmuv3]]\nname = \"smmu0\"\n", "placement = \"", smmuPlacement, "\"\n", sidBits ? "" : "sid_bits = 8\n",
                 smmuSettings, "\n");
}

inline kj::String queueManifest(kj::StringPtr queueSettings = "",
                                kj::StringPtr placement = "inline",
                                kj::StringPtr smmuSettings = "") {
  return kj::str(smmuManifest(smmuSettings), "[components.queue]\nimpl = \"smmu_queue/smmuv3\"\n",
                 "placement = \"", placement, "\"\nuses = { smmu = \"smmu0\" }\n", queueSettings,
                 "\n");
}

inline uint64_t counter(TestSystem& sys, kj::StringPtr instance, kj::StringPtr name) {
  for (auto& s : sys.stats()) {
    if (s.name != instance) continue;
    for (auto& c : s.counters) {
      if (c.name == name) return c.value;
    }
  }
  KJ_FAIL_REQUIRE("no such counter", instance, name);
}

inline Command command(const Cmd& c) { return Command{c.dw0, c.dw1}; }

inline kj::Array<Command> commands(std::initializer_list<Cmd> cmds) {
  auto out = kj::heapArrayBuilder<Command>(cmds.size());
  for (auto& c : cmds) out.add(command(c));
  return out.finish();
}

inline kj::Array<kj::byte> blob(kj::ArrayPtr<const Command> cmds) {
  auto out = kj::heapArray<kj::byte>(cmds.size() * 16);
  memcpy(out.begin(), cmds.begin(), out.size());
  return out;
}

// A TLBI_NH_ASID whose ASID and VMID tag it: (submitter, index) read back from the spy.
inline Command tagged(uint16_t submitter, uint16_t index) {
  return command(cmdTlbi(0x11, submitter, index));
}

// ---- SpySmmu -----------------------------------------------------------------------------------

class SpySmmu final : public rpc::Smmuv3::Server {
public:
  SpySmmu(rpc::Smmuv3::Client real, PhysMem& mem) : real(kj::mv(real)), mem(mem) {}

  kj::Vector<Command> given;      // every entry published by a CMDQ_PROD write, in order
  unsigned slowStep = 0;          // nonzero: PROD reaches the SMMU this many entries per access
  uint64_t prodWrites = 0;
  bool hold = false;              // batches wait (in order) until release()
  size_t held() const { return gates.size(); }
  void release() {
    hold = false;
    for (auto& g : gates) g->fulfill();
    gates.clear();
  }

protected:
  kj::Promise<void> read(ReadContext context) override {
    auto p = context.getParams();
    kj::Vector<Access> one;
    one.add(access(p.getOffset(), false, 0, p.getSize()));
    return forward(kj::mv(one))
        .then([context](kj::Array<uint64_t> v) mutable { context.getResults().setValue(v[0]); });
  }
  kj::Promise<void> write(WriteContext context) override {
    auto p = context.getParams();
    kj::Vector<Access> one;
    one.add(access(p.getOffset(), true, p.getValue(), p.getSize()));
    return forward(kj::mv(one)).ignoreResult();
  }
  kj::Promise<void> batch(BatchContext context) override {
    kj::Vector<Access> accesses;
    for (auto a : context.getParams().getAccesses()) {
      accesses.add(access(a.getOffset(), a.getWrite(), a.getValue(), a.getSize()));
    }
    kj::Promise<void> gate = kj::READY_NOW;
    if (hold) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      gates.add(kj::mv(paf.fulfiller));
      gate = kj::mv(paf.promise);
    }
    return gate.then([this, accesses = kj::mv(accesses)]() mutable {
      return forward(kj::mv(accesses));
    }).then([context](kj::Array<uint64_t> v) mutable {
      auto out = context.getResults().initValues(v.size());
      for (auto i : kj::indices(v)) out.set(i, v[i]);
    });
  }
  kj::Promise<void> mmio(MmioContext context) override {
    context.getResults().setMmio(thisCap());
    return kj::READY_NOW;
  }
  kj::Promise<void> info(InfoContext context) override {
    return real.infoRequest().send().then(
        [context](auto&& r) mutable { context.getResults().setInfo(r.getInfo()); });
  }
  kj::Promise<void> subscribe(SubscribeContext context) override {
    auto req = real.subscribeRequest();
    req.setSink(context.getParams().getSink());
    return req.send().then([context](auto&& r) mutable {
      context.getResults().setSubscription(r.getSubscription());
    });
  }

private:
  struct Access {
    uint32_t offset;
    bool write;
    uint64_t value;
    uint8_t size;
  };
  static Access access(uint32_t offset, bool write, uint64_t value, uint8_t size) {
    return Access{offset, write, value, size};
  }

  kj::Promise<kj::Array<uint64_t>> forward(kj::Vector<Access> accesses) {
    // Rewrites the batch: a CMDQ_PROD write is recorded (the entries it publishes) and, in slow
    // mode, held back; every access then nudges the SMMU's PROD `slowStep` entries closer.
    kj::Vector<Access> out;
    kj::Vector<size_t> resultIndex;  // out position of each original access's value
    for (auto& a : accesses) {
      if (a.write && a.offset == off::CMDQ_BASE) {
        cmdqBase = a.value & mask(51, 5);
        log2 = unsigned(a.value & 0x1f);
      }
      if (a.write && a.offset == off::CMDQ_PROD) {
        prodWrites++;
        record(uint32_t(a.value));
        target = uint32_t(a.value);
        if (slowStep != 0) {
          resultIndex.add(SIZE_MAX);
          continue;
        }
        forwarded = target;
      }
      if (slowStep != 0 && forwarded != target) {
        uint32_t wrap = (2u << log2) - 1;
        uint32_t behind = (target - forwarded) & wrap;
        forwarded = (forwarded + kj::min(behind, slowStep)) & wrap;
        out.add(access(off::CMDQ_PROD, true, forwarded, 4));
      }
      resultIndex.add(out.size());
      out.add(a);
    }
    auto req = real.batchRequest();
    auto list = req.initAccesses(out.size());
    for (auto i : kj::indices(out)) {
      list[i].setOffset(out[i].offset);
      list[i].setWrite(out[i].write);
      list[i].setValue(out[i].value);
      list[i].setSize(out[i].size);
    }
    return req.send().then([resultIndex = kj::mv(resultIndex)](auto&& r) {
      auto values = r.getValues();
      return KJ_MAP(i, resultIndex) { return i == SIZE_MAX ? uint64_t(0) : uint64_t(values[i]); };
    });
  }

  void record(uint32_t prod) {
    uint32_t entries = 1u << log2, wrap = 2 * entries - 1;
    for (uint32_t p = published; p != (prod & wrap); p = (p + 1) & wrap) {
      uint64_t slot = cmdqBase + uint64_t(p & (entries - 1)) * 16;
      given.add(Command{mem.load64(slot), mem.load64(slot + 8)});
    }
    published = prod & wrap;
  }

  rpc::Smmuv3::Client real;
  PhysMem& mem;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> gates;
  uint64_t cmdqBase = 0;
  unsigned log2 = 0;
  uint32_t published = 0, target = 0, forwarded = 0;
};

// ---- a HostQueue over a composed SMMU -----------------------------------------------------------

struct HostRig {
  HostRig(kj::StringPtr smmuSettings, kj::StringPtr smmuPlacement, HostOptions options,
          bool spy = false)
      : sys(smmuManifest(smmuSettings, smmuPlacement)),
        ws(sys.io.waitScope),
        smmu(sys.main<rpc::Smmuv3>("smmu0")),
        arena(sys.composer),
        mmio(smmu, ws, arena) {
    rpc::Smmuv3::Client driven = smmu;
    if (spy) {
      auto s = kj::heap<SpySmmu>(smmu, sys.composer.memory());
      spySmmu = s.get();
      driven = kj::mv(s);
    }
    auto frames = sys.root.memoryRequest().send().wait(ws).getFrames();
    host = HostQueue::create(sys.composer.memory(), frames, driven, sys.io.provider->getTimer(),
                             options)
               .wait(ws);
  }

  SubmitOutcome submit(kj::Array<Command> cmds) { return host->submit(kj::mv(cmds)).wait(ws); }
  uint64_t smmuStat(kj::StringPtr name) { return counter(sys, "smmu0", name); }

  TestSystem sys;
  kj::WaitScope& ws;
  rpc::Smmuv3::Client smmu;
  Arena arena;
  RpcSmmu mmio;          // the SMMU's registers, for the test's own observations
  SpySmmu* spySmmu = nullptr;
  kj::Own<HostQueue> host;
};

// ---- events -------------------------------------------------------------------------------------

class CollectingSink final : public rpc::EventSink::Server {
public:
  explicit CollectingSink(kj::Vector<smmu::EventRecord>& seen) : seen(seen) {}

protected:
  kj::Promise<void> deliver(DeliverContext context) override {
    for (auto f : context.getParams().getEvents()) seen.add(recordOf(f));
    return kj::READY_NOW;
  }

private:
  kj::Vector<smmu::EventRecord>& seen;
};

class CollectingVmaster final : public VmasterSink {
public:
  kj::Vector<EventRecord> seen;
  void stage1Event(const EventRecord& record) override { seen.add(record); }
};

inline uint8_t eventId(const smmu::EventRecord& r) { return uint8_t(r.dw[0] & 0xff); }
inline uint32_t eventSid(const smmu::EventRecord& r) { return uint32_t(r.dw[0] >> 32); }

// Faults `count` transactions of `sid` at once (all requests sent before any reply is read).
inline void fault(rpc::Smmuv3::Client& smmu, kj::WaitScope& ws, uint32_t sid, unsigned count = 1,
                  uint64_t iova = 0x1000) {
  auto replies = kj::heapArrayBuilder<kj::Promise<void>>(count);
  for (unsigned i = 0; i < count; i++) {
    auto req = smmu.translateRequest();
    req.setSid(sid);
    req.setIova(iova + i * 0x1000ull);
    replies.add(req.send().then([](auto&& r) { KJ_REQUIRE(r.isFault(), "expected a fault"); }));
  }
  kj::joinPromises(replies.finish()).wait(ws);
}

}  // namespace nb::smmuq::testing
