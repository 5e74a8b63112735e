// tests/components/stage2_shadow: memslot churn — random sequences of adds, deletes, moves and
// flag changes with DMA between every step, run against both implementations: each step's
// outcome and every DMA's outcome must be the same for both, every DMA must land where the VM's
// map says (or fault where it maps nothing), and no DMA may reach a page after its slot was
// deleted or moved — also while DMA races the change itself.

#include "tests/components/stage2_shadow/shadow-testing.h"

#include <random>

namespace nb::s2::testing {
namespace {

constexpr uint32_t SLOT_IDS = 8;
constexpr uint64_t WINDOW = 1 * GiB;   // GPAs the churn uses
constexpr uint64_t POOL = 16 * MiB;    // fixed backings: HIGH + id * POOL

// The model of the map the test keeps to decide what to do next and what DMA should see.
struct ModelSlot {
  uint64_t gpa, size, pa;
  bool readonly;
};

uint64_t markerAt(uint64_t pa) { return 0xa5a5'0000'0000'0000 | pa; }

class Churn {
public:
  Churn(Rig& rig, uint64_t seed) : rig(rig), rng(seed) {}

  kj::Vector<kj::String> trace;

  void run(unsigned steps) {
    for (auto& s : rig.slots()) {
      model.upsert(s.id, ModelSlot{s.gpa, s.size, s.pa, s.readonly}, [](auto&, auto&&) {});
      mark(s.pa, s.size);
    }
    for (unsigned i = 0; i < steps; i++) {
      step(i);
      probe(i);
      if (i % 16 == 15) checkAgainstSlots(rig);
    }
    checkAgainstSlots(rig);
  }

private:
  Rig& rig;
  std::mt19937_64 rng;
  kj::HashMap<uint32_t, ModelSlot> model;
  kj::Vector<ModelSlot> gone;  // ranges that were mapped and are no more (deleted, moved away)

  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); }

  // Markers at every probe position of a backing: DMA reads them back at the slot's GPA.
  void mark(uint64_t pa, uint64_t size) {
    for (auto p : probes(pa, size)) rig.mem.store64(p, markerAt(p));
  }

  uint64_t randomSize() {
    switch (pick(4)) {
      case 0: return (1 + pick(16)) * PAGE;
      case 1: return 2 * MiB;
      case 2: return 2 * MiB + (1 + pick(4)) * PAGE;
      default: return (1 + pick(2)) * 4 * MiB;
    }
  }

  uint64_t randomGpa(uint64_t size) {
    uint64_t align = pick(2) == 0 ? PAGE : 2 * MiB;
    return alignDown(pick(WINDOW - size), align);
  }

  void step(unsigned i) {
    uint32_t id = uint32_t(pick(SLOT_IDS));
    bool exists = model.find(id) != nullptr;
    unsigned what = exists ? 1 + unsigned(pick(3)) : 0;
    kj::String line;
    switch (what) {
      case 0: {
        uint64_t size = randomSize();
        uint64_t gpa = randomGpa(size);
        // Half the slots get a fixed backing, at an offset that may break co-alignment.
        uint64_t pa = 0;
        if (pick(2) == 0) pa = HIGH + id * POOL + (pick(2) == 0 ? 0 : pick(3) * 256 * KiB);
        bool readonly = pick(4) == 0;
        auto e = rig.add(id, gpa, size, pa, readonly);
        line = kj::str("add ", id, " ", hex(gpa), "+", hex(size), readonly ? " ro" : "", ": ",
                       uint16_t(e));
        if (e == rpc::Errno::OK) {
          auto slots = rig.slots();
          for (auto& s : slots) {
            if (s.id == id) {
              model.insert(id, ModelSlot{s.gpa, s.size, s.pa, s.readonly});
              mark(s.pa, s.size);
            }
          }
        }
        break;
      }
      case 1: {
        auto e = rig.remove(id);
        line = kj::str("delete ", id, ": ", uint16_t(e));
        if (e == rpc::Errno::OK) {
          gone.add(KJ_ASSERT_NONNULL(model.find(id)));
          model.erase(id);
        }
        break;
      }
      case 2: {
        auto& m = KJ_ASSERT_NONNULL(model.find(id));
        uint64_t gpa = randomGpa(m.size);
        auto e = rig.move(id, gpa);
        line = kj::str("move ", id, " to ", hex(gpa), ": ", uint16_t(e));
        if (e == rpc::Errno::OK && gpa != m.gpa) {
          gone.add(m);
          m.gpa = gpa;
        }
        break;
      }
      case 3: {
        auto& m = KJ_ASSERT_NONNULL(model.find(id));
        auto e = rig.setReadonly(id, !m.readonly);
        line = kj::str("flags ", id, " ", m.readonly ? "rw" : "ro", ": ", uint16_t(e));
        if (e == rpc::Errno::OK) m.readonly = !m.readonly;
        break;
      }
    }
    trace.add(kj::mv(line));
  }

