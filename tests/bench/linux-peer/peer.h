/* tests/bench/linux-peer: the C interface of the Linux peer, a shared object built at benchmark
 * time from Linux's io-pgtable-arm.c and io-pgtable.c (unmodified, Debian's linux-source-6.12)
 * with peer.c and the shim headers (pt-vs-linux.sh), loaded by the benchmark with dlopen().
 *
 * One ARM_64_LPAE_S1 table, 4K granule, coherent walker, driven through the io_pgtable_ops that
 * alloc_io_pgtable_ops() returns. The per-page loops run inside the peer so that, like the
 * nestbed side's loops in the benchmark, each operation is one call into the page-table code
 * (here the ops function pointer, as a kernel caller makes it). */
#ifndef NB_LINUX_PEER_H
#define NB_LINUX_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nb_linux_peer;

/* ias/oas in bits; table pages come from a pool of pool_bytes, every page written once here
 * (pre-faulted). Null if alloc_io_pgtable_ops refuses or memory runs out. */
typedef struct nb_linux_peer *nb_linux_peer_create_fn(unsigned ias, unsigned oas,
                                                      size_t pool_bytes);
typedef void nb_linux_peer_destroy_fn(struct nb_linux_peer *peer);

/* __iommu_map's loop for one run of pgsize pages: map_pages until pgcount pages are mapped
 * (map_pages stops at the end of a table). prot: IOMMU_READ 1, WRITE 2, CACHE 4. 0 or -errno. */
typedef int nb_linux_peer_map_fn(struct nb_linux_peer *peer, uint64_t iova, uint64_t pa,
                                 size_t pgsize, size_t pgcount, int prot);
/* One map_pages(iova[i], pa[i], 4K, 1) per page. Returns how many failed. */
typedef size_t nb_linux_peer_map_each_fn(struct nb_linux_peer *peer, const uint64_t *iovas,
                                         const uint64_t *pas, size_t n, int prot);
/* unmap_pages(iova, pgsize, pgcount) with a fresh gather, as iommu_unmap does. Bytes unmapped. */
typedef size_t nb_linux_peer_unmap_fn(struct nb_linux_peer *peer, uint64_t iova, size_t pgsize,
                                      size_t pgcount);
/* One unmap_pages(iova[i], 4K, 1, gather) per page, each with a fresh gather. How many failed. */
typedef size_t nb_linux_peer_unmap_each_fn(struct nb_linux_peer *peer, const uint64_t *iovas,
                                           size_t n);
/* One iova_to_phys per iova; the sum of the results (0 for an unmapped one). */
typedef uint64_t nb_linux_peer_iova_to_phys_sum_fn(struct nb_linux_peer *peer,
                                                   const uint64_t *iovas, size_t n);
typedef uint64_t nb_linux_peer_iova_to_phys_fn(struct nb_linux_peer *peer, uint64_t iova);
/* Table pages held (the PGD included); WARN_ONs that fired so far (any is a failed run). */
typedef size_t nb_linux_peer_table_pages_fn(struct nb_linux_peer *peer);
typedef unsigned long nb_linux_peer_warnings_fn(void);

#ifdef __cplusplus
}
#endif

#endif /* NB_LINUX_PEER_H */
