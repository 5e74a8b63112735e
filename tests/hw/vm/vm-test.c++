// tests/hw/vm: the "hw/vm" VM model over RPC — memslots from the manifest, each change's notices
// (before and after, in order, with their ranges, awaited), refusals with Linux errno values,
// pinning, guest memory by GPA over RPC and directly in shared memory, and the same results
// whether the VM runs inline or in its own process.

#include "interfaces/vm.capnp.h"
#include "tests/hw/hw-testing.h"

#include <capnp/serialize-text.h>

namespace nb::hw::testing {
namespace {

constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t FIXED_PA = 0x8300'0000;     // slot 1's backing
constexpr uint64_t READONLY_PA = 0x8380'0000;  // slot 2's backing
constexpr uint64_t HIGH = 0x4000'0000;         // slot 2's GPA

// Slots 0 and 1 are adjacent ([0, 2M) allocated, [2M, 3M) at FIXED_PA); slot 2 is readonly.
kj::String manifest(kj::StringPtr placement = "inline", kj::StringPtr extra = "") {
  return kj::str(
      "[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n"
      "[[hw.vm]]\nname = \"vm0\"\nplacement = \"",
      placement,
      "\"\n"
      "memslots = [\n"
      "  { slot = 0, gpa = 0, size = \"2MiB\", pa = \"allocate\" },\n"
      "  { slot = 1, gpa = 0x200000, size = \"1MiB\", pa = 0x83000000 },\n"
      "  { slot = 2, gpa = 0x40000000, size = \"1MiB\", pa = 0x83800000, readonly = true },\n"
      "]\n",
      extra);
}

kj::String hex(uint64_t v) { return kj::str("0x", kj::hex(v)); }
kj::String range(uint64_t gpa, uint64_t size) {
  return kj::str("[", hex(gpa), ", ", hex(gpa + size), ")");
}

kj::StringPtr kindName(rpc::MemslotChangeKind kind) {
  switch (kind) {
    case rpc::MemslotChangeKind::ADD: return "add";
    case rpc::MemslotChangeKind::DELETE: return "delete";
    case rpc::MemslotChangeKind::MOVE: return "move";
    case rpc::MemslotChangeKind::FLAGS: return "flags";
  }
  KJ_UNREACHABLE;
}

kj::String describeSlot(rpc::Memslot::Reader s) {
  return kj::str(range(s.getGpa(), s.getSize()), s.getReadonly() ? " ro" : " rw");
}

// A listener that logs every notice as a line. With `vm`, it also asks the VM, from inside the
// notice, whether the first page of the range is mapped — so the log shows what the map was
// when the notice arrived. With a gate, its before-notices wait for the gate to open.
class Recorder final : public rpc::MemslotListener::Server {
public:
  Recorder(kj::Vector<kj::String>& log, kj::StringPtr tag, kj::Maybe<rpc::Vm::Client> vm = nullptr)
      : log(log), tag(tag), vm(kj::mv(vm)) {}

  kj::Maybe<kj::ForkedPromise<void>> gate;
  bool failBefore = false;

protected:
  kj::Promise<void> before(BeforeContext context) override {
    if (failBefore) KJ_FAIL_REQUIRE("this listener cannot take notices");
    auto line = describe("before", context.getParams().getChange());
    return probe(kj::mv(line), context.getParams().getChange().getRange().getGpa())
        .then([this]() -> kj::Promise<void> {
          KJ_IF_MAYBE (g, gate) { return g->addBranch(); }
          return kj::READY_NOW;
        });
  }

  kj::Promise<void> after(AfterContext context) override {
    auto line = describe("after", context.getParams().getChange());
    return probe(kj::mv(line), context.getParams().getChange().getRange().getGpa());
  }

private:
  kj::String describe(kj::StringPtr phase, rpc::MemslotChange::Reader c) {
    auto r = c.getRange();
    return kj::str(tag, phase, " ", kindName(c.getKind()), " slot ", c.getSlot(), " seq ",
                   c.getSeq(), " ", range(r.getGpa(), r.getSize()),
                   c.hasOldSlot() ? kj::str(" old ", describeSlot(c.getOldSlot())) : kj::str(),
                   c.hasNewSlot() ? kj::str(" new ", describeSlot(c.getNewSlot())) : kj::str());
  }

  // Logs the line at once (so lines keep the order notices arrived in); the probe's answer is
  // appended when it comes.
  kj::Promise<void> probe(kj::String line, uint64_t gpa) {
    size_t index = log.size();
    log.add(kj::mv(line));
    KJ_IF_MAYBE (v, vm) {
      auto req = v->translateRequest();
      req.setGpa(gpa);
      return req.send().then([this, index](auto response) {
        log[index] = kj::str(log[index],
                             response.getErrno() == rpc::Errno::OK ? ": mapped" : ": unmapped");
      });
    }
    return kj::READY_NOW;
  }

