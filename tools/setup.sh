#!/usr/bin/env bash
# Installs what nestbed needs from Debian's archive, if missing. Idempotent: quiet and fast
# when everything is present.
set -euo pipefail

packages=(
  bazel-bootstrap      # Bazel 4.2.3, the only Bazel that installs offline
  capnproto            # capnp compiler and capnpc-c++
  libcapnp-dev         # Cap'n Proto + KJ 0.9.2 headers and libraries
  catch2               # Catch2 2.13
  libtomlplusplus-dev  # toml++ 3.3
  g++
  clang-14             # --config=fuzz: the fuzz targets (tools/fuzz.sh)
  libclang-rt-14-dev   # libFuzzer and clang's sanitizer runtimes
  graphviz             # `nestbed graph | dot -Tsvg`
  gnuplot-nox          # plots of compare/sweep results
  nginx-light          # tests/remote-cache.sh: an HTTP (WebDAV) remote cache on 127.0.0.1
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
