/* tests/bench/linux-peer: stands in for drivers/iommu/iommu-pages.h (page accounting dropped;
 * pages from the peer's pool, nb-linux-shim.h). */
#include "nb-linux-shim.h"
static inline void *iommu_alloc_pages_node(int nid, gfp_t gfp, int order) {
  (void)nid;
  (void)gfp;
  return nb_shim_alloc_pages(order);
}
static inline void iommu_free_pages(void *virt, int order) {
  if (virt) nb_shim_free_pages(virt, order);
}
