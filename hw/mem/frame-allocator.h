// hw/mem: the physical frame allocator.
//
// Owns: which 4 KiB frames of physical memory are in use. Allocations are contiguous runs of
// frames aligned to a power of two (4K/16K/64K granule pages, concatenated PGDs, queues, guest
// RAM). Out of memory is an expected outcome (null), never an abort.
// Does not own: the bytes (PhysMem) or the RPC face (frame-allocator-server.h).

#pragma once

#include "hw/mem/phys-mem.h"

#include <kj/vector.h>

namespace nb {

constexpr uint64_t FRAME_SIZE = 4096;

class FrameSource {
  // What an engine that builds structures in physical memory needs: synchronous frames.
  // Implemented by FrameAllocator (same process) and by a pool filled over RPC (FramePool).
public:
  virtual ~FrameSource() noexcept(false) = default;
  // `bytes` is a multiple of 4 KiB; the run is aligned to `align` (a power of two, ≥ 4 KiB).
  // Returns null when no such run is free.
  virtual kj::Maybe<PhysAddr> allocFrames(uint64_t bytes, uint64_t align) = 0;
  virtual void freeFrames(PhysAddr pa, uint64_t bytes) = 0;
  // The same, but the run must end at or below `limit` (e.g. 2^OAS for translation tables a
  // walker must be able to address). Null when no such run is free. The default takes any run
  // and gives it back when it is too high; sources that can choose override it.
  virtual kj::Maybe<PhysAddr> allocFramesBelow(uint64_t bytes, uint64_t align, PhysAddr limit);
};

class FrameAllocator final : public FrameSource {
public:
  // Manages [base, base + size) in 4 KiB frames; all free initially.
  FrameAllocator(PhysAddr base, uint64_t size);
  KJ_DISALLOW_COPY(FrameAllocator);

  kj::Maybe<PhysAddr> allocFrames(uint64_t bytes, uint64_t align) override;
  kj::Maybe<PhysAddr> allocFramesBelow(uint64_t bytes, uint64_t align, PhysAddr limit) override;
  // Frees a run previously allocated (or reserved). Freeing a frame that is not in use is a
  // broken contract (double free) and throws.
  void freeFrames(PhysAddr pa, uint64_t bytes) override;
  // Marks a specific run in use (memory the manifest places: guest RAM at a fixed PA).
  // Returns false if any frame of it is already in use.
  bool reserve(PhysAddr pa, uint64_t bytes);
  // True if every frame of the run is in use.
  bool isAllocated(PhysAddr pa, uint64_t bytes) const;

  PhysAddr base() const { return base_; }
  uint64_t size() const { return frames_ * FRAME_SIZE; }
  uint64_t freeBytes() const { return (frames_ - used_) * FRAME_SIZE; }
  uint64_t usedBytes() const { return used_ * FRAME_SIZE; }

private:
  bool isFree(uint64_t first, uint64_t count) const;
  void mark(uint64_t first, uint64_t count, bool used);
  kj::Maybe<uint64_t> findRun(uint64_t from, uint64_t to, uint64_t count, uint64_t alignFrames) const;
  void checkRun(PhysAddr pa, uint64_t bytes) const;

  PhysAddr base_;
  uint64_t frames_;
  uint64_t used_ = 0;
  uint64_t hint_ = 0;            // next-fit cursor, in frames
  kj::Vector<uint64_t> bitmap_;  // bit set = frame in use
};

}  // namespace nb
