// hw/mem client code: a FrameSource for components that build structures synchronously (a page
// table walk cannot wait for an RPC in the middle of a descriptor update) over the frame
// allocator they reach by RPC.
//
// Owns: frames taken from the allocator ahead of need, by size class (each frame aligned to its
// size), handed out synchronously; frames freed by the engine go back to the pool. The owner
// reserves before a batch (one RPC for the whole batch, not one per frame) and trims after.
// Does not own: the frames' contents.

#pragma once

#include "hw/mem/frame-allocator.h"
#include "interfaces/mem.capnp.h"

#include <kj/async.h>
#include <kj/map.h>

namespace nb {

class FramePool final : public FrameSource {
public:
  static constexpr PhysAddr NO_LIMIT = 0;  // a `limit` of 0: anywhere

  explicit FramePool(rpc::FrameAllocator::Client allocator) : allocator_(kj::mv(allocator)) {}
  ~FramePool() noexcept(false);
  KJ_DISALLOW_COPY(FramePool);

  // Makes sure at least `count` frames of `bytes` (a power of two >= 4 KiB) are on hand.
  // Resolves to false if the allocator ran out first (the pool keeps all it could get).
  // With `limit`, only frames ending at or below it count, and only such are fetched.
  kj::Promise<bool> reserve(uint64_t bytes, uint64_t count, PhysAddr limit = NO_LIMIT);

  // FrameSource: synchronous, from the pool only. `align` must not exceed `bytes`.
  kj::Maybe<PhysAddr> allocFrames(uint64_t bytes, uint64_t align) override;
  kj::Maybe<PhysAddr> allocFramesBelow(uint64_t bytes, uint64_t align, PhysAddr limit) override;
  void freeFrames(PhysAddr pa, uint64_t bytes) override;

  // Returns frames beyond `keep` per size class to the allocator.
  kj::Promise<void> trim(uint64_t keep);

  uint64_t framesOnHand() const;

private:
  kj::Promise<void> fetch(uint64_t bytes, uint64_t want, PhysAddr limit);
  uint64_t onHand(uint64_t bytes, PhysAddr limit) const;

  rpc::FrameAllocator::Client allocator_;
  kj::HashMap<uint64_t, kj::Vector<PhysAddr>> free_;  // size class -> frames
};

}  // namespace nb
