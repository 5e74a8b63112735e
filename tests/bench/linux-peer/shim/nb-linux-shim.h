/* tests/bench/linux-peer: the user-space stand-in for the kernel headers that Linux's
 * drivers/iommu/io-pgtable-arm.c and io-pgtable.c include, so that those two files compile
 * unmodified with the system C compiler (gnu11) into the benchmark's peer (peer.c).
 *
 * Owns: the types, constants and helpers the two files use, and nothing else; each kernel header
 * they name (linux/kernel.h, linux/slab.h, ...) is a one-line file in this directory that
 * includes this one. Written for nestbed from what the two files call; no kernel code is copied.
 *
 * Behaviour chosen for the benchmark:
 *   - memory: virtual = physical (__pa/__va/virt_to_phys are the identity on user addresses,
 *     all below 2^47); table pages come from peer.c's pool of pre-faulted pages, zeroed on
 *     allocation as __GFP_ZERO asks; kmalloc/kfree are malloc/free.
 *   - barriers are the x86 kernel's (this host): wmb() is sfence, dma_wmb() a compiler barrier;
 *     cmpxchg64_relaxed is a locked compare-and-swap; READ_ONCE/WRITE_ONCE volatile accesses.
 *   - the DMA API is never reached (the peer's walker is coherent, cfg.coherent_walk = true):
 *     mapping is the identity and syncing does nothing.
 *   - WARN_ON prints once per site and counts (peer.c fails the benchmark on any warning).
 */
#ifndef NB_LINUX_SHIM_H
#define NB_LINUX_SHIM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- types (linux/types.h) */
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;
typedef u64 phys_addr_t;
typedef u64 dma_addr_t;
typedef unsigned int gfp_t;

/* ---- compiler and bit helpers (linux/compiler.h, bitops.h, bits.h, kernel.h, sizes.h) */
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define barrier() __asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

#define BITS_PER_LONG 64
#define BIT(n) (1UL << (n))
#define GENMASK_ULL(h, l) ((~0ULL << (l)) & (~0ULL >> (63 - (h))))
#define ilog2(n) ((int)(63 - __builtin_clzll((unsigned long long)(n))))
#define __ffs(x) ((unsigned long)__builtin_ctzl(x))
#define __fls(x) ((unsigned long)(63 - __builtin_clzl(x)))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define min(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a < _b ? _a : _b; })
#define max(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a > _b ? _a : _b; })
#define min_t(t, a, b) ({ t _a = (a); t _b = (b); _a < _b ? _a : _b; })
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void set_bit(long nr, volatile unsigned long *addr) {
  __atomic_fetch_or(addr + nr / BITS_PER_LONG, 1UL << (nr % BITS_PER_LONG), __ATOMIC_RELAXED);
}

#define SZ_4K 0x00001000UL
#define SZ_16K 0x00004000UL
#define SZ_64K 0x00010000UL
#define SZ_2M 0x00200000UL
#define SZ_32M 0x02000000UL
#define SZ_512M 0x20000000UL
#define SZ_1G 0x40000000UL
#define SZ_2G 0x80000000UL

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

static inline int get_order(unsigned long size) {
  return size <= PAGE_SIZE ? 0 : ilog2(size - 1) - PAGE_SHIFT + 1;
}

#define EXPORT_SYMBOL_GPL(sym) extern int nb_shim_exported_##sym

/* ---- diagnostics (linux/bug.h, printk.h, dev_printk.h) */
extern unsigned long nb_shim_warnings;
void nb_shim_warn(const char *file, int line);
#define WARN_ON(cond)                                   \
  ({                                                    \
    int __c = !!(cond);                                 \
    if (unlikely(__c)) nb_shim_warn(__FILE__, __LINE__); \
    unlikely(__c);                                      \
  })
#define WARN(cond, ...)                              \
  ({                                                 \
    int __c = !!(cond);                              \
    if (unlikely(__c)) fprintf(stderr, __VA_ARGS__); \
    WARN_ON(__c);                                    \
  })
