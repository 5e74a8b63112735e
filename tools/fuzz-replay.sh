#!/usr/bin/env bash
# One test of nb_fuzz_target (tools/defs.bzl): runs a fuzz target once over every input of its
# seed corpus (crashes found earlier included). Under the normal build the target is the corpus
# replayer (tests/fuzz/replay-main.c++); under --config=fuzz it is libFuzzer, which runs each
# file given as an argument once. Arguments: the target, then the corpus files.
set -u
target="$1"
shift
exec "$target" "$@"
