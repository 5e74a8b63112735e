// Loading a scenario file: Cap'n Proto text parsed at run time with capnp::SchemaParser.
//
// Owns: finding the schema import path (the workspace's interfaces/ and /usr/include), parsing,
// collecting every parse error with file/line/column, reading the `scenario` constant, and
// locating each step's line in the source (the parsed value carries no positions). Does not
// own: semantic checks against a composed system, or running (runner.h).

#pragma once

#include "interfaces/scenario.capnp.h"

#include <capnp/schema-parser.h>
#include <kj/filesystem.h>
#include <kj/one-of.h>
#include <kj/vector.h>

namespace nb {

struct ScenarioError {
  kj::String file;
  uint32_t line;     // 1-based; 0 when the error is about the file as a whole
  uint32_t column;   // 1-based
  kj::String message;
};
kj::String KJ_STRINGIFY(const ScenarioError& e);

struct ScenarioParam {
  // A scenario parameter: `${name}` in the file's text becomes `value` before parsing
  // (`${name:-default}` when none is given). `nestbed run --define name=value`, and
  // `nestbed sweep --param scenario.name=v1,v2`.
  kj::String name;
  kj::String value;
};

struct LoadedScenario {
  kj::String file;
  kj::Own<capnp::SchemaParser> parser;  // owns the parsed constant
  rpc::Scenario::Reader scenario;
  kj::Array<uint32_t> stepLines;        // 1-based line of every step, in pre-order
  kj::Array<kj::String> parameters;     // the names `${name}` refers to, in order, once each
};

// Every given parameter that none of `scenarios` refers to, as an error naming it (with a
// did-you-mean among the names they do refer to). A misspelled `--define` or
// `sweep --param scenario.<name>` would otherwise run identical variants.
kj::Array<kj::String> unusedParams(kj::ArrayPtr<const LoadedScenario> scenarios,
                                   kj::ArrayPtr<const ScenarioParam> params);

class ScenarioLoader {
public:
  // `root` is the directory holding interfaces/*.capnp (the workspace or a runfiles tree).
  explicit ScenarioLoader(kj::StringPtr root);
  // The root found from $NESTBED_ROOT, the runfiles tree ($RUNFILES_DIR, $TEST_SRCDIR, or the
  // one beside the executable, so `bazel-bin/system/nestbed` works from any directory), or
  // the working directory.
  static kj::String defaultRoot();
  // The path the program was started as (argv[0]): its runfiles tree is beside it.
  static void setProgramPath(kj::StringPtr argv0);

  kj::OneOf<LoadedScenario, kj::Array<ScenarioError>> load(
      kj::StringPtr path, kj::ArrayPtr<const ScenarioParam> params = nullptr);

private:
  kj::Own<kj::Filesystem> fs_;
  kj::Own<const kj::ReadableDirectory> root_;
  kj::Own<const kj::ReadableDirectory> system_;
  const kj::ReadableDirectory* importPath_[2];
};

// The 1-based line of each element of every `steps = [...]` list in Cap'n Proto text, in
// pre-order (the order a depth-first walk of the parsed steps visits them).
kj::Array<uint32_t> scanStepLines(kj::StringPtr text);

}  // namespace nb
