# group_manager and domain_allocator through their typed steps, on system/manifests/default.toml:
# groups, DMA ownership (exclusive and shared claims), domains of every kind, map/unmap on a
# domain, attach/replace/detach of a group, the kernel driver's device attach, PASIDs, a nested
# domain over a vIOMMU — with the errno Linux gives for each refusal (facts 5.2, 6).
# Groups of the default topology, by id: 0 {00:01.0} 1 {00:02.0} 2 {00:1f.0} 3 {01:00.0}
# 4 {02:00.0 03:00.0} 5 {02:01.0 04:00.0} 6 {05:00.0 05:00.1}. ep4 is 00:1f.0 (StreamID 0xf8).
# Memory: 0x40000000 + 256 MiB; this scenario's buffers are in the top 2 MiB (0x4fe00000..).
@0xa4c81d3e6b92f057;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "group_manager and domain_allocator: every typed step and its errno",
  steps = [
    (label = "00:1f.0 is a group of its own, able to use PASIDs",
     call = (target = "groups", method = "groupOf", args = "(device = \"00:1f.0\")", result = "group"),
     expect = (fields = [(path = "group.id", equals = "2"), (path = "group.maxPasids", equals = "1048576")])),

    # ---- Ownership (iommu_group_claim_dma_owner / iommu_device_claim_dma_owner).
    (claimGroup = (group = 99, owner = 5), expect = (outcome = (errno = eNoEnt))),
    (claimGroup = (group = 2, owner = 0), expect = (outcome = (errno = eInval))),
    (label = "exclusive claim of group 2", claimGroup = (group = 2, owner = 5), saveAs = "own"),
    (claimGroup = (group = 2, owner = 5), expect = (outcome = (errno = ePerm))),
    (claimDevice = (device = "00:1f.0", owner = 5), expect = (outcome = (errno = ePerm))),
    (label = "shared claims of group 4 by one cookie", claimDevice = (device = "03:00.0", owner = 1), saveAs = "a"),
    (claimDevice = (device = "02:00.0", owner = 1), saveAs = "b"),
    (claimDevice = (device = "02:00.0", owner = 2), expect = (outcome = (errno = ePerm))),
    (call = (target = "groups", method = "groupOf", args = "(device = \"03:00.0\")", result = "group.owners"),
     expect = (value = "2")),
    (release = (ownership = "$b")),
    (release = (ownership = "$a")),
    (call = (target = "groups", method = "groupOf", args = "(device = \"03:00.0\")", result = "group.on"),
     expect = (value = "defaultDomain")),

    # ---- Domains of every kind (arm_smmu_domain_alloc_paging_flags; static identity/blocked).
    (label = "stage 1", allocPaging = (target = (device = "00:1f.0")), saveAs = "s1"),
    (label = "stage 2, a nest parent", allocPaging = (target = (device = "00:1f.0"), flags = (nestParent = true)),
     saveAs = "s2"),
    (label = "stage 1 with dirty tracking", allocPaging = (target = (device = "00:1f.0"), flags = (dirtyTracking = true)),
     saveAs = "dirty"),
    (allocPaging = (target = (device = "00:1f.0"), flags = (nestParent = true, dirtyTracking = true)),
     expect = (outcome = (errno = eOpNotSupp))),
    (allocPaging = (target = (device = "0f:00.0")), expect = (outcome = (errno = eNoDev))),
    (label = "this manifest's allocator is device_centric: no domain 'for the bus'",
     allocPaging = (target = (bus = void)), expect = (outcome = (errno = eInval)),
     whenImpl = [(impl = "domain_allocator/group_centric", expect = (outcome = (errno = ok)))]),
    (allocIdentity = (), saveAs = "identity"),
    (allocBlocked = (), saveAs = "blocked"),

    # ---- Map and unmap on a domain: the invalidations are issued and synced before return.
    (map = (table = "$s1", runs = [(iova = 0x10000000, pa = 0x4fe00000, size = 0x2000, prot = (read = true, write = true))]),
     expect = (fields = [(path = "bytesMapped", equals = "0x2000")])),
    (map = (table = "$s2", runs = [(iova = 0x20000000, pa = 0x4fe10000, size = 0x1000, prot = (read = true, write = true))])),
    (map = (table = "$dirty", runs = [(iova = 0x30000000, pa = 0x4fe20000, size = 0x1000, prot = (read = true, write = true))])),
    (unmap = (table = "$s1", ranges = [(iova = 0x10001000, size = 0x1000)]),
     expect = (fields = [(path = "bytesUnmapped", equals = "0x1000")])),
    (map = (table = "$identity", runs = [(iova = 0, pa = 0x4fe00000, size = 0x1000, prot = (read = true))]),
     expect = (outcome = (errno = eOpNotSupp))),

    # ---- Attach, replace, detach (iommu_attach_group, iommu_group_replace_domain).
    (label = "attach stage 1", attach = (ownership = "$own", domain = "$s1")),
    (dma = (endpoint = "ep4", iova = 0x10000000, write = true, data = "s1")),
    (dma = (endpoint = "ep4", iova = 0x10001000, length = 2), expect = (fault = (type = "fTranslation"))),
    (label = "a second attach needs replace", attach = (ownership = "$own", domain = "$identity"),
     expect = (outcome = (errno = eBusy))),
    (replace = (ownership = "$own", domain = "$identity")),
    (dma = (endpoint = "ep4", iova = 0x4fe00000, length = 2), expect = (value = "\"s1\"")),
    (replace = (ownership = "$own", domain = "$s2")),
    (dma = (endpoint = "ep4", iova = 0x20000000, write = true, data = "s2")),
    (detach = (ownership = "$own")),
    (dma = (endpoint = "ep4", iova = 0x20000000, length = 2), expect = (fields = [(path = "aborted.cause", equals = "ste")])),

    # ---- PASIDs (iommu_attach_device_pasid and friends).
    (attachPasid = (ownership = "$own", pasid = 0, domain = "$s1"), expect = (outcome = (errno = eInval))),
    (attachPasid = (ownership = "$own", pasid = 3, domain = "$s1")),
    (dma = (endpoint = "ep4", iova = 0x10000000, length = 2, ssid = 3), expect = (value = "\"s1\"")),
    (label = "non-PASID traffic under the blocked RID domain: S1DSS = terminate",
     dma = (endpoint = "ep4", iova = 0x10000000, length = 2), expect = (fault = (type = "fStreamDisabled"))),
    (attachPasid = (ownership = "$own", pasid = 3, domain = "$dirty"), expect = (outcome = (errno = eBusy))),
    (replacePasid = (ownership = "$own", pasid = 3, domain = "$dirty")),
    (dma = (endpoint = "ep4", iova = 0x30000000, write = true, data = "hd", ssid = 3)),
    (replacePasid = (ownership = "$own", pasid = 4, domain = "$s1"), expect = (outcome = (errno = eNoEnt))),
    (label = "no stage-2 RID domain while PASIDs are in use", replace = (ownership = "$own", domain = "$s2"),
     expect = (outcome = (errno = eBusy))),
    (detachPasid = (ownership = "$own", pasid = 4), expect = (outcome = (errno = eNoEnt))),
    (detachPasid = (ownership = "$own", pasid = 3)),

    # ---- A nested domain over a vIOMMU on the nest parent: a bypass vSTE (stage 2 only).
    (allocViommu = (s2Domain = "$s2"), saveAs = "viommu"),
    (addVdevice = (viommu = "$viommu", vsid = 0x10, sid = 0xf8)),
    (allocNested = (viommu = "$viommu", vsteFields = (config = bypass)), saveAs = "nested"),
    (allocNested = (viommu = "$viommu", vsteFields = (config = s2Trans)), expect = (outcome = (errno = eIo))),
    (replace = (ownership = "$own", domain = "$nested")),
    (dma = (endpoint = "ep4", iova = 0x20000000, length = 2), expect = (value = "\"s2\"")),

    # ---- The kernel driver's path (iommu_attach_device): singleton groups only, no claim.
    (attachDevice = (device = "03:00.0", domain = "$s1"), expect = (outcome = (errno = eInval))),
    (attachDevice = (device = "01:00.0", domain = "$s1")),
    (attachDevice = (device = "01:00.0", domain = "$s1"), expect = (outcome = (errno = eBusy))),
    (detachDevice = (device = "01:00.0")),

    (release = (ownership = "$own")),
    (call = (target = "groups", method = "groupOf", args = "(device = \"00:1f.0\")", result = "group.on"),
     expect = (value = "defaultDomain")),
    (check = void,
     expect = (counters = [(instance = "groups", counter = "groups_owned", equals = 0),
                           (instance = "groups", counter = "rollback_failures", equals = 0),
                           (instance = "domains", counter = "vste_rejected", equals = 1),
                           (instance = "domains", counter = "domains_allocated_nested", equals = 1)])),
  ],
);