  bool mapped(uint64_t gpa) {
    for (auto& e : model) {
      if (gpa >= e.value.gpa && gpa < e.value.gpa + e.value.size) return true;
    }
    return false;
  }

  void probe(unsigned i) {
    // Every slot: a read at each probe position (the marker of its backing) and a write at one.
    for (auto& e : model) {
      auto& m = e.value;
      auto positions = probes(m.gpa, m.size);
      for (auto g : positions) {
        auto r = rig.read(g);
        INFO("step " << i << " slot " << e.key << " gpa " << hex(g).cStr() << ": "
                     << r.describe().cStr());
        REQUIRE(r.kind == DmaOutcome::OK);
        uint64_t got;
        memcpy(&got, r.data.begin(), 8);
        uint64_t pa = m.pa + (g - m.gpa);
        REQUIRE(got == rig.mem.load64(pa));
        trace.add(kj::str("  read ", hex(g), " ok"));
      }
      uint64_t g = positions[pick(positions.size())];
      uint64_t pa = m.pa + (g - m.gpa);
      uint64_t value = markerAt(pa) ^ 0xff;
      auto w = rig.write(g, kj::arrayPtr(reinterpret_cast<const kj::byte*>(&value), 8));
      INFO("step " << i << " write " << hex(g).cStr() << ": " << w.describe().cStr());
      if (m.readonly) {
        REQUIRE(w.kind == DmaOutcome::FAULT);
        REQUIRE(w.s2);
      } else {
        REQUIRE(w.kind == DmaOutcome::OK);
        REQUIRE(rig.mem.load64(pa) == value);
        rig.mem.store64(pa, markerAt(pa));
      }
      trace.add(kj::str("  write ", hex(g), " ", w.describe()));
    }
    // Where slots were and are no more: DMA faults at stage 2, for the host.
    for (auto& old : gone) {
      for (auto g : {old.gpa, old.gpa + old.size - PAGE}) {
        if (mapped(g)) continue;
        auto r = rig.read(g);
        INFO("step " << i << " stale gpa " << hex(g).cStr() << ": " << r.describe().cStr());
        REQUIRE(r.kind == DmaOutcome::FAULT);
        REQUIRE(r.s2);
        trace.add(kj::str("  stale ", hex(g), " ", r.describe()));
      }
    }
    if (gone.size() > 8) gone.clear();
  }
};

kj::Array<SlotSpec> initialSlots() {
  return kj::heapArray<SlotSpec>({{0, 0, 4 * MiB, 0}, {1, 64 * MiB, 2 * MiB, HIGH + 1 * POOL}});
}

TEST_CASE("Churn: random memslot changes, DMA after every step, both implementations agree",
          "[stage2_shadow][churn]") {
  auto seed = GENERATE(1u, 2u, 3u);
  DYNAMIC_SECTION("seed " << seed) {
    kj::Vector<kj::String> traces[2];
    kj::StringPtr impls[2] = {"stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn"};
    for (unsigned k = 0; k < 2; k++) {
      INFO(impls[k].cStr());
      Options o;
      o.impl = impls[k];
      Rig rig(initialSlots(), o);
      REQUIRE(rig.shadowVm() == rpc::Errno::OK);
      rig.attachS2();
      Churn churn(rig, seed);
      churn.run(120);
      CHECK(rig.counter("shadow", "update_errors") == 0);
      CHECK(rig.counter("shadow", "record_mismatches") == 0);
      traces[k] = kj::mv(churn.trace);
    }
    REQUIRE(traces[0].size() == traces[1].size());
    for (auto i : kj::indices(traces[0])) {
      INFO("trace line " << i);
      REQUIRE(traces[0][i] == traces[1][i]);
    }
  }
}

TEST_CASE("Churn: the shadow in its own process", "[stage2_shadow][churn]") {
  for (auto impl : {"stage2_shadow/kvm_read"_kj, "stage2_shadow/pinned_pfn"_kj}) {
    DYNAMIC_SECTION(impl.cStr()) {
      Options o;
      o.impl = impl;
      o.placement = "process";
      Rig rig(initialSlots(), o);
      REQUIRE(rig.shadowVm() == rpc::Errno::OK);
      rig.attachS2();
      Churn churn(rig, 7);
      churn.run(40);
      CHECK(rig.counter("shadow", "update_errors") == 0);
    }
  }
}

// A listener of the test's own: it learns when a change has taken effect (its after-notice
// comes once the VM applied it) and then poisons the old backing, so that any DMA reaching the
// old page later reads or overwrites poison.
class Witness final : public rpc::MemslotListener::Server {
public:
  Witness(PhysMem& mem, uint64_t pa, uint64_t size) : mem(mem), pa(pa), size(size) {}

