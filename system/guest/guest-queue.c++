#include "system/guest/guest-queue.h"

#include "util/smmuv3/commands.h"
#include "util/smmuv3/registers.h"
#include <capnp/message.h>

namespace nb::guest {

namespace {

constexpr uint64_t PAGE = 4096;
constexpr uint32_t ENTRY_BYTES = 16;

// The software VCMDQ's registers (interfaces/smmu-queue.capnp, Viommu.vcmdq).
constexpr uint32_t CONFIG = rpc::VCMDQ_CONFIG, STATUS = rpc::VCMDQ_STATUS, PROD = rpc::VCMDQ_PROD,
                   CONS = rpc::VCMDQ_CONS, GERROR = rpc::VCMDQ_GERROR,
                   GERRORN = rpc::VCMDQ_GERRORN, BASE = rpc::VCMDQ_BASE;

constexpr uint64_t SYNC_DW0 = uint64_t(smmuv3::Opcode::SYNC);

rpc::MmioAccess::Builder access(capnp::List<rpc::MmioAccess>::Builder list, uint i,
                                uint32_t offset, bool write, uint64_t value = 0, uint8_t size = 4) {
  auto a = list[i];
  a.setOffset(offset);
  a.setWrite(write);
  a.setValue(value);
  a.setSize(size);
  return a;
}

}  // namespace

bool inVcmdqSubset(uint64_t dw0) {
  switch (smmuv3::Opcode(smmuv3::cmd::CMD_0_OP.get(dw0))) {
    case smmuv3::Opcode::TLBI_NH_ASID:
    case smmuv3::Opcode::TLBI_NH_VA:
    case smmuv3::Opcode::ATC_INV:
    case smmuv3::Opcode::SYNC:
      return true;
    default:
      return false;
  }
}

GuestQueue::GuestQueue(rpc::Viommu::Client viommu, PhysMem& mem, rpc::GuestPath path)
    : viommu(kj::mv(viommu)), mem(mem), path_(path) {}

kj::Promise<kj::Own<GuestQueue>> GuestQueue::create(rpc::Viommu::Client viommu, PhysMem& mem,
                                                    GpaToPa gpaToPa, VcmdqRing ring) {
  auto request = viommu.infoRequest();
  return request.send().then(
      [viommu, &mem, gpaToPa = kj::mv(gpaToPa), ring](auto&& response) mutable
      -> kj::Promise<kj::Own<GuestQueue>> {
        auto queue = kj::heap<GuestQueue>(kj::mv(viommu), mem, response.getInfo().getGuestPath());
        if (queue->path_ != rpc::GuestPath::SW_VCMDQ) return kj::mv(queue);
        auto& q = *queue;
        auto enabled = q.enableRing(gpaToPa, ring);
        return enabled.then([queue = kj::mv(queue), gpaToPa = kj::mv(gpaToPa)]() mutable {
          return kj::mv(queue);
        });
      });
}

kj::Promise<void> GuestQueue::enableRing(GpaToPa& gpaToPa, VcmdqRing ring) {
  KJ_REQUIRE(ring.log2Entries >= 1 && ring.log2Entries <= smmuv3::Q_PTR::LOG2SIZE_MAX,
             "VCMDQ ring size out of range", ring.log2Entries);
  entries = 1u << ring.log2Entries;
  uint64_t bytes = kj::max(uint64_t(entries) * ENTRY_BYTES, PAGE);
  KJ_REQUIRE(isAligned(ring.gpa, bytes), "a VCMDQ ring must be aligned to its size", ring.gpa);
  auto pages = kj::heapArrayBuilder<kj::Promise<kj::Maybe<uint64_t>>>(bytes / PAGE);
  for (uint64_t i = 0; i < bytes / PAGE; i++) pages.add(gpaToPa(ring.gpa + i * PAGE));
  auto queueRequest = viommu.vcmdqRequest();
  return queueRequest.send()
      .then([this, pages = kj::mv(pages)](auto&& response) mutable {
        KJ_REQUIRE(response.getErrno() == rpc::Errno::OK, "the vIOMMU has no VCMDQ",
                   response.getErrno());
        vcmdq = response.getQueue();
        return kj::joinPromises(pages.finish());
      })
      .then([this, ring](kj::Array<kj::Maybe<uint64_t>> pas) {
        for (auto& pa : pas) {
          ringPages.add(KJ_REQUIRE_NONNULL(pa, "the VCMDQ ring is not in guest memory", ring.gpa));
        }
        auto request = KJ_ASSERT_NONNULL(vcmdq).batchRequest();
        auto list = request.initAccesses(3);
        access(list, 0, BASE, true, ring.gpa | ring.log2Entries, 8);
        access(list, 1, CONFIG, true, 1);
        access(list, 2, STATUS, false);
        return request.send();
      })
      .then([ring](auto&& response) {
        KJ_REQUIRE(response.getValues()[2] == 1,
                   "the VCMDQ did not come up (is its ring mapped in stage 2?)", ring.gpa);
      });
}

kj::Promise<GuestOutcome> GuestQueue::invalidate(kj::Array<const uint64_t> commands) {
  KJ_REQUIRE(commands.size() % 2 == 0, "commands are dw0, dw1 pairs");
  if (path_ != rpc::GuestPath::SW_VCMDQ) return viaMainQueue(commands).attach(kj::mv(commands));
  // One ring, one producer: batches go one after the other.
  auto paf = kj::newPromiseAndFulfiller<GuestOutcome>();
  tail = tail.then([this, commands = kj::mv(commands),
                    fulfiller = kj::mv(paf.fulfiller)]() mutable {
               return runs(kj::mv(commands), 0)
                   .then([fulfiller = kj::mv(fulfiller)](GuestOutcome&& outcome) mutable {
                     fulfiller->fulfill(kj::mv(outcome));
                   },
                         [](kj::Exception&& e) { kj::throwFatalException(kj::mv(e)); });
             })
             .eagerlyEvaluate(nullptr);
  return kj::mv(paf.promise);
}

kj::Promise<GuestOutcome> GuestQueue::runs(kj::Array<const uint64_t> commands, size_t from) {
  // Consecutive commands of the VCMDQ subset go through the ring, the others through the
  // trapped main queue, in order.
  size_t n = commands.size() / 2;
  if (from >= n) return GuestOutcome{rpc::Errno::OK, uint32_t(n), nullptr};
  bool ring = inVcmdqSubset(commands[2 * from]);
  size_t end = from;
  while (end < n && inVcmdqSubset(commands[2 * end]) == ring) end++;
  auto slice = commands.slice(2 * from, 2 * end);
  auto sent = ring ? viaRing(slice) : viaMainQueue(slice);
  return sent.then([this, commands = kj::mv(commands), from, end](GuestOutcome&& outcome) mutable
                   -> kj::Promise<GuestOutcome> {
    if (outcome.errno_ != rpc::Errno::OK) {
      outcome.entryNum += from;
      return kj::mv(outcome);
    }
    return runs(kj::mv(commands), end);
  });
}

kj::Promise<GuestOutcome> GuestQueue::viaMainQueue(kj::ArrayPtr<const uint64_t> commands) {
  // Trap and emulate: the guest writes its commands into its ring and PROD, which exits to the
  // VMM; the VMM reads and rewrites each command and hands the batch to the kernel in one
  // ioctl (copied in); the guest's poll of CONS exits again and sees the batch done.
  const size_t n = commands.size() / 2;
  clock->charge(Cost::CMD_STORE, n);
  clock->charge(Cost::GUEST_EXIT_VMM);
  clock->charge(Cost::VMM_CMD, n);
  clock->charge(Cost::SYSCALL);
  clock->chargeCopy(n * 16);
  auto request = viommu.invalidateRequest(
      capnp::MessageSize{commands.size() + 8, 0});
  auto blob = request.initCommands(commands.size() * 8);
  memcpy(blob.begin(), commands.begin(), blob.size());
  return request.send().then([this](auto&& response) {
    clock->charge(Cost::GUEST_EXIT_VMM);  // the poll of CONS
    auto r = response.getResult();
    return GuestOutcome{r.getErrno(), r.getEntryNum(), kj::str(r.getMessage())};
  });
}

kj::Promise<GuestOutcome> GuestQueue::viaRing(kj::ArrayPtr<const uint64_t> commands) {
  // Writes as many entries as the ring holds (the last chunk followed by a SYNC the guest
  // waits on), rings the doorbell, and reads CONS back in the same register batch.
  size_t n = commands.size() / 2;
  size_t room = entries - 1;
  size_t chunk = kj::min(n, room);
  bool last = chunk == n;
  bool sync = last && smmuv3::cmd::CMD_0_OP.get(commands[2 * (n - 1)]) !=
                          uint64_t(smmuv3::Opcode::SYNC);
  if (sync && chunk == room) {
    chunk--;  // keep a slot for the SYNC
    last = false;
    sync = false;
  }
  uint32_t start = prod;
  auto put = [&](uint64_t dw0, uint64_t dw1) {
    uint64_t offset = uint64_t(prod & (entries - 1)) * ENTRY_BYTES;
    uint64_t pa = ringPages[offset / PAGE] + offset % PAGE;
    mem.store64(pa, dw0);
    mem.store64(pa + 8, dw1);
    prod = (prod + 1) & (2 * entries - 1);
  };
  for (size_t i = 0; i < chunk; i++) put(commands[2 * i], commands[2 * i + 1]);
  if (sync) put(SYNC_DW0, 0);
  // The guest's ring stores, then two trapped accesses of the software VCMDQ: the doorbell
  // (PROD) and the poll of CONS. No VMM and no ioctl: the kernel reads the ring itself.
  clock->charge(Cost::CMD_STORE, chunk + (sync ? 1 : 0));
  clock->charge(Cost::VCMDQ_DOORBELL, 2);
  auto request = KJ_ASSERT_NONNULL(vcmdq).batchRequest();
  auto list = request.initAccesses(4);
  access(list, 0, PROD, true, prod);
  access(list, 1, CONS, false);
  access(list, 2, GERROR, false);
  access(list, 3, GERRORN, false);
  return request.send().then([this, commands, chunk, start](auto&& response)
                                 -> kj::Promise<GuestOutcome> {
    auto values = response.getValues();
    uint32_t cons = uint32_t(values[1]);
    uint32_t gerror = uint32_t(values[2]), gerrorn = uint32_t(values[3]);
    uint32_t err = smmuv3::CMDQ_CONS::ERR.get(cons);
    if (((gerror ^ gerrorn) & 1) != 0) {
      // Stopped at CONS: report the entry, then let the queue drain harmlessly — every entry
      // from the bad one on becomes a SYNC — and acknowledge, as a guest driver would.
      uint32_t index = cons & (2 * entries - 1);
      uint32_t done = (index - start) & (2 * entries - 1);
      for (uint32_t p = index; p != prod; p = (p + 1) & (2 * entries - 1)) {
        uint64_t offset = uint64_t(p & (entries - 1)) * ENTRY_BYTES;
        uint64_t pa = ringPages[offset / PAGE] + offset % PAGE;
        mem.store64(pa, SYNC_DW0);
        mem.store64(pa + 8, 0);
      }
      auto ack = KJ_ASSERT_NONNULL(vcmdq).writeRequest();
      ack.setOffset(GERRORN);
      ack.setValue(gerror);
      uint64_t bad0 = commands[2 * done], bad1 = commands[2 * done + 1];
      return ack.send().then([done, err, bad0, bad1](auto&&) {
        return GuestOutcome{rpc::Errno::E_IO, done,
                            kj::str("the VCMDQ stopped at entry ", done, " (CONS.ERR ", err,
                                    ") on command dw0 0x", kj::hex(bad0), ", dw1 0x",
                                    kj::hex(bad1))};
      });
    }
    if ((cons & (2 * entries - 1)) != prod) {
      return GuestOutcome{rpc::Errno::E_TIMED_OUT, uint32_t((cons - start) & (2 * entries - 1)),
                          kj::str("the VCMDQ did not consume its ring (CONS 0x", kj::hex(cons),
                                  ", PROD 0x", kj::hex(prod), ")")};
    }
    if (chunk * 2 == commands.size()) {
      return GuestOutcome{rpc::Errno::OK, uint32_t(chunk), nullptr};
    }
    return viaRing(commands.slice(chunk * 2, commands.size()))
        .then([chunk](GuestOutcome&& rest) {
          rest.entryNum += chunk;
          return kj::mv(rest);
        });
  });
}

}  // namespace nb::guest