  kj::Vector<kj::String>& log;
  kj::StringPtr tag;
  kj::Maybe<rpc::Vm::Client> vm;
};

struct Rig {
  explicit Rig(TestSystem& sys) : sys(sys), ws(sys.io.waitScope), vm(sys.main<rpc::Vm>("vm0")) {}

  TestSystem& sys;
  kj::WaitScope& ws;
  rpc::Vm::Client vm;

  capnp::Response<rpc::MemslotResult> add(uint32_t slot, uint64_t gpa, uint64_t size,
                                          kj::Maybe<uint64_t> pa = nullptr, bool ro = false) {
    auto req = vm.addMemslotRequest();
    req.setSlot(slot);
    req.setGpa(gpa);
    req.setSize(size);
    req.setReadonly(ro);
    KJ_IF_MAYBE (p, pa) { req.setPa(*p); }
    return req.send().wait(ws);
  }
  capnp::Response<rpc::MemslotResult> remove(uint32_t slot) {
    auto req = vm.deleteMemslotRequest();
    req.setSlot(slot);
    return req.send().wait(ws);
  }
  capnp::Response<rpc::MemslotResult> move(uint32_t slot, uint64_t gpa) {
    auto req = vm.moveMemslotRequest();
    req.setSlot(slot);
    req.setGpa(gpa);
    return req.send().wait(ws);
  }
  capnp::Response<rpc::MemslotResult> flags(uint32_t slot, bool readonly) {
    auto req = vm.setMemslotFlagsRequest();
    req.setSlot(slot);
    req.setReadonly(readonly);
    return req.send().wait(ws);
  }
  capnp::Response<rpc::Vm::PinResults> pin(uint64_t gpa, uint64_t size) {
    auto req = vm.pinRequest();
    req.setGpa(gpa);
    req.setSize(size);
    return req.send().wait(ws);
  }
  rpc::Errno unpin(uint64_t gpa, uint64_t size) {
    auto req = vm.unpinRequest();
    req.setGpa(gpa);
    req.setSize(size);
    return req.send().wait(ws).getErrno();
  }
  capnp::Response<rpc::Vm::TranslateResults> translate(uint64_t gpa) {
    auto req = vm.translateRequest();
    req.setGpa(gpa);
    return req.send().wait(ws);
  }
  uint64_t pa(uint64_t gpa) {
    auto t = translate(gpa);
    KJ_REQUIRE(t.getErrno() == rpc::Errno::OK, "GPA not mapped", gpa);
    return t.getPa();
  }
  capnp::Response<rpc::Vm::ReadResults> read(uint64_t gpa, uint32_t length) {
    auto req = vm.readRequest();
    req.setGpa(gpa);
    req.setLength(length);
    return req.send().wait(ws);
  }
  rpc::Errno write(uint64_t gpa, kj::StringPtr text) {
    auto req = vm.writeRequest();
    req.setGpa(gpa);
    req.setData(text.asBytes());
    return req.send().wait(ws).getErrno();
  }
  rpc::Errno store64(uint64_t gpa, uint64_t value) {
    auto req = vm.store64Request();
    req.setGpa(gpa);
    req.setValue(value);
    return req.send().wait(ws).getErrno();
  }
  capnp::Response<rpc::Vm::Load64Results> load64(uint64_t gpa) {
    auto req = vm.load64Request();
    req.setGpa(gpa);
    return req.send().wait(ws);
  }
  rpc::Vm::Subscription::Client subscribe(kj::Own<Recorder> recorder) {
    auto req = vm.subscribeRequest();
    req.setListener(kj::mv(recorder));
    return req.send().wait(ws).getSubscription();
  }
  rpc::VmInfo::Reader info() {
    infoResponse = vm.infoRequest().send().wait(ws);
    return KJ_ASSERT_NONNULL(infoResponse).getInfo();
  }
  kj::String slots() {
    auto r = vm.memslotsRequest().send().wait(ws);
    kj::Vector<kj::String> out;
    for (auto s : r.getSlots()) {
      out.add(kj::str(s.getSlot(), " ", describeSlot(s), s.getAllocated() ? " allocated" : " fixed"));
    }
    return kj::strArray(out, "; ");
  }
  uint64_t stat(kj::StringPtr name) {
    for (auto& s : sys.stats()) {
      if (s.name != "vm0") continue;
      for (auto& c : s.counters) {
        if (c.name == name) return c.value;
      }
    }
    KJ_FAIL_REQUIRE("no such counter", name);
  }
  // Runs the event loop until `done` holds (bounded: a hang fails the test).
  void waitUntil(kj::Function<bool()> done) {
    for (int i = 0; i < 5000 && !done(); i++) {
      sys.io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(ws);
    }
    REQUIRE(done());
  }

