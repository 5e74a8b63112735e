/* tests/bench/linux-peer: the peer's glue, nestbed's code: the page pool and warning counter the
 * shim headers declare, the flush callbacks (a gather that records the range tlb_add_page
 * names), and the exported entry points of peer.h. Compiled with Linux's io-pgtable-arm.c and
 * io-pgtable.c into one shared object by pt-vs-linux.sh. */
#include "nb-linux-shim.h"

#include <linux/io-pgtable.h>

#include <sys/mman.h>

#include "peer.h"

#define NB_EXPORT __attribute__((visibility("default")))

unsigned long nb_shim_warnings;

void nb_shim_warn(const char *file, int line) {
  if (nb_shim_warnings++ < 8) fprintf(stderr, "linux peer: WARN_ON at %s:%d\n", file, line);
}

/* ---- the page pool: pre-faulted pages on a free list (the kernel's page allocator stand-in;
 * cheaper than the buddy allocator, which only flatters Linux) */

static struct pool {
  void **free;      /* stack of free pages */
  size_t nfree, npages;
  char *base;
  size_t bytes;
} pool;

static int pool_init(size_t bytes) {
  pool.bytes = bytes & ~(PAGE_SIZE - 1);
  pool.npages = pool.bytes / PAGE_SIZE;
  pool.base = mmap(NULL, pool.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pool.base == MAP_FAILED) return -1;
  pool.free = malloc(pool.npages * sizeof(void *));
  if (!pool.free) return -1;
  pool.nfree = 0;
  for (size_t i = pool.npages; i-- > 0;) {
    char *page = pool.base + i * PAGE_SIZE;
    memset(page, 0xa5, PAGE_SIZE); /* fault it in now */
    pool.free[pool.nfree++] = page;
  }
  return 0;
}

static void pool_fini(void) {
  if (pool.base && pool.base != MAP_FAILED) munmap(pool.base, pool.bytes);
  free(pool.free);
  memset(&pool, 0, sizeof(pool));
}

void *nb_shim_alloc_pages(int order) {
  void *page;
  if (order != 0) {
    page = aligned_alloc(PAGE_SIZE << order, PAGE_SIZE << order);
  } else {
    if (pool.nfree == 0) return NULL;
    page = pool.free[--pool.nfree];
  }
  if (page) memset(page, 0, PAGE_SIZE << order); /* __GFP_ZERO */
  return page;
}

void nb_shim_free_pages(void *pages, int order) {
  char *p = pages;
  if (order == 0 && p >= pool.base && p < pool.base + pool.bytes) {
    pool.free[pool.nfree++] = p;
  } else {
    free(p);
  }
}

/* ---- flush callbacks: the unmap gather records one range of one page size */

static unsigned long flush_walks, flush_alls;

static void tlb_flush_all(void *cookie) {
  (void)cookie;
  flush_alls++;
}

static void tlb_flush_walk(unsigned long iova, size_t size, size_t granule, void *cookie) {
  (void)iova;
  (void)size;
  (void)granule;
  (void)cookie;
  flush_walks++;
}

static void tlb_add_page(struct iommu_iotlb_gather *gather, unsigned long iova, size_t granule,
                         void *cookie) {
  (void)cookie;
  if (!gather) return;
  unsigned long end = iova + granule - 1;
  if (gather->pgsize != granule && gather->pgsize != 0) flush_walks++; /* would sync here */
  gather->pgsize = granule;
  if (iova < gather->start) gather->start = iova;
  if (end > gather->end) gather->end = end;
}

static const struct iommu_flush_ops flush_ops = {
    .tlb_flush_all = tlb_flush_all,
    .tlb_flush_walk = tlb_flush_walk,
    .tlb_add_page = tlb_add_page,
};

static void gather_init(struct iommu_iotlb_gather *gather) {
  gather->start = ~0UL;
  gather->end = 0;
  gather->pgsize = 0;
  gather->queued = false;
}

/* ---- entry points */

