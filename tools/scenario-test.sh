#!/usr/bin/env bash
# One test of nestbed_scenario_test (tools/defs.bzl): `nestbed run` on a manifest and a
# scenario, every step a test case in Bazel's JUnit XML ($XML_OUTPUT_FILE). Arguments: the
# nestbed binary, then what `nestbed run` takes.
set -u
nestbed="$1"
shift
if [ -n "${XML_OUTPUT_FILE:-}" ]; then
  exec "$nestbed" run --junit "$XML_OUTPUT_FILE" "$@"
fi
exec "$nestbed" run "$@"