  kj::Maybe<capnp::Response<rpc::Vm::InfoResults>> infoResponse;
};

std::string text(kj::StringPtr s) { return s.cStr(); }
kj::StringPtr errnoName(rpc::Errno e) {
  return capnp::Schema::from<rpc::Errno>().getEnumerants()[uint16_t(e)].getProto().getName();
}
std::string lines(kj::ArrayPtr<const kj::String> log) { return kj::strArray(log, "\n").cStr(); }

// ======================================================================================

TEST_CASE("hw/vm: the manifest's memslots are the map; backing allocated or reserved", "[vm]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest(placement));
    Rig rig(sys);
    CHECK(text(rig.slots()) ==
          "0 [0x0, 0x200000) rw allocated; 1 [0x200000, 0x300000) rw fixed; "
          "2 [0x40000000, 0x40100000) ro fixed");
    auto info = rig.info();
    CHECK(info.getName() == "vm0");
    CHECK(info.getIpaBits() == 40);
    CHECK(info.getSlots() == 3);
    CHECK(info.getGuestBytes() == 4 * MiB);
    // Slot 0's backing is aligned like its GPA allows (2 MiB: its size); all are held.
    uint64_t pa0 = rig.pa(0);
    CHECK(pa0 % (2 * MiB) == 0);
    CHECK(rig.pa(0x200000) == FIXED_PA);
    CHECK(rig.pa(HIGH + 0x1234) == READONLY_PA + 0x1234);
    auto& frames = sys.composer.frames();
    CHECK(frames.isAllocated(pa0, 2 * MiB));
    CHECK(frames.isAllocated(FIXED_PA, MiB));
    CHECK(frames.isAllocated(READONLY_PA, MiB));
    CHECK(frames.usedBytes() == 4 * MiB);
    auto structures = sys.composer.structures().wait(sys.io.waitScope);
    kj::Vector<kj::String> found;
    for (auto& entry : structures) {
      for (auto& s : kj::get<1>(entry)) {
        found.add(kj::str(kj::get<0>(entry), ": ", s.kind, " ", s.name, " ", hex(s.size), " ",
                          s.detail));
      }
    }
    CHECK(lines(found) ==
          "vm0: guest_memory vm0 slot 0 0x200000 gpa=0x0 allocated\n"
          "vm0: guest_memory vm0 slot 1 0x100000 gpa=0x200000 fixed\n"
          "vm0: guest_memory vm0 slot 2 0x100000 gpa=0x40000000 readonly fixed");
    // Shutdown returns every frame.
    sys.shutdown();
    CHECK(frames.usedBytes() == 0);
  }
}

TEST_CASE("hw/vm: each change notifies every listener before and after, with its ranges", "[vm]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest(placement));
    Rig rig(sys);
    kj::Vector<kj::String> log;
    auto a = rig.subscribe(kj::heap<Recorder>(log, "A ", rig.vm));
    auto b = rig.subscribe(kj::heap<Recorder>(log, "B "));
    CHECK(rig.info().getListeners() == 2);

    auto added = rig.add(5, 0x1000'0000, 2 * MiB);
    CHECK(added.getErrno() == rpc::Errno::OK);
    CHECK(added.getMemslot().getAllocated());
    CHECK(added.getMemslot().getGpa() == 0x1000'0000);
    CHECK(rig.move(5, 0x2000'0000).getErrno() == rpc::Errno::OK);
    CHECK(rig.flags(5, true).getMemslot().getReadonly());
    auto removed = rig.remove(5);
    CHECK(removed.getErrno() == rpc::Errno::OK);
    CHECK(removed.getMemslot().getGpa() == 0x2000'0000);
    // The probe shows the map as the notice found it: before a change, the old one.
    CHECK(lines(log) ==
          "A before add slot 5 seq 1 [0x10000000, 0x10200000) new [0x10000000, 0x10200000) rw: "
          "unmapped\n"
          "B before add slot 5 seq 1 [0x10000000, 0x10200000) new [0x10000000, 0x10200000) rw\n"
          "A after add slot 5 seq 1 [0x10000000, 0x10200000) new [0x10000000, 0x10200000) rw: "
          "mapped\n"
          "B after add slot 5 seq 1 [0x10000000, 0x10200000) new [0x10000000, 0x10200000) rw\n"
          "A before move slot 5 seq 2 [0x10000000, 0x10200000) old [0x10000000, 0x10200000) rw "
          "new [0x20000000, 0x20200000) rw: mapped\n"
          "B before move slot 5 seq 2 [0x10000000, 0x10200000) old [0x10000000, 0x10200000) rw "
          "new [0x20000000, 0x20200000) rw\n"
          "A after move slot 5 seq 2 [0x20000000, 0x20200000) old [0x10000000, 0x10200000) rw "
          "new [0x20000000, 0x20200000) rw: mapped\n"
          "B after move slot 5 seq 2 [0x20000000, 0x20200000) old [0x10000000, 0x10200000) rw "
          "new [0x20000000, 0x20200000) rw\n"
          "A before flags slot 5 seq 3 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) rw "
          "new [0x20000000, 0x20200000) ro: mapped\n"
          "B before flags slot 5 seq 3 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) rw "
          "new [0x20000000, 0x20200000) ro\n"
          "A after flags slot 5 seq 3 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) rw "
          "new [0x20000000, 0x20200000) ro: mapped\n"
          "B after flags slot 5 seq 3 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) rw "
          "new [0x20000000, 0x20200000) ro\n"
          "A before delete slot 5 seq 4 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) "
          "ro: mapped\n"
          "B before delete slot 5 seq 4 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) "
          "ro\n"
          "A after delete slot 5 seq 4 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) "
          "ro: unmapped\n"
          "B after delete slot 5 seq 4 [0x20000000, 0x20200000) old [0x20000000, 0x20200000) "
          "ro");
    CHECK(rig.stat("memslot_adds") == 1);
    CHECK(rig.stat("memslot_moves") == 1);
    CHECK(rig.stat("memslot_flag_changes") == 1);
    CHECK(rig.stat("memslot_deletes") == 1);
    CHECK(rig.stat("notices_before") == 8);
    CHECK(rig.stat("notices_after") == 8);

    // No-op changes send nothing; a cancelled subscription hears nothing more.
    log.clear();
    CHECK(rig.move(1, 0x200000).getErrno() == rpc::Errno::OK);
    CHECK(rig.flags(2, true).getErrno() == rpc::Errno::OK);
    CHECK(rig.stat("memslot_unchanged") == 2);
    b.cancelRequest().send().wait(rig.ws);
    b = nullptr;
    CHECK(rig.info().getListeners() == 1);
    CHECK(rig.flags(1, true).getErrno() == rpc::Errno::OK);
    CHECK(lines(log) ==
          "A before flags slot 1 seq 5 [0x200000, 0x300000) old [0x200000, 0x300000) rw new "
          "[0x200000, 0x300000) ro: mapped\n"
          "A after flags slot 1 seq 5 [0x200000, 0x300000) old [0x200000, 0x300000) rw new "
          "[0x200000, 0x300000) ro: mapped");
  }
}

TEST_CASE("hw/vm: a change waits for every listener's before-notice; changes queue in order",
          "[vm]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest(placement));
    Rig rig(sys);
    kj::Vector<kj::String> log;
    auto recorder = kj::heap<Recorder>(log, "");
    auto& r = *recorder;
    auto paf = kj::newPromiseAndFulfiller<void>();
    r.gate = paf.promise.fork();
    auto sub = rig.subscribe(kj::mv(recorder));
    auto& frames = sys.composer.frames();
    uint64_t used = frames.usedBytes();

    auto del = rig.vm.deleteMemslotRequest();
    del.setSlot(1);
    auto deleting = del.send();
    rig.waitUntil([&]() { return log.size() == 1; });
    // Held at the before-notice: the old map still answers; pins of the range are refused;
    // a second change waits its turn.
    auto add = rig.vm.addMemslotRequest();
    add.setSlot(6);
    add.setGpa(0x300000);
    add.setSize(MiB);
    auto adding = add.send();
    CHECK(rig.pa(0x200000) == FIXED_PA);
    CHECK(rig.read(0x2ffff8, 8).getErrno() == rpc::Errno::OK);
    CHECK(rig.pin(0x2ff000, 0x1000).getErrno() == rpc::Errno::E_BUSY);
    CHECK(rig.pin(0x1ff000, 0x1000).getErrno() == rpc::Errno::OK);  // slot 0: not changing
    CHECK(rig.unpin(0x1ff000, 0x1000) == rpc::Errno::OK);
    for (int i = 0; i < 20; i++) sys.io.provider->getTimer().afterDelay(kj::MILLISECONDS).wait(rig.ws);
    CHECK(log.size() == 1);
    CHECK(frames.usedBytes() == used);

    paf.fulfiller->fulfill();
    CHECK(deleting.wait(rig.ws).getErrno() == rpc::Errno::OK);
    CHECK(adding.wait(rig.ws).getErrno() == rpc::Errno::OK);
    CHECK(lines(log) ==
          "before delete slot 1 seq 1 [0x200000, 0x300000) old [0x200000, 0x300000) rw\n"
          "after delete slot 1 seq 1 [0x200000, 0x300000) old [0x200000, 0x300000) rw\n"
          "before add slot 6 seq 2 [0x300000, 0x400000) new [0x300000, 0x400000) rw\n"
          "after add slot 6 seq 2 [0x300000, 0x400000) new [0x300000, 0x400000) rw");
    CHECK(rig.translate(0x200000).getErrno() == rpc::Errno::E_FAULT);
    CHECK(!frames.isAllocated(FIXED_PA, MiB));  // the deleted slot's frames are back
    CHECK(frames.usedBytes() == used);          // ... and the new slot took as many
    CHECK(rig.stat("pins_refused") == 1);
  }
}

TEST_CASE("hw/vm: refused changes return errno with a reason and send no notice", "[vm]") {
  TestSystem sys(manifest("inline", "ipa_bits = 36\n"));
  Rig rig(sys);
  kj::Vector<kj::String> log;
  auto sub = rig.subscribe(kj::heap<Recorder>(log, ""));
  struct Row {
    const char* what;
    kj::Function<capnp::Response<rpc::MemslotResult>()> change;
    rpc::Errno expected;
    const char* message;
  };
  Row rows[] = {
      {"add: slot id in use", [&]() { return rig.add(1, 0x1000'0000, MiB); }, rpc::Errno::E_EXIST,
       "slot 1 exists at [0x200000, 0x300000)"},
      {"add: overlapping", [&]() { return rig.add(7, 0x2ff000, 0x2000); }, rpc::Errno::E_EXIST,
       "the GPA range [0x2ff000, 0x301000) overlaps slot 1 [0x200000, 0x300000)"},
      {"add: misaligned", [&]() { return rig.add(7, 0x1000'0800, MiB); }, rpc::Errno::E_INVAL,
       "gpa 0x10000800 and size 0x100000 must be multiples of 4 KiB, the size non-zero"},
      {"add: zero size", [&]() { return rig.add(7, 0x1000'0000, 0); }, rpc::Errno::E_INVAL,
       "gpa 0x10000000 and size 0x0 must be multiples of 4 KiB, the size non-zero"},
      {"add: slot id too large", [&]() { return rig.add(32768, 0x1000'0000, MiB); },
       rpc::Errno::E_INVAL, "slot id 32768 is above 32767"},
      {"add: past the IPA space", [&]() { return rig.add(7, 0xf'ffff'f000, 0x2000); },
       rpc::Errno::E_FAULT,
       "the slot [0xffffff000, 0x1000001000) reaches past the 36-bit guest-physical space"},
      {"add: backing outside memory",
       [&]() { return rig.add(7, 0x1000'0000, MiB, uint64_t(0x8400'0000)); }, rpc::Errno::E_INVAL,
       "the backing [0x84000000, 0x84100000) is misaligned or outside physical memory "
       "[0x80000000, 0x84000000)"},
      {"add: backing in use",
       [&]() { return rig.add(7, 0x1000'0000, MiB, FIXED_PA + 0x80000); }, rpc::Errno::E_BUSY,
       "frames of [0x83080000, 0x83180000) are in use"},
      {"add: no memory", [&]() { return rig.add(7, 0x1000'0000, 64 * MiB); }, rpc::Errno::E_NO_MEM,
       "no contiguous run of 0x4000000 bytes is free"},
      {"delete: no slot", [&]() { return rig.remove(9); }, rpc::Errno::E_NO_ENT, "no slot 9"},
      {"move: no slot", [&]() { return rig.move(9, 0); }, rpc::Errno::E_NO_ENT, "no slot 9"},
      {"move: misaligned", [&]() { return rig.move(1, 0x1000'0010); }, rpc::Errno::E_INVAL,
       "gpa 0x10000010 is not 4 KiB aligned"},
      {"move: overlapping", [&]() { return rig.move(1, 0x1ff000); }, rpc::Errno::E_EXIST,
       "the GPA range [0x1ff000, 0x2ff000) overlaps slot 0 [0x0, 0x200000)"},
      {"move: past the IPA space", [&]() { return rig.move(1, 0xf'fff8'0000); },
       rpc::Errno::E_FAULT,
       "the slot [0xffff80000, 0x1000080000) reaches past the 36-bit guest-physical space"},
      {"flags: no slot", [&]() { return rig.flags(9, true); }, rpc::Errno::E_NO_ENT, "no slot 9"},
  };
  for (auto& row : rows) {
    INFO(row.what);
    auto r = row.change();
    CHECK(r.getErrno() == row.expected);
    CHECK(text(r.getMessage()) == row.message);
    CHECK(!r.hasMemslot());
  }
  CHECK(log.size() == 0);
  CHECK(rig.stat("memslot_changes_refused") == kj::size(rows));
  CHECK(sys.composer.frames().usedBytes() == 4 * MiB);  // nothing claimed, nothing leaked
  // A slot ending exactly at 2^ipa_bits fits.
  CHECK(rig.add(7, 0xf'fff0'0000, MiB).getErrno() == rpc::Errno::OK);
}

TEST_CASE("hw/vm: pinned pages block delete and move (eBusy), not flags; pins are counted",
          "[vm]") {
  TestSystem sys(manifest());
  Rig rig(sys);
  // Across the boundary of slots 0 and 1: one run per slot.
  auto pinned = rig.pin(0x1ff000, 0x2000);
  REQUIRE(pinned.getErrno() == rpc::Errno::OK);
  auto runs = pinned.getRuns();
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].getGpa() == 0x1ff000);
  CHECK(runs[0].getPa() == rig.pa(0x1ff000));
  CHECK(runs[0].getSize() == 0x1000);
  CHECK(runs[0].getSlot() == 0);
  CHECK(runs[1].getGpa() == 0x200000);
  CHECK(runs[1].getPa() == FIXED_PA);
  CHECK(runs[1].getSlot() == 1);
  CHECK(!runs[1].getReadonly());
  CHECK(rig.pin(0x200000, 0x1000).getErrno() == rpc::Errno::OK);  // a second pin of one page
  CHECK(rig.info().getPinnedPages() == 2);
  auto ro = rig.pin(HIGH, 0x1000);
  CHECK(ro.getRuns()[0].getReadonly());
  CHECK(rig.unpin(HIGH, 0x1000) == rpc::Errno::OK);

  CHECK(rig.remove(1).getErrno() == rpc::Errno::E_BUSY);
  CHECK(text(rig.remove(1).getMessage()) == "slot 1 has 1 pinned pages");
  CHECK(rig.move(1, 0x1000'0000).getErrno() == rpc::Errno::E_BUSY);
  CHECK(rig.remove(0).getErrno() == rpc::Errno::E_BUSY);
  CHECK(rig.flags(1, true).getErrno() == rpc::Errno::OK);

  CHECK(rig.unpin(0x1ff000, 0x2000) == rpc::Errno::OK);
  CHECK(rig.move(0, 0x1000'0000).getErrno() == rpc::Errno::OK);  // slot 0 is free now
  CHECK(rig.remove(1).getErrno() == rpc::Errno::E_BUSY);          // one pin left on slot 1
  CHECK(rig.unpin(0x200000, 0x1000) == rpc::Errno::OK);
  CHECK(rig.unpin(0x200000, 0x1000) == rpc::Errno::E_INVAL);  // not pinned any more
  CHECK(rig.remove(1).getErrno() == rpc::Errno::OK);

  CHECK(rig.pin(0x200000, 0x1000).getErrno() == rpc::Errno::E_FAULT);  // no slot there now
  CHECK(rig.pin(HIGH + MiB - 0x1000, 0x2000).getErrno() == rpc::Errno::E_FAULT);
  CHECK(rig.pin(HIGH + 0x800, 0x1000).getErrno() == rpc::Errno::E_INVAL);
  CHECK(rig.pin(HIGH, 0).getErrno() == rpc::Errno::E_INVAL);
  CHECK(rig.unpin(HIGH, 0x1800) == rpc::Errno::E_INVAL);
  CHECK(rig.info().getPinnedPages() == 0);
  CHECK(rig.stat("pins") == 3);
  CHECK(rig.stat("unpins") == 3);
  CHECK(rig.stat("pins_refused") == 6);
}

TEST_CASE("hw/vm: guest memory by GPA, over RPC and directly in shared memory", "[vm]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    TestSystem sys(manifest(placement));
    Rig rig(sys);
    PhysMem& mem = sys.composer.memory();

    // RPC write across the boundary of slots 0 and 1; the bytes are where translate says.
    CHECK(rig.write(0x1ffffd, "hello") == rpc::Errno::OK);
    auto t = rig.translate(0x1ffffd);
    CHECK(t.getSlot() == 0);
    CHECK(t.getBytes() == 3);
    CHECK(!t.getReadonly());
    kj::byte direct[5];
    mem.read(t.getPa(), kj::arrayPtr(direct, 3));
    mem.read(FIXED_PA, kj::arrayPtr(direct + 3, 2));
    CHECK(kj::heapString(reinterpret_cast<char*>(direct), 5) == "hello");
    CHECK(rig.read(0x1ffffd, 5).getData() == "hello"_kj.asBytes());

    // Words: RPC store, direct load; direct store, RPC load.
    CHECK(rig.store64(0x1000, 0x1122334455667788) == rpc::Errno::OK);
    CHECK(mem.load64(rig.pa(0x1000)) == 0x1122334455667788);
    mem.store64(rig.pa(0x2008), 0xfeedface);
    CHECK(rig.load64(0x2008).getValue() == 0xfeedface);

    // Readonly slot: reads work, writes fault and change nothing.
    mem.write(READONLY_PA + 0x10, "ro!"_kj.asBytes());
    CHECK(rig.read(HIGH + 0x10, 3).getData() == "ro!"_kj.asBytes());
    CHECK(rig.write(HIGH + 0x10, "xx") == rpc::Errno::E_FAULT);
    CHECK(rig.store64(HIGH + 0x10, 1) == rpc::Errno::E_FAULT);
    CHECK(rig.read(HIGH + 0x10, 3).getData() == "ro!"_kj.asBytes());
    CHECK(rig.write(0x2ffffe, "xxxx") == rpc::Errno::E_FAULT);  // runs off slot 1 into a hole

    // Holes, alignment and sizes.
    CHECK(rig.read(0x300000, 1).getErrno() == rpc::Errno::E_FAULT);
    CHECK(rig.translate(0x300000).getErrno() == rpc::Errno::E_FAULT);
    CHECK(rig.load64(0x1004).getErrno() == rpc::Errno::E_INVAL);
    CHECK(rig.load64(0x300000).getErrno() == rpc::Errno::E_FAULT);
    CHECK(rig.read(0, 0).getErrno() == rpc::Errno::E_INVAL);
    CHECK(rig.read(0, MiB + 1).getErrno() == rpc::Errno::E_INVAL);
    CHECK(rig.read(0, MiB).getErrno() == rpc::Errno::OK);

    // A move keeps the backing and so the contents.
    CHECK(rig.move(1, 0x1000'0000).getErrno() == rpc::Errno::OK);
    CHECK(rig.read(0x1000'0000, 2).getData() == "lo"_kj.asBytes());
    CHECK(rig.pa(0x1000'0000) == FIXED_PA);

    // An allocated slot is zeroed, whatever its frames held before.
    auto& frames = sys.composer.frames();
    for (uint64_t pa = mem.base(); pa < mem.end(); pa += 4096) {
      if (!frames.isAllocated(pa, 4096)) {
        for (uint64_t off = 0; off < 4096; off += 8) mem.store64(pa + off, ~uint64_t(0));
      }
    }
    CHECK(rig.add(8, 0x2000'0000, 2 * MiB).getErrno() == rpc::Errno::OK);
    auto fresh = rig.read(0x2000'0000, MiB);
    bool zero = true;
    for (auto b : fresh.getData()) zero = zero && b == 0;
    CHECK(zero);
    CHECK(rig.stat("guest_access_faults") == 6);
  }
}

TEST_CASE("hw/vm: a listener that cannot follow a change refuses it, and stays subscribed",
          "[vm]") {
  // A stage 2 that could not unmap before a change would leave the IOMMU reaching memory the VM
  // no longer has there: the change fails instead of returning ok (no silent stale
  // translations), and so does every later one while the listener keeps failing.
  TestSystem sys(manifest());
  Rig rig(sys);
  kj::Vector<kj::String> log;
  auto failing = kj::heap<Recorder>(log, "bad ");
  auto& bad = *failing;
  bad.failBefore = true;
  auto a = rig.subscribe(kj::mv(failing));
  auto b = rig.subscribe(kj::heap<Recorder>(log, "good "));
  for (int attempt = 0; attempt < 2; attempt++) {
    auto req = rig.vm.setMemslotFlagsRequest();
    req.setSlot(0);
    req.setReadonly(true);
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { req.send().wait(rig.ws); })) {
      CHECK(strstr(e->getDescription().cStr(), "a memslot listener failed") != nullptr);
      CHECK(strstr(e->getDescription().cStr(), "this listener cannot take notices") != nullptr);
    } else {
      FAIL("the change returned although a listener could not follow it");
    }
  }
  // Never applied: the good listener heard each change announced, never done.
  REQUIRE(log.size() == 2);
  for (auto& line : log) CHECK(line.startsWith("good before"));
  CHECK(rig.stat("listener_failures") == 2);
  CHECK(rig.info().getListeners() == 2);
  // Once the listener can follow again, changes go ahead.
  bad.failBefore = false;
  CHECK(rig.flags(0, true).getMemslot().getReadonly());
}

TEST_CASE("hw/vm: a subscription dropped without cancel (its holder died) fails every later "
          "change with DISCONNECTED",
          "[vm]") {
  // What the lost listener mirrored (a stage 2 the SMMU walks) may still map the memory a
  // change would take away: the change is refused, never applied silently.
  TestSystem sys(manifest());
  Rig rig(sys);
  kj::Vector<kj::String> log;
  auto sub = rig.subscribe(kj::heap<Recorder>(log, "gone "));
  sub = nullptr;   // dropped, never cancelled
  auto slotsBefore = rig.slots();
  auto req = rig.vm.moveMemslotRequest();
  req.setSlot(1);
  req.setGpa(0x3000'0000);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { req.send().wait(rig.ws); })) {
    CHECK(e->getType() == kj::Exception::Type::DISCONNECTED);
    CHECK(strstr(e->getDescription().cStr(), "without cancelling its subscription") != nullptr);
  } else {
    FAIL("a change went ahead past a listener that may still map the memory");
  }
  CHECK(log.empty());
  CHECK(rig.slots() == slotsBefore);   // the move never happened
  CHECK(rig.stat("listener_failures") == 1);
}

TEST_CASE("hw/vm: a VM that cannot claim its memory fails its start, naming the slot", "[vm]") {
  struct Row {
    kj::String manifest;
    kj::StringPtr message;
  };
  Row rows[] = {
      // The first slot is claimed, the second is not: the first is returned.
      {manifest("inline", "\n[[hw.vm]]\nname = \"vm1\"\nmemslots = [\n"
                          "  { slot = 0, gpa = 0, size = \"1MiB\", pa = \"allocate\" },\n"
                          "  { slot = 1, gpa = 0x100000, size = \"1MiB\", pa = 0x83080000 },\n"
                          "]\n"),
       "memslot 1: frames of [0x83080000, 0x83180000) are in use"},
      {manifest("inline", "\n[[hw.vm]]\nname = \"vm1\"\nmemslots = [{ slot = 3, gpa = 0, "
                          "size = \"64MiB\", pa = \"allocate\" }]\n"),
       "memslot 3: no contiguous run of 0x4000000 bytes is free in memory"},
      {manifest("inline", "\n[[hw.vm]]\nname = \"vm1\"\nipa_bits = 32\nmemslots = [{ slot = 0, "
                          "gpa = 0xfff00000, size = \"2MiB\", pa = \"allocate\" }]\n"),
       "memslot 0 [0xfff00000, 0x100100000) reaches past the 32-bit guest-physical space"},
  };
  for (auto& row : rows) {
    auto io = TestSystem::setup();
    Composer composer(io, testRegistry(), planOf(row.manifest),
                      ComposerOptions{fixtureHostPath(), [](kj::StringPtr) {}});
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
      INFO(e->getDescription().cStr());
      CHECK(strstr(e->getDescription().cStr(), ": starting 'vm1' (hw/vm)") != nullptr);
      CHECK(e->getDescription().startsWith("test.toml:"));
      CHECK(strstr(e->getDescription().cStr(), row.message.cStr()) != nullptr);
    } else {
      FAIL("vm1 started");
    }
    composer.shutdown().wait(io.waitScope);
    CHECK(composer.frames().usedBytes() == 0);  // vm0's frames and any vm1 had claimed
  }
}

// One sequence of every kind of call; its transcript (results as Cap'n Proto text, notices,
// bytes, counters) must not depend on where the VM runs.
kj::String transcript(TestSystem& sys) {
  Rig rig(sys);
  kj::Vector<kj::String> out;
  kj::Vector<kj::String> log;
  auto sub = rig.subscribe(kj::heap<Recorder>(log, "", rig.vm));
  auto record = [&](auto&& response) { out.add(kj::str(response)); };
  record(rig.add(3, 0x800000, 4 * MiB));
  record(rig.add(4, 0xc00000, MiB, uint64_t(0x8200'0000), true));
  record(rig.add(4, 0xc00000, MiB));
  record(rig.pin(0x9ff000, 0x2000));
  record(rig.move(3, 0x1000'0000));
  record(rig.remove(3));
  out.add(kj::str(errnoName(rig.write(0xa00000, "abcdefgh"))));
  record(rig.read(0x9ffffc, 8));
  out.add(kj::str(errnoName(rig.unpin(0x9ff000, 0x2000))));
  record(rig.move(3, 0x1000'0000));
  record(rig.flags(4, false));
  out.add(kj::str(errnoName(rig.write(0xc00000, "xyz"))));
  record(rig.remove(4));
  record(rig.translate(0xc00000));
  record(rig.vm.memslotsRequest().send().wait(rig.ws));
  for (auto& l : log) out.add(kj::mv(l));
  for (auto& s : sys.stats()) {
    for (auto& c : s.counters) out.add(kj::str(s.name, ".", c.name, "=", c.value));
  }
  return kj::strArray(out, "\n");
}

TEST_CASE("hw/vm: the same sequence gives identical results inline and process-placed",
          "[vm][placement]") {
  kj::String reference;
  {
    TestSystem sys(manifest("inline"));
    reference = transcript(sys);
  }
  CHECK(strstr(reference.cStr(), "errno = eBusy") != nullptr);
  TestSystem sys(manifest("process"));
  CHECK(KJ_ASSERT_NONNULL(sys.composer.pidOf("vm0")) != getpid());
  CHECK(std::string(transcript(sys).cStr()) == std::string(reference.cStr()));
}

}  // namespace
}  // namespace nb::hw::testing