  bool applied = false;
  static constexpr uint64_t POISON = 0xdead'dead'dead'dead;

protected:
  kj::Promise<void> before(BeforeContext context) override { return kj::READY_NOW; }
  kj::Promise<void> after(AfterContext context) override {
    applied = true;
    if (context.getParams().getChange().getKind() == rpc::MemslotChangeKind::DELETE) {
      for (uint64_t p = pa; p < pa + size; p += 8) mem.store64(p, POISON);
    }
    return kj::READY_NOW;
  }

private:
  PhysMem& mem;
  uint64_t pa, size;
};

TEST_CASE("Churn: DMA racing a delete or a move never reaches the old page after the change",
          "[stage2_shadow][churn]") {
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  auto placement = GENERATE(as<kj::StringPtr>{}, "inline", "process");
  auto kind = GENERATE(as<kj::StringPtr>{}, "delete", "move");
  DYNAMIC_SECTION(impl.cStr() << " " << placement.cStr() << " " << kind.cStr()) {
    Options o;
    o.impl = impl;
    o.placement = placement;
    constexpr uint64_t G = 64 * MiB, SIZE = 64 * KiB, PA = HIGH + 1 * POOL;
    Rig rig(kj::heapArray<SlotSpec>({{0, 0, 4 * MiB, 0}, {1, G, SIZE, PA}}), o);
    REQUIRE(rig.shadowVm() == rpc::Errno::OK);
    rig.attachS2();
    for (uint64_t p = PA; p < PA + SIZE; p += 8) rig.mem.store64(p, markerAt(p));

    auto witness = kj::heap<Witness>(rig.mem, PA, SIZE);
    auto& w = *witness;
    auto sub = rig.vm.subscribeRequest();
    sub.setListener(kj::mv(witness));
    auto subscription = sub.send().wait(rig.ws).getSubscription();

    // DMA loops, each DMA issued when the previous one of its loop returns, reads and writes
    // alternating over the slot's pages; the change starts once they are going, and they keep
    // going until 64 more DMAs have been issued after it took effect. The wait scope polls I/O
    // every few events: a loop never idle would otherwise starve a process-placed shadow.
    rig.ws.setBusyPollInterval(4);
    struct Loop {
      unsigned issued = 0, duringChange = 0, afterChange = 0, staleHits = 0, poisonSeen = 0;
      bool changing = false, done = false;
      kj::Own<kj::PromiseFulfiller<void>> started, finished;
    } loop;
    auto started = kj::newPromiseAndFulfiller<void>();
    auto finished = kj::newPromiseAndFulfiller<void>();
    loop.started = kj::mv(started.fulfiller);
    loop.finished = kj::mv(finished.fulfiller);
    kj::Function<kj::Promise<void>()> next;
    next = [&]() -> kj::Promise<void> {
      if (loop.done) return kj::READY_NOW;
      bool issuedAfter = w.applied;
      if (loop.changing && !issuedAfter) loop.duringChange++;
      if (loop.issued == 32) loop.started->fulfill();
      if (loop.afterChange >= 64) loop.finished->fulfill();
      uint64_t g = G + (loop.issued % (SIZE / PAGE)) * PAGE;
      bool isWrite = loop.issued % 2 == 1;
      loop.issued++;
      auto req = rig.ep.dmaRequest();
      req.setIova(g);
      if (isWrite) {
        uint64_t pa = PA + (g - G);
        uint64_t v = markerAt(pa);  // writes put back what is there: only poison reveals them
        req.setWrite(true);
        req.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(&v), 8));
      } else {
        req.setLength(8);
      }
      return req.send().then([&, issuedAfter, isWrite](auto&& r) {
        if (issuedAfter) loop.afterChange++;
        if (!r.isFault() && !r.isAborted()) {
          if (issuedAfter) loop.staleHits++;
          if (!isWrite) {
            uint64_t got;
            memcpy(&got, r.getData().begin(), 8);
            if (got == Witness::POISON) loop.poisonSeen++;
          }
        }
        return next();
      });
    };
    auto loops = kj::heapArrayBuilder<kj::Promise<void>>(4);
    for (unsigned i = 0; i < 4; i++) loops.add(next());
    auto all = kj::joinPromises(loops.finish());
    started.promise.wait(rig.ws);
    loop.changing = true;
    rpc::Errno e = kind == "delete" ? rig.remove(1) : rig.move(1, 128 * MiB);
    loop.changing = false;
    REQUIRE(e == rpc::Errno::OK);
    finished.promise.wait(rig.ws);
    loop.done = true;
    all.wait(rig.ws);
    INFO("DMAs " << loop.issued << ", issued while the change was under way "
                 << loop.duringChange << ", after it " << loop.afterChange);
    CHECK(loop.duringChange > 0);
    CHECK(loop.afterChange >= 64);
    CHECK(loop.staleHits == 0);
    CHECK(loop.poisonSeen == 0);
    if (kind == "delete") {
      // No write landed after the change: the old backing holds only poison.
      for (uint64_t p = PA; p < PA + SIZE; p += 8) {
        INFO(hex(p).cStr());
        REQUIRE(rig.mem.load64(p) == Witness::POISON);
      }
    } else {
      CHECK(rig.read(128 * MiB).kind == DmaOutcome::OK);
    }
    CHECK(rig.counter("shadow", "update_errors") == 0);
  }
}

}  // namespace
}  // namespace nb::s2::testing
