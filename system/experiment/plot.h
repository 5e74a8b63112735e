// `--plot FILE.svg`: figures of an ExperimentReport drawn by gnuplot.
//
// Owns: choosing what to draw and the gnuplot scripts. compare: horizontal bars of B/A per
// step (time per iteration), and a second panel for the counters that differ. sweep: chosen
// figures (steps and counters) against the swept value, median with min-max error bars; a
// numeric value gets a numeric axis (logarithmic base 2 when it spans 16x or more), anything
// else one tick per value. Does not own: the numbers (measurements.h).

#pragma once

#include "interfaces/report.capnp.h"

#include <kj/string.h>

namespace nb::experiment {

// gnuplot's path on $PATH, or null.
kj::Maybe<kj::String> findGnuplot();

// The gnuplot script drawing `report` into `svgPath`. For a sweep, `figures` selects rows by
// their display name (measurements.h rowName(), without indentation) with `*` wildcards, e.g.
// "smmu0.cmdq_consumed", "*.capnp:42 *", "smmu0.iotlb_*"; empty chooses the slowest top-level
// steps and the first counters that differ between values (8 of each, divided among the series
// values: each figure is drawn once per series value).
kj::String plotScript(rpc::ExperimentReport::Reader report, kj::StringPtr svgPath,
                      kj::ArrayPtr<const kj::String> figures = nullptr);

// Runs gnuplot on `script`: null, or what went wrong.
kj::Maybe<kj::String> runGnuplot(kj::StringPtr gnuplot, kj::StringPtr script);

// The figures a sweep plot shows (for messages and tests): display names.
kj::Array<kj::String> chosenFigures(rpc::ExperimentReport::Reader report,
                                    kj::ArrayPtr<const kj::String> figures);

}  // namespace nb::experiment
