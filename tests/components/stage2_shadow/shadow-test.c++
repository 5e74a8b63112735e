// tests/components/stage2_shadow: shadow() itself — the stage-2 contents for aligned, unaligned
// and readonly memslot layouts against an independent walk of the VM's slots, the block sizes
// alignment allows, permissions seen by DMA, refusals, coherence across each kind of change,
// dropping a shadow, and what each implementation's updates cost — for both implementations,
// inline and in its own process.

#include "tests/components/stage2_shadow/shadow-testing.h"

namespace nb::s2::testing {
namespace {

struct Layout {
  const char* name;
  kj::Array<SlotSpec> slots;
  uint64_t leaves4k, leaves2m, leaves1g;  // expected, worked out by hand
};

kj::Array<Layout> layouts() {
  auto out = kj::heapArrayBuilder<Layout>(3);
      // 8 MiB allocated at GPA 0 (backing aligned like the GPA: 4 x 2 MiB); 1 GiB at a 1 GiB GPA
      // over a 1 GiB-aligned backing (one block); 2 MiB + 8 KiB (a block and two pages).
  out.add(Layout{"aligned",
             kj::heapArray<SlotSpec>({{0, 0, 8 * MiB, 0},
                                      {1, 1 * GiB, 1 * GiB, HIGH},
                                      {2, 2 * GiB, 2 * MiB + 8 * KiB, HIGH + 1 * GiB}}),
             2, 5, 1});
      // A slot starting one page into a 2 MiB block, backing congruent: 511 pages, then a block.
      // GPA and backing 1 MiB apart modulo 2 MiB: never a block (1024 pages). A 1 GiB + 2 MiB
      // slot whose backing is 2 MiB but not 1 GiB aligned: 513 blocks of 2 MiB, no 1 GiB.
  out.add(Layout{"unaligned",
             kj::heapArray<SlotSpec>({{0, 4 * KiB, 4 * MiB - 4 * KiB, HIGH + 4 * KiB},
                                      {1, 4 * MiB, 4 * MiB, HIGH + 5 * MiB},
                                      {2, 3 * GiB, 1 * GiB + 2 * MiB, HIGH + 1 * GiB + 2 * MiB}}),
             511 + 1024, 1 + 513, 0});
      // Read-only slots next to writable ones.
  out.add(Layout{"readonly",
             kj::heapArray<SlotSpec>({{0, 0, 2 * MiB, 0},
                                      {1, 2 * MiB, 2 * MiB, HIGH, true},
                                      {2, 256 * MiB, 64 * KiB, 0, true}}),
             16, 2, 0});
  return out.finish();
}

uint64_t leaves(Rig& rig, uint64_t size) {
  auto info = rig.info();
  for (auto l : info.getInfo().getLeaves()) {
    if (l.getSize() == size) return l.getCount();
  }
  return 0;
}

TEST_CASE("Shadow: contents match the VM's memslots, with the largest blocks alignment allows",
          "[stage2_shadow]") {
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  auto all = layouts();
  auto index = GENERATE(range(0, 3));
  auto& layout = all[index];
  DYNAMIC_SECTION(impl.cStr() << " " << layout.name) {
    Options o;
    o.impl = impl;
    Rig rig(layout.slots, o);
    REQUIRE(rig.shadowVm() == rpc::Errno::OK);
    checkAgainstSlots(rig);
    CHECK(leaves(rig, 4 * KiB) == layout.leaves4k);
    CHECK(leaves(rig, 2 * MiB) == layout.leaves2m);
    CHECK(leaves(rig, 1 * GiB) == layout.leaves1g);
    auto infoResponse = rig.info();
    auto info = infoResponse.getInfo();
    CHECK(info.getImpl() == impl);
    CHECK(info.getVm() == "vm0");
    CHECK(info.getRuns() == layout.slots.size());
    CHECK(info.getFollowing());
    CHECK(info.getErrors() == 0);
    CHECK(rig.counter("shadow", "leaf_writes") ==
          layout.leaves4k + layout.leaves2m + layout.leaves1g);
  }
}

TEST_CASE("Shadow: DMA through the stage-2 domain reaches each slot's backing, with permissions",
          "[stage2_shadow]") {
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  auto placement = GENERATE(as<kj::StringPtr>{}, "inline", "process");
  DYNAMIC_SECTION(impl.cStr() << " " << placement.cStr()) {
    Options o;
    o.impl = impl;
    o.placement = placement;
    auto all = layouts();
    Rig rig(all[2].slots, o);  // the readonly layout
    REQUIRE(rig.shadowVm() == rpc::Errno::OK);
    rig.attachS2();
    for (auto& s : rig.slots()) {
      INFO("slot " << s.id);
      // Behind everyone's back: a marker in the backing, read by DMA at the GPA.
      uint64_t marker = 0x5100'0000'0000'0000 | (uint64_t(s.id) << 32) | 0x1234;
      rig.mem.store64(s.pa + s.size - 8, marker);
      auto r = rig.read(s.gpa + s.size - 8);
      REQUIRE(r.kind == DmaOutcome::OK);
      uint64_t got;
      memcpy(&got, r.data.begin(), 8);
      CHECK(got == marker);
      kj::byte bytes[4] = {1, 2, 3, 4};
      auto w = rig.write(s.gpa, bytes);
      if (s.readonly) {
        CHECK(w.kind == DmaOutcome::FAULT);
        CHECK(w.faultId == 0x13);  // F_PERMISSION
        CHECK(w.s2);
      } else {
        CHECK(w.kind == DmaOutcome::OK);
        CHECK(rig.mem.load64(s.pa) == 0x04030201);
      }
    }
    auto outside = rig.read(512 * MiB);
    CHECK(outside.kind == DmaOutcome::FAULT);
    CHECK(outside.faultId == 0x10);  // F_TRANSLATION
    CHECK(outside.s2);
  }
}

TEST_CASE("Shadow: refusals", "[stage2_shadow]") {
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  DYNAMIC_SECTION(impl.cStr()) {
    SECTION("domain_allocator's errno is passed on") {
      Options o;
      o.impl = impl;
      Rig rig(kj::heapArray<SlotSpec>({{0, 0, 2 * MiB, 0}}), o);
      CHECK(rig.shadowVm("smmu9") == rpc::Errno::E_NO_DEV);
      CHECK(rig.counter("shadow", "shadows_refused") == 1);
      CHECK(rig.counter("shadow", "domain_calls") == 0);
      CHECK(rig.vm.infoRequest().send().wait(rig.ws).getInfo().getListeners() == 0);
    }
    SECTION("a guest-physical space wider than the domain's input is eRange") {
      Options o;
      o.impl = impl;
      o.ipaBits = 52;
      Rig rig(kj::heapArray<SlotSpec>({{0, 0, 2 * MiB, 0}}), o);
      CHECK(rig.shadowVm() == rpc::Errno::E_RANGE);
      CHECK(rig.vm.infoRequest().send().wait(rig.ws).getInfo().getListeners() == 0);
    }
  }
}

TEST_CASE("Shadow: each change is unmapped before it takes effect and remapped after",
          "[stage2_shadow]") {
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  DYNAMIC_SECTION(impl.cStr()) {
    Options o;
    o.impl = impl;
    Rig rig(kj::heapArray<SlotSpec>({{0, 0, 4 * MiB, 0}, {1, 64 * MiB, 2 * MiB, HIGH}}), o);
    REQUIRE(rig.shadowVm() == rpc::Errno::OK);
    rig.attachS2();
    // Warm the IOTLB on slot 1, so a missing invalidation would show as a stale hit.
    REQUIRE(rig.read(64 * MiB).kind == DmaOutcome::OK);

    SECTION("add") {
      REQUIRE(rig.add(2, 128 * MiB, 2 * MiB + 4 * KiB, HIGH + 2 * MiB) == rpc::Errno::OK);
      checkAgainstSlots(rig);
      CHECK(rig.read(128 * MiB + 2 * MiB).kind == DmaOutcome::OK);
    }
    SECTION("delete") {
      REQUIRE(rig.remove(1) == rpc::Errno::OK);
      checkAgainstSlots(rig);
      auto r = rig.read(64 * MiB);
      CHECK(r.kind == DmaOutcome::FAULT);
      CHECK(r.s2);
    }
    SECTION("move") {
      rig.mem.store64(HIGH, 0xfeed);
      REQUIRE(rig.move(1, 96 * MiB) == rpc::Errno::OK);
      checkAgainstSlots(rig);
      CHECK(rig.read(64 * MiB).kind == DmaOutcome::FAULT);
      auto r = rig.read(96 * MiB);
      REQUIRE(r.kind == DmaOutcome::OK);
      uint64_t got;
      memcpy(&got, r.data.begin(), 8);
      CHECK(got == 0xfeed);
    }
    SECTION("flags") {
      kj::byte b[1] = {7};
      REQUIRE(rig.write(64 * MiB, b).kind == DmaOutcome::OK);
      REQUIRE(rig.setReadonly(1, true) == rpc::Errno::OK);
      checkAgainstSlots(rig);
      CHECK(rig.write(64 * MiB, b).kind == DmaOutcome::FAULT);
      CHECK(rig.read(64 * MiB).kind == DmaOutcome::OK);
      REQUIRE(rig.setReadonly(1, false) == rpc::Errno::OK);
      CHECK(rig.write(64 * MiB, b).kind == DmaOutcome::OK);
    }
    auto infoResponse = rig.info();
    auto info = infoResponse.getInfo();
    CHECK(info.getErrors() == 0);
    CHECK(rig.counter("shadow", "update_errors") == 0);
  }
}

TEST_CASE("Shadow: what an update costs each implementation", "[stage2_shadow]") {
  // One delete and one re-add of a 2 MiB slot: kvm_read reads the VM's memslots for each
  // update; pinned_pfn asks the VM nothing after shadow time.
  for (auto impl : {"stage2_shadow/kvm_read"_kj, "stage2_shadow/pinned_pfn"_kj}) {
    DYNAMIC_SECTION(impl.cStr()) {
      Options o;
      o.impl = impl;
      Rig rig(kj::heapArray<SlotSpec>({{0, 0, 4 * MiB, 0}, {1, 64 * MiB, 2 * MiB, HIGH}}), o);
      REQUIRE(rig.shadowVm() == rpc::Errno::OK);
      uint64_t vmCalls = rig.counter("shadow", "vm_calls");
      uint64_t domainCalls = rig.counter("shadow", "domain_calls");
      if (impl == "stage2_shadow/kvm_read") {
        CHECK(vmCalls == 1);  // memslots()
      } else {
        CHECK(vmCalls == 5);  // memslots(), a pin and an unpin per slot
        CHECK(rig.counter("shadow", "pins") == 2);
        CHECK(rig.counter("shadow", "unpins") == 2);
      }
      CHECK(domainCalls == 1);  // one map of every slot
      REQUIRE(rig.remove(1) == rpc::Errno::OK);
      REQUIRE(rig.add(1, 64 * MiB, 2 * MiB, HIGH) == rpc::Errno::OK);
      uint64_t updateVmCalls = rig.counter("shadow", "vm_calls") - vmCalls;
      CHECK(updateVmCalls == (impl == "stage2_shadow/kvm_read" ? 2 : 0));
      CHECK(rig.counter("shadow", "domain_calls") - domainCalls == 2);  // an unmap, a map
      CHECK(rig.counter("shadow", "leaf_clears") == 1);
      CHECK(rig.counter("shadow", "leaf_writes") == 3 + 1);  // 2 + 1 blocks, then 1 again
      CHECK(rig.counter("shadow", "tlbi_commands") >= 2);  // TLBI_S2_IPA + TLBI_NH_ALL
      CHECK(rig.counter("shadow", "notices_before") == 2);
      CHECK(rig.counter("shadow", "notices_after") == 2);
      if (impl == "stage2_shadow/kvm_read") {
        CHECK(rig.counter("shadow", "slots_read") == 2 + 1 + 2);
      } else {
        CHECK(rig.counter("shadow", "slots_read") == 0);
      }
      checkAgainstSlots(rig);
    }
  }
}

TEST_CASE("Shadow: dropping it unsubscribes and leaves nothing mapped", "[stage2_shadow]") {
  auto impl = GENERATE(as<kj::StringPtr>{}, "stage2_shadow/kvm_read", "stage2_shadow/pinned_pfn");
  DYNAMIC_SECTION(impl.cStr()) {
    Options o;
    o.impl = impl;
    Rig rig(kj::heapArray<SlotSpec>({{0, 0, 4 * MiB, 0}}), o);
    REQUIRE(rig.shadowVm() == rpc::Errno::OK);
    CHECK(rig.vm.infoRequest().send().wait(rig.ws).getInfo().getListeners() == 1);
    CHECK(rig.counter("shadow", "shadows_alive") == 1);
    rig.shadow = nullptr;
    // The release runs in the background: a round trip to the component lets it finish.
    rig.sys.io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(rig.ws);
    CHECK(rig.counter("shadow", "shadows_alive") == 0);
    CHECK(rig.vm.infoRequest().send().wait(rig.ws).getInfo().getListeners() == 0);
    CHECK(rig.translate(0) == nullptr);
    CHECK(rig.counter("shadow", "runs_unmapped") == 1);
    // Changes now go ahead without it.
    CHECK(rig.add(1, 64 * MiB, 2 * MiB) == rpc::Errno::OK);
    CHECK(rig.translate(64 * MiB) == nullptr);
  }
}

TEST_CASE("Shadow: pinned_pfn holding its pins makes the VM refuse to delete or move them",
          "[stage2_shadow]") {
  Options o;
  o.impl = "stage2_shadow/pinned_pfn";
  o.shadowSettings = "hold_pins = true";
  Rig rig(kj::heapArray<SlotSpec>({{0, 0, 4 * MiB, 0}, {1, 64 * MiB, 2 * MiB, HIGH}}), o);
  REQUIRE(rig.shadowVm() == rpc::Errno::OK);
  CHECK(rig.info().getInfo().getPinnedBytes() == 6 * MiB);
  CHECK(rig.counter("shadow", "pinned_bytes") == 6 * MiB);
  CHECK(rig.remove(1) == rpc::Errno::E_BUSY);
  CHECK(rig.move(1, 96 * MiB) == rpc::Errno::E_BUSY);
  CHECK(rig.setReadonly(1, true) == rpc::Errno::OK);
  CHECK(rig.add(2, 128 * MiB, 2 * MiB) == rpc::Errno::OK);  // pinned as it is added
  CHECK(rig.info().getInfo().getPinnedBytes() == 8 * MiB);
  CHECK(rig.remove(2) == rpc::Errno::E_BUSY);
  checkAgainstSlots(rig);
  rig.shadow = nullptr;
  rig.sys.io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(rig.ws);
  CHECK(rig.counter("shadow", "pinned_bytes") == 0);
  CHECK(rig.vm.infoRequest().send().wait(rig.ws).getInfo().getPinnedPages() == 0);
  CHECK(rig.remove(1) == rpc::Errno::OK);
}

}  // namespace
}  // namespace nb::s2::testing
