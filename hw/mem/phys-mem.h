// hw/mem: the shared physical address space, as seen from one process.
//
// Owns: mapping the memfd (or file) that backs nestbed's physical memory, and range-checked
// little-endian accessors by physical address. Every process of a composition maps the same
// object, so a physical address means the same bytes everywhere.
// Does not own: who may use which frames (frame-allocator.h), or any structure layout.
//
// Accesses are 64-bit atomic where aligned (acquire loads, release stores): a hardware model in
// another process never sees a torn descriptor, which the hitless STE update relies on.

#pragma once

#include <kj/common.h>
#include <kj/string.h>
#include <atomic>
#include <cstdint>

namespace nb {

using PhysAddr = uint64_t;

class PhysMem {
public:
  enum class FdOwnership { BORROWED, OWNED };
  // Maps `size` bytes of `fd` (offset 0) as the physical range [base, base + size).
  PhysMem(int fd, FdOwnership ownership, PhysAddr base, uint64_t size);
  ~PhysMem() noexcept(false);
  KJ_DISALLOW_COPY(PhysMem);

  // Creates anonymous shared memory (memfd) and maps it. The returned object owns the fd,
  // which children inherit to map the same bytes.
  static kj::Own<PhysMem> createAnonymous(PhysAddr base, uint64_t size);
  // Creates (or truncates) `path` as the backing file: inspectable by external tools.
  static kj::Own<PhysMem> createFile(kj::StringPtr path, PhysAddr base, uint64_t size);

  // A window of this mapping seen at other addresses: [base, base + size) of the window is
  // [pa, pa + size) here — a guest's RAM at its guest-physical addresses, for code that builds
  // structures in guest memory with engines written against PhysMem (system/guest). It shares
  // this mapping (stores through either are the same bytes) and must not outlive it.
  kj::Own<PhysMem> window(PhysAddr base, PhysAddr pa, uint64_t size);

  struct WindowOf {
    // window()'s constructor tag.
    const PhysMem& parent;
    PhysAddr pa;
  };
  PhysMem(WindowOf of, PhysAddr base, uint64_t size);  // use window()

  PhysAddr base() const { return base_; }
  uint64_t size() const { return size_; }
  PhysAddr end() const { return base_ + size_; }
  int fd() const { return fd_; }

  bool contains(PhysAddr pa, uint64_t len = 1) const {
    return pa >= base_ && len <= size_ && pa - base_ <= size_ - len;
  }

  // ---- Checked accessors: an out-of-range address is a caller's broken contract and
  // throws, naming the address and the memory's bounds. Misaligned 64-bit access likewise.
  uint64_t load64(PhysAddr pa) const { return __atomic_load_n(slot(pa), __ATOMIC_ACQUIRE); }
  void store64(PhysAddr pa, uint64_t value) { __atomic_store_n(slot(pa), value, __ATOMIC_RELEASE); }
  // Atomic compare-and-swap, as a hardware table walker's HTTU update. Returns true if the
  // word held `expected` and now holds `desired`; otherwise `expected` gets the current value.
  bool compareExchange64(PhysAddr pa, uint64_t& expected, uint64_t desired) {
    return __atomic_compare_exchange_n(slot(pa), &expected, desired, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
  }
  void read(PhysAddr pa, kj::ArrayPtr<kj::byte> out) const;
  void write(PhysAddr pa, kj::ArrayPtr<const kj::byte> in);
  void zero(PhysAddr pa, uint64_t len);

  // ---- Unchecked-by-exception accessors for hardware models: an address outside memory is an
  // expected outcome there (an external abort), returned as null / false.
  kj::Maybe<uint64_t> tryLoad64(PhysAddr pa) const {
    if (!contains(pa, 8) || (pa & 7) != 0) return nullptr;
    return __atomic_load_n(rawSlot(pa), __ATOMIC_ACQUIRE);
  }
  bool tryStore64(PhysAddr pa, uint64_t value) {
    if (!contains(pa, 8) || (pa & 7) != 0) return false;
    __atomic_store_n(rawSlot(pa), value, __ATOMIC_RELEASE);
    return true;
  }
  bool tryRead(PhysAddr pa, kj::ArrayPtr<kj::byte> out) const;
  bool tryWrite(PhysAddr pa, kj::ArrayPtr<const kj::byte> in);

  // The whole memory as bytes (for dumps and bulk copies by the owner of a range).
  kj::ArrayPtr<kj::byte> bytes() { return kj::arrayPtr(mapping_, size_); }
  kj::ArrayPtr<const kj::byte> bytes() const { return kj::arrayPtr(mapping_, size_); }

private:
  uint64_t* slot(PhysAddr pa) const {
    checkRange(pa, 8);
    return rawSlot(pa);
  }
  uint64_t* rawSlot(PhysAddr pa) const {
    return reinterpret_cast<uint64_t*>(mapping_ + (pa - base_));
  }
  void checkRange(PhysAddr pa, uint64_t len, bool aligned8 = true) const;

  int fd_;
  bool ownsFd_;
  bool ownsMapping_ = true;  // false for a window()
  PhysAddr base_;
  uint64_t size_;
  kj::byte* mapping_;
};

// Little-endian is the only byte order nestbed's hosts run; the SMMU and page tables are
// little-endian too (IDR0.TTENDIAN = LE), so no conversion is needed at this layer.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "nestbed models a little-endian host");

}  // namespace nb
