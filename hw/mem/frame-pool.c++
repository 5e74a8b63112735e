// hw/mem: FramePool. See frame-pool.h.

#include "hw/mem/frame-pool.h"

#include "util/bits.h"

#include <kj/debug.h>

namespace nb {

FramePool::~FramePool() noexcept(false) {
  // Frames still on hand go back without waiting: the allocator outlives every component.
  if (framesOnHand() > 0) {
    auto req = allocator_.freeRequest();
    size_t n = 0;
    for (auto& e : free_) n += e.value.size();
    auto runs = req.initRuns(n);
    size_t i = 0;
    for (auto& e : free_) {
      for (auto pa : e.value) {
        runs[i].setPa(pa);
        runs[i].setBytes(e.key);
        i++;
      }
    }
    req.send().detach([](kj::Exception&&) {});
  }
}

uint64_t FramePool::onHand(uint64_t bytes, PhysAddr limit) const {
  uint64_t n = 0;
  KJ_IF_MAYBE(list, free_.find(bytes)) {
    for (auto pa : *list) n += limit == NO_LIMIT || pa + bytes <= limit;
  }
  return n;
}

kj::Promise<bool> FramePool::reserve(uint64_t bytes, uint64_t count, PhysAddr limit) {
  KJ_REQUIRE(isPow2(bytes) && bytes >= FRAME_SIZE, "pool frames are powers of two >= 4 KiB", bytes);
  free_.findOrCreate(bytes, [&]() { return decltype(free_)::Entry{bytes, {}}; });
  uint64_t have = onHand(bytes, limit);
  if (have >= count) return true;
  return fetch(bytes, count - have, limit).then([this, bytes, count, limit]() {
    return onHand(bytes, limit) >= count;
  });
}

kj::Promise<void> FramePool::fetch(uint64_t bytes, uint64_t want, PhysAddr limit) {
  // Allocation is all or nothing: when memory is short, ask for halves until what is left
  // is had, so an engine can still make exact progress up to the last free frame.
  auto req = allocator_.allocRequest();
  req.setBytes(bytes);
  req.setAlign(bytes);
  req.setCount(want);
  req.setBelow(limit);
  return req.send().then([this, bytes, want, limit](auto response) -> kj::Promise<void> {
    if (response.getErrno() == rpc::Errno::OK) {
      auto& list = KJ_ASSERT_NONNULL(free_.find(bytes));
      for (auto run : response.getRuns()) list.add(run.getPa());
      return kj::READY_NOW;
    }
    if (want <= 1) return kj::READY_NOW;
    uint64_t half = want / 2;
    return fetch(bytes, want - half, limit).then([this, bytes, half, limit]() {
      return fetch(bytes, half, limit);
    });
  });
}

kj::Maybe<PhysAddr> FramePool::allocFrames(uint64_t bytes, uint64_t align) {
  KJ_REQUIRE(align <= bytes, "pool frames are aligned to their size only", bytes, align);
  KJ_IF_MAYBE(list, free_.find(bytes)) {
    if (!list->empty()) {
      auto pa = list->back();
      list->removeLast();
      return pa;
    }
  }
  return nullptr;
}

kj::Maybe<PhysAddr> FramePool::allocFramesBelow(uint64_t bytes, uint64_t align, PhysAddr limit) {
  KJ_REQUIRE(align <= bytes, "pool frames are aligned to their size only", bytes, align);
  KJ_IF_MAYBE(list, free_.find(bytes)) {
    for (size_t i = list->size(); i > 0; i--) {
      PhysAddr pa = (*list)[i - 1];
      if (pa + bytes > limit) continue;
      (*list)[i - 1] = list->back();
      list->removeLast();
      return pa;
    }
  }
  return nullptr;
}

void FramePool::freeFrames(PhysAddr pa, uint64_t bytes) {
  free_.findOrCreate(bytes, [&]() { return decltype(free_)::Entry{bytes, {}}; }).add(pa);
}

kj::Promise<void> FramePool::trim(uint64_t keep) {
  auto req = allocator_.freeRequest();
  kj::Vector<std::pair<uint64_t, uint64_t>> surplus;
  for (auto& e : free_) {
    while (e.value.size() > keep) {
      surplus.add(std::make_pair(e.value.back(), e.key));
      e.value.removeLast();
    }
  }
  if (surplus.empty()) return kj::READY_NOW;
  auto runs = req.initRuns(surplus.size());
  for (auto i : kj::indices(surplus)) {
    runs[i].setPa(surplus[i].first);
    runs[i].setBytes(surplus[i].second);
  }
  return req.send().then([](auto response) {
    KJ_ASSERT(response.getErrno() == rpc::Errno::OK, "frame allocator refused frames the pool held");
  });
}

uint64_t FramePool::framesOnHand() const {
  uint64_t n = 0;
  for (auto& e : free_) n += e.value.size();
  return n;
}

}  // namespace nb
