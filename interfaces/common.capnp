@0xb1c43a8f5d2e7a01;
# Types every nestbed interface shares: Linux errno values, named counters, typed results.
# Design stance: expected outcomes (a refused map, a fault) are data in results, never RPC
# exceptions; exceptions mean a broken contract or a dead peer.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

enum Errno {
  # Linux errno meanings (include/uapi/asm-generic/errno-base.h); `ok` stands for 0.
  # C++ names are E_PERM, E_INVAL, ... (the bare names are libc macros).
  ok @0;
  ePerm @1;       # not the owner (DMA ownership held by someone else)
  eNoEnt @2;      # no such object
  eIo @3;         # invalid data from a guest (vSTE, guest command)
  eNoMem @4;      # out of memory (frames, IDs)
  eBusy @5;       # resource in use (group not on its default domain, pinned range)
  eExist @6;      # already exists (mapping over a leaf, duplicate vSID)
  eInval @7;      # invalid argument
  eNoSpc @8;      # no space left (ID space exhausted)
  eRange @9;      # out of range (IOVA or PA beyond the table's IAS/OAS)
  eOpNotSupp @10; # operation not supported (DIRTY + NEST_PARENT)
  eTimedOut @11;  # a CMD_SYNC that never completed
  eOverflow @12;  # a queue overflowed
  eFault @13;     # bad address (a guest pointer outside guest memory)
  eNoDev @14;     # no such device
}

struct Status {
  # The outcome of an operation that mirrors a Linux API: an errno and a human reason.
  errno @0 :Errno;
  message @1 :Text;   # what was wrong and where; empty when errno is `ok`
}

struct Counter {
  # One named statistic. Names are `snake_case`, stable across runs; deterministic counters
  # (counts of operations) are kept apart from timings so runs can be compared exactly.
  name @0 :Text;
  value @1 :UInt64;
}
