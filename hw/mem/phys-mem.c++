// hw/mem: mapping and range checks of the shared physical memory. See phys-mem.h.

#include "hw/mem/phys-mem.h"

#include <fcntl.h>
#include <kj/debug.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstring>

namespace nb {

PhysMem::PhysMem(int fd, FdOwnership ownership, PhysAddr base, uint64_t size)
    : fd_(fd), ownsFd_(ownership == FdOwnership::OWNED), base_(base), size_(size), mapping_(nullptr) {
  KJ_REQUIRE(size > 0 && (size & 0xfff) == 0, "physical memory size must be a non-zero multiple of 4 KiB", size);
  KJ_REQUIRE((base & 0xfff) == 0, "physical memory base must be 4 KiB aligned", base);
  KJ_REQUIRE(base + size > base, "physical memory range wraps around", base, size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    KJ_FAIL_SYSCALL("mmap(physical memory)", errno, fd, size);
  }
  mapping_ = static_cast<kj::byte*>(p);
}

PhysMem::PhysMem(WindowOf of, PhysAddr base, uint64_t size)
    : fd_(of.parent.fd_), ownsFd_(false), ownsMapping_(false), base_(base), size_(size),
      mapping_(nullptr) {
  KJ_REQUIRE(size > 0 && (size & 0xfff) == 0 && (base & 0xfff) == 0 && (of.pa & 0xfff) == 0,
             "a memory window is whole 4 KiB pages", base, of.pa, size);
  KJ_REQUIRE(base + size > base, "memory window wraps around", base, size);
  KJ_REQUIRE(of.parent.contains(of.pa, size), "memory window outside memory",
             kj::str("0x", kj::hex(of.pa), "+", size));
  mapping_ = of.parent.mapping_ + (of.pa - of.parent.base_);
}

kj::Own<PhysMem> PhysMem::window(PhysAddr base, PhysAddr pa, uint64_t size) {
  return kj::heap<PhysMem>(WindowOf{*this, pa}, base, size);
}

PhysMem::~PhysMem() noexcept(false) {
  if (mapping_ != nullptr && ownsMapping_) munmap(mapping_, size_);
  if (ownsFd_) close(fd_);
}

kj::Own<PhysMem> PhysMem::createAnonymous(PhysAddr base, uint64_t size) {
  int fd;
  KJ_SYSCALL(fd = memfd_create("nestbed-physmem", 0));
  KJ_SYSCALL(ftruncate(fd, size), size);
  return kj::heap<PhysMem>(fd, FdOwnership::OWNED, base, size);
}

kj::Own<PhysMem> PhysMem::createFile(kj::StringPtr path, PhysAddr base, uint64_t size) {
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_RDWR | O_CREAT | O_TRUNC, 0644), path);
  KJ_SYSCALL(ftruncate(fd, size), path, size);
  return kj::heap<PhysMem>(fd, FdOwnership::OWNED, base, size);
}

void PhysMem::checkRange(PhysAddr pa, uint64_t len, bool aligned8) const {
  KJ_REQUIRE(contains(pa, len), "physical address outside memory",
             kj::str("0x", kj::hex(pa), "+", len), kj::str("[0x", kj::hex(base_), ", 0x", kj::hex(end()), ")"));
  if (aligned8) {
    KJ_REQUIRE((pa & 7) == 0, "misaligned 64-bit physical access", kj::str("0x", kj::hex(pa)));
  }
}

void PhysMem::read(PhysAddr pa, kj::ArrayPtr<kj::byte> out) const {
  checkRange(pa, out.size(), false);
  memcpy(out.begin(), mapping_ + (pa - base_), out.size());
}

void PhysMem::write(PhysAddr pa, kj::ArrayPtr<const kj::byte> in) {
  checkRange(pa, in.size(), false);
  memcpy(mapping_ + (pa - base_), in.begin(), in.size());
}

void PhysMem::zero(PhysAddr pa, uint64_t len) {
  checkRange(pa, len, false);
  memset(mapping_ + (pa - base_), 0, len);
}

bool PhysMem::tryRead(PhysAddr pa, kj::ArrayPtr<kj::byte> out) const {
  if (!contains(pa, out.size())) return false;
  memcpy(out.begin(), mapping_ + (pa - base_), out.size());
  return true;
}

bool PhysMem::tryWrite(PhysAddr pa, kj::ArrayPtr<const kj::byte> in) {
  if (!contains(pa, in.size())) return false;
  memcpy(mapping_ + (pa - base_), in.begin(), in.size());
  return true;
}

}  // namespace nb
