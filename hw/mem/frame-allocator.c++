// hw/mem: bitmap frame allocator with a next-fit cursor. See frame-allocator.h.

#include "hw/mem/frame-allocator.h"

#include "util/bits.h"

#include <kj/debug.h>

namespace nb {

FrameAllocator::FrameAllocator(PhysAddr base, uint64_t size)
    : base_(base), frames_(size / FRAME_SIZE) {
  KJ_REQUIRE(isAligned(base, FRAME_SIZE) && isAligned(size, FRAME_SIZE) && size > 0,
             "frame allocator range must be 4 KiB aligned and non-empty", base, size);
  bitmap_.resize((frames_ + 63) / 64);
  for (auto& w : bitmap_) w = 0;
  // Bits past the last frame count as used, so word-wide scans never return them.
  if (frames_ % 64 != 0) bitmap_.back() = ~uint64_t(0) << (frames_ % 64);
}

bool FrameAllocator::isFree(uint64_t first, uint64_t count) const {
  uint64_t i = first, end = first + count;
  while (i < end) {
    uint64_t word = i / 64, bitIdx = i % 64;
    uint64_t n = kj::min(64 - bitIdx, end - i);
    uint64_t m = (n == 64 ? ~uint64_t(0) : ((uint64_t(1) << n) - 1)) << bitIdx;
    if (bitmap_[word] & m) return false;
    i += n;
  }
  return true;
}

void FrameAllocator::mark(uint64_t first, uint64_t count, bool used) {
  uint64_t i = first, end = first + count;
  while (i < end) {
    uint64_t word = i / 64, bitIdx = i % 64;
    uint64_t n = kj::min(64 - bitIdx, end - i);
    uint64_t m = (n == 64 ? ~uint64_t(0) : ((uint64_t(1) << n) - 1)) << bitIdx;
    if (used) bitmap_[word] |= m; else bitmap_[word] &= ~m;
    i += n;
  }
  used_ = used ? used_ + count : used_ - count;
}

kj::Maybe<uint64_t> FrameAllocator::findRun(uint64_t from, uint64_t to, uint64_t count,
                                            uint64_t alignFrames) const {
  // Physical alignment is of the address, not the frame index: base_ may itself be aligned
  // less than `align`, so candidates are frames whose PA is aligned.
  uint64_t baseFrame = base_ / FRAME_SIZE;
  uint64_t start = alignUp(baseFrame + from, alignFrames) - baseFrame;
  for (uint64_t f = start; f + count <= to; f += alignFrames) {
    // Skip whole used words quickly.
    if (bitmap_[f / 64] == ~uint64_t(0) && alignFrames < 64) {
      f = alignUp(baseFrame + (f / 64 + 1) * 64, alignFrames) - baseFrame - alignFrames;
      continue;
    }
    if (isFree(f, count)) return f;
  }
  return nullptr;
}

kj::Maybe<PhysAddr> FrameSource::allocFramesBelow(uint64_t bytes, uint64_t align,
                                                  PhysAddr limit) {
  KJ_IF_MAYBE(pa, allocFrames(bytes, align)) {
    if (*pa + bytes <= limit && *pa + bytes > *pa) return *pa;
    freeFrames(*pa, bytes);
  }
  return nullptr;
}

kj::Maybe<PhysAddr> FrameAllocator::allocFramesBelow(uint64_t bytes, uint64_t align,
                                                     PhysAddr limit) {
  KJ_REQUIRE(bytes > 0 && isAligned(bytes, FRAME_SIZE), "allocation must be a multiple of 4 KiB",
             bytes);
  KJ_REQUIRE(isPow2(align) && align >= FRAME_SIZE, "alignment must be a power of two >= 4 KiB",
             align);
  if (limit <= base_) return nullptr;
  const uint64_t below = kj::min(frames_, (limit - base_) / FRAME_SIZE);  // frames under limit
  uint64_t count = bytes / FRAME_SIZE, alignFrames = align / FRAME_SIZE;
  if (count > frames_ - used_) return nullptr;
  KJ_IF_MAYBE(f, findRun(0, below, count, alignFrames)) {
    mark(*f, count, true);
    return base_ + *f * FRAME_SIZE;
  }
  return nullptr;
}

kj::Maybe<PhysAddr> FrameAllocator::allocFrames(uint64_t bytes, uint64_t align) {
  KJ_REQUIRE(bytes > 0 && isAligned(bytes, FRAME_SIZE), "allocation must be a multiple of 4 KiB", bytes);
  KJ_REQUIRE(isPow2(align) && align >= FRAME_SIZE, "alignment must be a power of two >= 4 KiB", align);
  uint64_t count = bytes / FRAME_SIZE, alignFrames = align / FRAME_SIZE;
  if (count > frames_ - used_) return nullptr;
  kj::Maybe<uint64_t> found = findRun(hint_, frames_, count, alignFrames);
  if (found == nullptr) found = findRun(0, kj::min(frames_, hint_ + count), count, alignFrames);
  KJ_IF_MAYBE(f, found) {
    mark(*f, count, true);
    hint_ = *f + count;
    if (hint_ >= frames_) hint_ = 0;
    return base_ + *f * FRAME_SIZE;
  }
  return nullptr;
}

void FrameAllocator::checkRun(PhysAddr pa, uint64_t bytes) const {
  KJ_REQUIRE(isAligned(pa, FRAME_SIZE) && isAligned(bytes, FRAME_SIZE) && bytes > 0,
             "frame run must be 4 KiB aligned", kj::hex(pa), bytes);
  KJ_REQUIRE(pa >= base_ && (pa - base_) / FRAME_SIZE + bytes / FRAME_SIZE <= frames_,
             "frame run outside the allocator's memory", kj::hex(pa), bytes);
}

void FrameAllocator::freeFrames(PhysAddr pa, uint64_t bytes) {
  checkRun(pa, bytes);
  uint64_t first = (pa - base_) / FRAME_SIZE, count = bytes / FRAME_SIZE;
  for (uint64_t f = first; f < first + count; f++) {
    PhysAddr framePa = base_ + f * FRAME_SIZE;
    KJ_REQUIRE(bitmap_[f / 64] & (uint64_t(1) << (f % 64)), "double free of a physical frame",
               kj::hex(framePa));
  }
  mark(first, count, false);
}

bool FrameAllocator::isAllocated(PhysAddr pa, uint64_t bytes) const {
  checkRun(pa, bytes);
  uint64_t first = (pa - base_) / FRAME_SIZE;
  for (uint64_t f = first; f < first + bytes / FRAME_SIZE; f++) {
    if (!(bitmap_[f / 64] & (uint64_t(1) << (f % 64)))) return false;
  }
  return true;
}

bool FrameAllocator::reserve(PhysAddr pa, uint64_t bytes) {
  checkRun(pa, bytes);
  uint64_t first = (pa - base_) / FRAME_SIZE, count = bytes / FRAME_SIZE;
  if (!isFree(first, count)) return false;
  mark(first, count, true);
  return true;
}

}  // namespace nb
