#!/usr/bin/env bash
# tests/bench/linux-peer: `bazel run -c opt //tests/bench:pt_vs_linux [-- --linux-src DIR]`.
#
# Builds the Linux peer and runs the benchmark against it:
#  1. Linux's sources: DIR from --linux-src or $NESTBED_LINUX_SRC, else
#     ${XDG_CACHE_HOME:-~/.cache}/nestbed/linux-source-6.12. If DIR lacks them, they are extracted
#     there from Debian's linux-source-6.12 (/usr/src/linux-source-6.12.tar.xz), which is
#     installed with apt-get first if missing (root only; otherwise the script says what to run).
#     Only io-pgtable-arm.c, io-pgtable-arm.h, io-pgtable.c and include/linux/io-pgtable.h are
#     extracted; nothing of Linux is ever written into the repository.
#  2. The peer: those two .c files compiled unmodified with the system C compiler (gnu11, -O2,
#     the kernel's -fno-strict-aliasing) against the shim headers (shim/), plus peer.c, into a
#     shared object in a temporary directory.
#  3. pt_vs_linux_bench --peer that.so, which prints the figures.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runfiles=${RUNFILES_DIR:-${BASH_SOURCE[0]}.runfiles}
if [ -d "$runfiles/nestbed" ]; then
  root="$runfiles/nestbed"
elif [ -f "$here/shim/nb-linux-shim.h" ]; then
  root=$(cd "$here/../../.." && pwd)  # run from a checkout
else
  root=$PWD
fi
peer_dir="$root/tests/bench/linux-peer"
bench="$root/tests/bench/pt_vs_linux_bench"
[ -x "$bench" ] || bench="$root/bazel-bin/tests/bench/pt_vs_linux_bench"  # from a checkout
if [ ! -x "$bench" ]; then
  echo "pt_vs_linux: no pt_vs_linux_bench next to this script or in bazel-bin;" \
       "run 'bazel run -c opt //tests/bench:pt_vs_linux'" >&2
  exit 2
fi

src=${NESTBED_LINUX_SRC:-${XDG_CACHE_HOME:-$HOME/.cache}/nestbed/linux-source-6.12}
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --linux-src) src=$2; shift 2 ;;
    --linux-src=*) src=${1#--linux-src=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

# `bazel run` starts in the runfiles tree: a relative DIR means the caller's directory.
if [[ "$src" != /* && -n "${BUILD_WORKING_DIRECTORY:-}" ]]; then
  src="$BUILD_WORKING_DIRECTORY/$src"
fi

files=(drivers/iommu/io-pgtable-arm.c drivers/iommu/io-pgtable-arm.h drivers/iommu/io-pgtable.c
       include/linux/io-pgtable.h)
have_sources() {
  local f
  for f in "${files[@]}"; do [ -f "$src/$f" ] || return 1; done
}

if ! have_sources; then
  tarball=/usr/src/linux-source-6.12.tar.xz
  if [ ! -f "$tarball" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "pt_vs_linux: Linux's sources are not in $src and $tarball is missing;" \
           "run 'apt-get install linux-source-6.12' as root, or pass --linux-src DIR" >&2
      exit 2
    fi
    echo "pt_vs_linux: installing Debian's linux-source-6.12 (apt-get)" >&2
    apt-get install -y -q linux-source-6.12 >&2 || {
      echo "pt_vs_linux: apt-get install linux-source-6.12 failed" >&2
      exit 2
    }
  fi
  echo "pt_vs_linux: extracting ${#files[@]} files of $tarball into $src" >&2
  mkdir -p "$src"
  tar -xJf "$tarball" -C "$src" --strip-components=1 "${files[@]/#/linux-source-6.12/}"
  have_sources || { echo "pt_vs_linux: $tarball lacks the io-pgtable files" >&2; exit 2; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nestbed-linux-peer.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc=${CC:-cc}
cflags=(-std=gnu11 -O2 -fPIC -fvisibility=hidden -fno-strict-aliasing -fno-common
        -DCONFIG_IOMMU_IO_PGTABLE_LPAE -I"$peer_dir/shim" -I"$peer_dir" -I"$src/include")
for c in "$src/drivers/iommu/io-pgtable-arm.c" "$src/drivers/iommu/io-pgtable.c" \
         "$peer_dir/peer.c"; do
  "$cc" "${cflags[@]}" -c "$c" -o "$work/$(basename "$c" .c).o"
done
"$cc" -shared -o "$work/linux-peer.so" "$work"/*.o
echo "pt_vs_linux: peer built from $src with $("$cc" --version | head -1)" >&2

"$bench" --peer "$work/linux-peer.so" "${args[@]+"${args[@]}"}"
