// hw/mem: range-checked physical accessors and the frame allocator.

#include "hw/mem/frame-allocator-server.h"
#include "hw/mem/frame-allocator.h"

#include <catch2/catch.hpp>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/function.h>

#include <map>
#include <random>

namespace nb {
namespace {

constexpr PhysAddr BASE = 0x40000000;

TEST_CASE("PhysMem: loads and stores by physical address, little-endian", "[mem]") {
  auto mem = PhysMem::createAnonymous(BASE, 1 << 20);
  mem->store64(BASE + 0x10, 0x1122334455667788ull);
  CHECK(mem->load64(BASE + 0x10) == 0x1122334455667788ull);
  kj::byte bytes[8];
  mem->read(BASE + 0x10, bytes);
  CHECK(bytes[0] == 0x88);  // little-endian in memory
  CHECK(bytes[7] == 0x11);
  CHECK(mem->tryLoad64(BASE + (1 << 20) - 8) != nullptr);
}

TEST_CASE("PhysMem: a window sees part of memory at other addresses", "[mem]") {
  auto mem = PhysMem::createAnonymous(BASE, 1 << 20);
  // Guest-physical 0x1000..0x3000 is physical BASE + 0x8000..
  auto window = mem->window(0x1000, BASE + 0x8000, 0x2000);
  CHECK(window->base() == 0x1000);
  CHECK(window->size() == 0x2000);
  window->store64(0x1008, 42);
  CHECK(mem->load64(BASE + 0x8008) == 42);
  mem->store64(BASE + 0x9ff8, 7);
  CHECK(window->load64(0x2ff8) == 7);
  CHECK_THROWS_WITH(window->load64(0x3000), Catch::Contains("outside memory"));
  CHECK_THROWS_WITH(mem->window(0, BASE + (1 << 20) - 0x1000, 0x2000),
                    Catch::Contains("outside memory"));
  window = nullptr;  // the window does not unmap what it shares
  CHECK(mem->load64(BASE + 0x8008) == 42);
}

TEST_CASE("PhysMem: out-of-range and misaligned accesses are refused with a clear error", "[mem]") {
  auto mem = PhysMem::createAnonymous(BASE, 1 << 20);
  auto check = [&](kj::Function<void()> f, const char* expected) {
    auto e = KJ_ASSERT_NONNULL(kj::runCatchingExceptions([&]() { f(); }));
    INFO(e.getDescription().cStr());
    CHECK(std::string(e.getDescription().cStr()).find(expected) != std::string::npos);
  };
  check([&]() { mem->load64(BASE - 8); }, "physical address outside memory");
  check([&]() { mem->store64(BASE + (1 << 20), 1); }, "0x40100000+8");
  check([&]() { mem->load64(BASE + 4); }, "misaligned 64-bit physical access");
  check([&]() { mem->zero(BASE + (1 << 20) - 8, 16); }, "physical address outside memory");
  // Hardware models get null/false instead: an external abort, not a crash.
  CHECK(mem->tryLoad64(BASE - 8) == nullptr);
  CHECK(!mem->tryStore64(BASE + (1 << 20), 1));
  CHECK(mem->tryLoad64(~uint64_t(0) - 3) == nullptr);  // no wrap-around
}

TEST_CASE("FrameAllocator: runs are aligned, exhaustion is null, frees are reusable", "[mem]") {
  FrameAllocator frames(BASE, 1 << 20);  // 256 frames
  auto a = KJ_ASSERT_NONNULL(frames.allocFrames(4096, 4096));
  auto b = KJ_ASSERT_NONNULL(frames.allocFrames(64 << 10, 64 << 10));
  CHECK(b % (64 << 10) == 0);
  CHECK((b + (64 << 10) <= a || a + 4096 <= b));
  CHECK(frames.usedBytes() == 4096 + (64 << 10));
  CHECK(frames.allocFrames(2 << 20, 4096) == nullptr);  // larger than memory: null, no abort
  frames.freeFrames(b, 64 << 10);
  CHECK(frames.usedBytes() == 4096);
  // Fill the rest exactly, then nothing is left.
  kj::Vector<PhysAddr> all;
  while (true) {
    KJ_IF_MAYBE(pa, frames.allocFrames(4096, 4096)) { all.add(*pa); } else { break; }
  }
  CHECK(all.size() == 255);
  CHECK(frames.freeBytes() == 0);
}

TEST_CASE("FrameAllocator: double free and foreign runs are refused", "[mem]") {
  FrameAllocator frames(BASE, 1 << 20);
  auto a = KJ_ASSERT_NONNULL(frames.allocFrames(8192, 4096));
  frames.freeFrames(a, 8192);
  CHECK(kj::runCatchingExceptions([&]() { frames.freeFrames(a, 4096); }) != nullptr);
  CHECK(kj::runCatchingExceptions([&]() { frames.freeFrames(BASE + (2 << 20), 4096); }) != nullptr);
  CHECK(frames.reserve(BASE + 0x10000, 0x4000));
  CHECK(!frames.reserve(BASE + 0x12000, 0x4000));  // overlaps the reservation
}

TEST_CASE("FrameAllocator RPC: reserve claims fixed runs all or nothing; free returns them",
          "[mem]") {
  auto io = kj::setupAsyncIo();
  FrameAllocator frames(BASE, 1 << 20);
  auto rpc = serveFrameAllocator(frames);
  auto reserve = [&](std::initializer_list<std::pair<uint64_t, uint64_t>> runs) {
    auto req = rpc.reserveRequest();
    auto list = req.initRuns(runs.size());
    unsigned i = 0;
    for (auto& [pa, bytes] : runs) {
      list[i].setPa(pa);
      list[i++].setBytes(bytes);
    }
    return req.send().wait(io.waitScope).getErrno();
  };
  CHECK(reserve({{BASE + 0x10000, 0x4000}, {BASE + 0x20000, 0x1000}}) == rpc::Errno::OK);
  CHECK(frames.usedBytes() == 0x5000);
  // One run in use: nothing of the request is claimed.
  CHECK(reserve({{BASE + 0x30000, 0x1000}, {BASE + 0x13000, 0x2000}}) == rpc::Errno::E_BUSY);
  CHECK(reserve({{BASE + 0x40000, 0x2000}, {BASE + 0x41000, 0x1000}}) == rpc::Errno::E_BUSY);
  CHECK(frames.usedBytes() == 0x5000);
  CHECK(reserve({{BASE + 0x800, 0x1000}}) == rpc::Errno::E_INVAL);        // misaligned
  CHECK(reserve({{BASE + 0xff000, 0x2000}}) == rpc::Errno::E_INVAL);      // past the end
  CHECK(reserve({{BASE - 0x1000, 0x1000}}) == rpc::Errno::E_INVAL);       // below the base
  CHECK(reserve({{BASE + 0x50000, 0}}) == rpc::Errno::E_INVAL);           // empty
  // The allocator never hands out reserved frames; free returns them.
  for (unsigned i = 0; i < 251; i++) {
    auto pa = KJ_ASSERT_NONNULL(frames.allocFrames(4096, 4096));
    CHECK((pa < BASE + 0x10000 || pa >= BASE + 0x14000));
    CHECK(pa != BASE + 0x20000);
  }
  auto free = rpc.freeRequest();
  auto runs = free.initRuns(1);
  runs[0].setPa(BASE + 0x10000);
  runs[0].setBytes(0x4000);
  CHECK(free.send().wait(io.waitScope).getErrno() == rpc::Errno::OK);
  CHECK(frames.freeBytes() == 0x4000);
}

TEST_CASE("FrameAllocator RPC: a free of overlapping or repeated runs frees nothing (EINVAL)",
          "[mem]") {
  auto io = kj::setupAsyncIo();
  FrameAllocator frames(BASE, 1 << 20);
  auto rpc = serveFrameAllocator(frames);
  auto a = KJ_ASSERT_NONNULL(frames.allocFrames(0x4000, 0x4000));
  auto b = KJ_ASSERT_NONNULL(frames.allocFrames(0x1000, 0x1000));
  REQUIRE(frames.usedBytes() == 0x5000);
  auto freeRuns = [&](std::initializer_list<std::pair<uint64_t, uint64_t>> runs) {
    auto req = rpc.freeRequest();
    auto list = req.initRuns(runs.size());
    unsigned i = 0;
    for (auto& [pa, bytes] : runs) {
      list[i].setPa(pa);
      list[i++].setBytes(bytes);
    }
    return req.send().wait(io.waitScope).getErrno();
  };
  // Each run alone is in use, but together they free a frame twice: nothing is freed.
  CHECK(freeRuns({{b, 0x1000}, {a, 0x4000}, {a + 0x2000, 0x1000}}) == rpc::Errno::E_INVAL);
  CHECK(frames.usedBytes() == 0x5000);
  CHECK(freeRuns({{a, 0x2000}, {a, 0x2000}}) == rpc::Errno::E_INVAL);
  CHECK(frames.usedBytes() == 0x5000);
  // Adjacent runs share no frame: both freed.
  CHECK(freeRuns({{a + 0x2000, 0x2000}, {a, 0x2000}}) == rpc::Errno::OK);
  CHECK(frames.usedBytes() == 0x1000);
}

TEST_CASE("FrameAllocator: random alloc/free never overlaps and accounts exactly", "[mem]") {
  FrameAllocator frames(BASE + 0x3000, 4 << 20);  // base aligned only to 4K
  std::mt19937_64 rng(7);
  std::map<PhysAddr, uint64_t> live;
  uint64_t used = 0;
  for (int i = 0; i < 5000; i++) {
    if (!live.empty() && rng() % 3 == 0) {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      frames.freeFrames(it->first, it->second);
      used -= it->second;
      live.erase(it);
      continue;
    }
    uint64_t align = uint64_t(4096) << (rng() % 5);
    uint64_t bytes = 4096 * (1 + rng() % 20);
    KJ_IF_MAYBE(pa, frames.allocFrames(bytes, align)) {
      REQUIRE(*pa % align == 0);
      auto next = live.lower_bound(*pa);
      if (next != live.end()) REQUIRE(*pa + bytes <= next->first);
      if (next != live.begin()) {
        auto prev = std::prev(next);
        REQUIRE(prev->first + prev->second <= *pa);
      }
      live[*pa] = bytes;
      used += bytes;
    }
    REQUIRE(frames.usedBytes() == used);
  }
}

}  // namespace
}  // namespace nb
