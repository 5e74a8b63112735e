#!/usr/bin/env bash
# Bazel's workspace status command (.bazelrc: --workspace_status_command): the checkout's git
# commit, "-dirty" when the work tree has changes, for `nestbed --version` and every report's
# provenance (//system:version). STABLE_ keys rebuild what reads them when they change.
cd "$(dirname "$0")/.." || exit 1
if commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  if ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit-dirty"; fi
else
  commit="unknown"   # not a git checkout (a source archive)
fi
echo "STABLE_NESTBED_COMMIT $commit"
