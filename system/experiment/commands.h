// `nestbed compare` and `nestbed sweep`: the experiments behind the CLI's argument parsing.
//
// Owns: validating an experiment before anything runs (manifests with every override and
// every swept value, scenario files, gnuplot for --plot), the order of runs (interleaved so
// slow drift of the machine spreads over the variants alike), progress, and the outputs (text,
// --json, --csv, --plot, --trace). Does not own: one run (session.h), the statistics
// (measurements.h), figures (plot.h) or the trace (trace.h).
//
// Exit status: 0 every run of every variant passed; 1 a scenario failed or a composition did
// not start (the message names the side or value); 2 bad input — an unreadable or invalid
// manifest, a bad --set or --param (an unknown key is named), a scenario file that does not
// parse or does not fit a manifest, an unwritable output, --plot without gnuplot.

#pragma once

#include "system/script/scenario-file.h"

#include "system/composer/manifest.h"

namespace nb::experiment {

struct ExperimentOptions {
  const Registry& registry;
  kj::String hostBinary;
  kj::Vector<Override> overrides;      // --set, applied to every run
  kj::Vector<ScenarioParam> defines;   // --define, scenario parameters of every run
  uint32_t repeats = 0;                // 0: the command's default (1; compare --wall: 3)
  bool wall = false;                   // steps in wall time, not modeled time
  bool json = false;
  kj::Maybe<kj::String> csv;
  kj::Maybe<kj::String> plot;
  kj::Maybe<kj::String> plotScript;    // --plot-script: the gnuplot script --plot runs, kept
  kj::Maybe<kj::String> trace;
  kj::Vector<kj::String> figures;      // sweep --figure patterns (plot.h)
  // --point N --out FILE: run only the experiment's N-th run (0-based, in the order the command
  // runs them: every variant of round 1, then of round 2, ...) and write its record
  // (rpc::ExperimentPoint as JSON) to FILE instead of printing a table: one action per point
  // (tools/study.bzl), `merge` builds the table from the records.
  kj::Maybe<uint32_t> point;
  kj::Maybe<kj::String> out;
};

// nestbed's one exit-status contract, every subcommand alike: 0 success; 1 a run failed, or what
// the command names is invalid (a manifest — under its overrides —, a scenario, a parameter, an
// instance or method); 2 the command line itself is wrong (unknown option, missing or malformed
// argument, an output that cannot be written, --plot without gnuplot).
constexpr int EXIT_OK = 0;
constexpr int EXIT_FAILED = 1;
constexpr int EXIT_INVALID = 1;
constexpr int EXIT_USAGE = 2;

int compare(ExperimentOptions& options, kj::StringPtr manifestA, kj::StringPtr manifestB,
            kj::ArrayPtr<const kj::String> scenarios);

// `param` is "key=v1,v2,...": commas inside brackets or quotes do not split (TOML arrays).
// `series`, if not null, is a second "key=v1,v2,...": every value of `param` runs once per series
// value, and plots draw one line per series value (an implementation across the swept values).
int sweep(ExperimentOptions& options, kj::StringPtr manifest, kj::ArrayPtr<const kj::String> scenarios,
          kj::StringPtr param, kj::StringPtr series = nullptr);

// The table (text, or --json), --csv and --plot of the experiment whose points (ExperimentPoint
// JSON files, as `--point N --out FILE` writes them) are `paths`: what the experiment's own
// command prints for the same runs. Exit 0 when every run passed, 1 when one failed or a point is
// missing, duplicated, unreadable or from another experiment (named), 2 for an unwritable output.
int merge(ExperimentOptions& options, kj::ArrayPtr<const kj::String> paths);

// "key=v1,v2,..." split; null if there is no '=' or no value.
struct SweepParam {
  kj::String key;
  kj::Array<kj::String> values;
};
kj::Maybe<SweepParam> parseSweepParam(kj::StringPtr text);

}  // namespace nb::experiment