struct nb_linux_peer {
  struct io_pgtable_cfg cfg;
  struct io_pgtable_ops *ops;
  struct device dev;
};

NB_EXPORT struct nb_linux_peer *nb_linux_peer_create(unsigned ias, unsigned oas,
                                                     size_t pool_bytes) {
  struct nb_linux_peer *peer = calloc(1, sizeof(*peer));
  if (!peer) return NULL;
  if (pool_init(pool_bytes) != 0) {
    free(peer);
    return NULL;
  }
  peer->dev.numa_node = NUMA_NO_NODE;
  peer->cfg.pgsize_bitmap = SZ_4K | SZ_2M | SZ_1G;
  peer->cfg.ias = ias;
  peer->cfg.oas = oas;
  peer->cfg.coherent_walk = true;
  peer->cfg.tlb = &flush_ops;
  peer->cfg.iommu_dev = &peer->dev;
  peer->ops = alloc_io_pgtable_ops(ARM_64_LPAE_S1, &peer->cfg, peer);
  if (!peer->ops) {
    pool_fini();
    free(peer);
    return NULL;
  }
  return peer;
}

NB_EXPORT void nb_linux_peer_destroy(struct nb_linux_peer *peer) {
  free_io_pgtable_ops(peer->ops);
  pool_fini();
  free(peer);
}

NB_EXPORT int nb_linux_peer_map(struct nb_linux_peer *peer, uint64_t iova, uint64_t pa,
                                size_t pgsize, size_t pgcount, int prot) {
  while (pgcount > 0) {
    size_t mapped = 0;
    int ret = peer->ops->map_pages(peer->ops, iova, pa, pgsize, pgcount, prot, GFP_KERNEL,
                                   &mapped);
    if (ret) return ret;
    if (mapped == 0) return -22;
    iova += mapped;
    pa += mapped;
    pgcount -= mapped / pgsize;
  }
  return 0;
}

NB_EXPORT size_t nb_linux_peer_map_each(struct nb_linux_peer *peer, const uint64_t *iovas,
                                        const uint64_t *pas, size_t n, int prot) {
  struct io_pgtable_ops *ops = peer->ops;
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    size_t mapped = 0;
    if (ops->map_pages(ops, iovas[i], pas[i], SZ_4K, 1, prot, GFP_KERNEL, &mapped) != 0)
      failed++;
  }
  return failed;
}

NB_EXPORT size_t nb_linux_peer_unmap(struct nb_linux_peer *peer, uint64_t iova, size_t pgsize,
                                     size_t pgcount) {
  struct iommu_iotlb_gather gather;
  gather_init(&gather);
  return peer->ops->unmap_pages(peer->ops, iova, pgsize, pgcount, &gather);
}

NB_EXPORT size_t nb_linux_peer_unmap_each(struct nb_linux_peer *peer, const uint64_t *iovas,
                                          size_t n) {
  struct io_pgtable_ops *ops = peer->ops;
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    struct iommu_iotlb_gather gather;
    gather_init(&gather);
    if (ops->unmap_pages(ops, iovas[i], SZ_4K, 1, &gather) != SZ_4K) failed++;
  }
  return failed;
}

NB_EXPORT uint64_t nb_linux_peer_iova_to_phys_sum(struct nb_linux_peer *peer,
                                                  const uint64_t *iovas, size_t n) {
  struct io_pgtable_ops *ops = peer->ops;
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += ops->iova_to_phys(ops, iovas[i]);
  return sum;
}

NB_EXPORT uint64_t nb_linux_peer_iova_to_phys(struct nb_linux_peer *peer, uint64_t iova) {
  return peer->ops->iova_to_phys(peer->ops, iova);
}

NB_EXPORT size_t nb_linux_peer_table_pages(struct nb_linux_peer *peer) {
  (void)peer;
  return pool.npages - pool.nfree;
}

NB_EXPORT unsigned long nb_linux_peer_warnings(void) { return nb_shim_warnings; }