#define VM_BUG_ON(cond) ((void)WARN_ON(cond))
#ifndef pr_fmt
#define pr_fmt(fmt) fmt
#endif
#define pr_err(fmt, ...) fprintf(stderr, pr_fmt(fmt), ##__VA_ARGS__)
#define pr_info(fmt, ...) fprintf(stderr, pr_fmt(fmt), ##__VA_ARGS__)

struct device {
  int numa_node;
};
#define NUMA_NO_NODE (-1)
#define dev_to_node(dev) ((void)(dev), NUMA_NO_NODE)
#define dev_err(dev, fmt, ...) fprintf(stderr, fmt, ##__VA_ARGS__)

/* ---- barriers and atomics (asm/barrier.h, atomic.h), the x86 kernel's */
#define mb() __asm__ __volatile__("mfence" ::: "memory")
#define rmb() __asm__ __volatile__("lfence" ::: "memory")
#define wmb() __asm__ __volatile__("sfence" ::: "memory")
#define dma_wmb() barrier()
#define cmpxchg64_relaxed(ptr, old, new)                                                  \
  ({                                                                                      \
    __typeof__(*(ptr)) __o = (old);                                                       \
    __atomic_compare_exchange_n((ptr), &__o, (new), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
    __o;                                                                                  \
  })

/* ---- memory (linux/gfp.h, slab.h, mm.h, io.h) */
#define __GFP_HIGHMEM 0x02u
#define __GFP_ZERO 0x100u
#define GFP_ATOMIC 0x800u
#define GFP_KERNEL 0xcc0u

#define __pa(x) ((phys_addr_t)(uintptr_t)(x))
#define __va(x) ((void *)(uintptr_t)(x))
#define virt_to_phys(x) __pa(x)

static inline void *kmalloc(size_t size, gfp_t gfp) {
  (void)gfp;
  return malloc(size);
}
static inline void kfree(const void *p) { free((void *)p); }

/* Table pages: peer.c's pool (order 0) or aligned_alloc (larger orders), zeroed. */
void *nb_shim_alloc_pages(int order);
void nb_shim_free_pages(void *pages, int order);

/* ---- the DMA API (linux/dma-mapping.h): identity, never reached with coherent_walk */
enum dma_data_direction { DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_NONE };
#define dma_map_single(dev, p, size, dir) ((dma_addr_t)__pa(p))
#define dma_mapping_error(dev, addr) 0
#define dma_unmap_single(dev, addr, size, dir) ((void)(addr))
#define dma_sync_single_for_device(dev, addr, size, dir) ((void)(addr))

/* ---- linux/iommu.h: what io-pgtable.h and io-pgtable-arm.c use */
#define IOMMU_READ (1 << 0)
#define IOMMU_WRITE (1 << 1)
#define IOMMU_CACHE (1 << 2)
#define IOMMU_NOEXEC (1 << 3)
#define IOMMU_MMIO (1 << 4)
#define IOMMU_PRIV (1 << 5)
#define IOMMU_DIRTY_NO_CLEAR (1 << 0)

/* The unmap gather: one range [start, end] of one page size, as the peer's tlb_add_page
 * records it (peer.c). */
struct iommu_iotlb_gather {
  unsigned long start;
  unsigned long end;
  size_t pgsize;
  bool queued;
};
static inline bool iommu_iotlb_gather_queued(struct iommu_iotlb_gather *gather) {
  return gather && gather->queued;
}

struct iommu_dirty_bitmap {
  unsigned long bytes; /* what read_and_clear_dirty reported dirty (the peer never asks) */
};
static inline void iommu_dirty_bitmap_record(struct iommu_dirty_bitmap *dirty, unsigned long iova,
                                             unsigned long length) {
  (void)iova;
  dirty->bytes += length;
}

#endif /* NB_LINUX_SHIM_H */
