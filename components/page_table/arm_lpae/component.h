// components/page_table/arm_lpae: the page_table component's registry entry. The RPC face
// (interfaces/page-table.capnp) over the io-pgtable-arm engine (io-page-table.h).
#pragma once

#include "system/runtime/contract.h"

namespace nb::pt {

ComponentType pageTableType();
// "page_table/arm_lpae". Settings: partial_unmap = "refuse" | "split" | "whole_leaf".

// How many table pages mapping one run into an empty table can need, at most: the engine's
// greedy largest-block split, counted per level. Exposed for tests.
struct Geometry;
uint64_t tablesForRun(const Geometry& geometry, uint64_t iova, uint64_t pa, uint64_t size);

}  // namespace nb::pt
