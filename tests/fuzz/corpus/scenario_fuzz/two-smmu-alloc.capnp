# Group-centric against device-centric domain allocation (ARCHITECTURE.md, debate 4), on
# system/manifests/two-smmu-group-centric.toml and two-smmu-device-centric.toml (one line
# apart). One VFIO-style container holds a device behind each SMMU. Allocating its domain "for
# the bus" (Linux's old iommu_domain_alloc(bus)) or "for a group" picks a device the caller did
# not name; since domains are finalised at allocation, group_centric silently binds the domain
# to that device's SMMU and the failure surfaces later, at the attach of a device behind the
# other SMMU (eInval). device_centric refuses such an allocation outright (eInval), and the
# caller allocates per device. The scenario passes on both manifests: `whenImpl` states where
# each design fails.
@0xb7e41c9d2a5f3086;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "group-centric vs device-centric allocation on two SMMU instances",
  steps = [
    (label = "one owner (a container) claims a device behind each SMMU",
     claimDevice = (device = "0000:01:00.0", owner = 7), saveAs = "o0"),
    (claimDevice = (device = "0001:01:00.0", owner = 7), saveAs = "o1"),

    # ---- The container's one domain, "for the bus".
    (label = "a domain 'for the bus': group_centric grants it, device_centric refuses",
     allocPaging = (target = (bus = void)), saveAs = "shared",
     whenImpl = [(impl = "domain_allocator/device_centric", expect = (outcome = (errno = eInval)))]),
    (label = "group_centric finalised it for the bus's first device's SMMU, unasked",
     call = (target = "$shared", method = "info"),
     expect = (fields = [(path = "info.smmu", equals = "\"smmu0\"")]),
     whenImpl = [(impl = "domain_allocator/device_centric",
                  expect = (outcome = (exception = "null")))]),
    (label = "attaching the device behind smmu0 works",
     attach = (ownership = "$o0", domain = "$shared"),
     whenImpl = [(impl = "domain_allocator/device_centric",
                  expect = (outcome = (exception = "null")))]),
    (label = "the device behind smmu1: the misbinding surfaces only now",
     attach = (ownership = "$o1", domain = "$shared"),
     expect = (outcome = (errno = eInval)),
     whenImpl = [(impl = "domain_allocator/device_centric",
                  expect = (outcome = (exception = "null")))]),

    # ---- "For a group" whose first device is behind smmu1: the same silent choice.
    (label = "a domain 'for a group' listing smmu1's device first",
     allocPaging = (target = (group = ["0001:01:00.0", "0000:01:00.0"])), saveAs = "byGroup",
     whenImpl = [(impl = "domain_allocator/device_centric", expect = (outcome = (errno = eInval)))]),
    (call = (target = "$byGroup", method = "info"),
     expect = (fields = [(path = "info.smmu", equals = "\"smmu1\"")]),
     whenImpl = [(impl = "domain_allocator/device_centric",
                  expect = (outcome = (exception = "null")))]),

    # ---- What works on both: a domain per device, named at allocation.
    (label = "device-centric allocation: one domain per SMMU instance",
     allocPaging = (target = (device = "0000:01:00.0")), saveAs = "d0"),
    (allocPaging = (target = (device = "0001:01:00.0")), saveAs = "d1"),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x2000)", result = "runs.0.pa"),
     saveAs = "buffer"),
    (call = (target = "$d0", method = "map",
             args = "(runs = [(iova = 0x100000, pa = $buffer, size = 0x1000, prot = (read = true, write = true))])")),
    (call = (target = "$d1", method = "map",
             args = "(runs = [(iova = 0x100000, pa = $buffer, size = 0x2000, prot = (read = true, write = true))])")),
    (replace = (ownership = "$o0", domain = "$d0")),
    (attach = (ownership = "$o1", domain = "$d1")),
    (label = "each device's DMA lands through its own SMMU",
     dma = (endpoint = "ep0", iova = 0x100010, write = true, data = "smmu0")),
    (dma = (endpoint = "ep1", iova = 0x100010, length = 5), expect = (value = "\"smmu0\"")),
    (dma = (endpoint = "ep1", iova = 0x101000, write = true, data = "smmu1")),
    (label = "a domain of one SMMU refuses a device of the other",
     replace = (ownership = "$o0", domain = "$d1"), expect = (outcome = (errno = eInval))),

    (label = "where each design failed",
     check = void,
     expect = (counters = [(instance = "groups", counter = "attach_errors", equals = 1),
                           (instance = "domains", counter = "alloc_errors", equals = 0)]),
     whenImpl = [(impl = "domain_allocator/device_centric",
                  expect = (counters = [(instance = "groups", counter = "attach_errors", equals = 0),
                                        (instance = "domains", counter = "alloc_errors", equals = 2)]))]),
  ],
);
