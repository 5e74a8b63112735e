#!/usr/bin/env bash
# nestbed_study against a remote cache: a Debian-packaged HTTP cache (nginx-light's WebDAV
# module, tools/setup.sh) on 127.0.0.1, and a 4-point study (2 batch sizes x 2 guest paths, as
# //tests/studies:four_points) built twice, each time in a fresh Bazel output base with no disk
# cache: the first run executes its 4 points and the merge (sandboxed) and uploads them; the
# second must execute nothing — every action a remote cache hit — and give the same table.
#
# Run by .ci/run as its own step (a nested Bazel cannot run inside `bazel test`). The study runs
# in a scratch workspace holding tools/study.bzl, the schemas, manifest and scenario, and the
# nestbed and nestbed-host binaries this checkout built: the study's actions are the ones
# //tests/studies builds, and neither run recompiles nestbed. About a minute.
#
# Also exercised here, as far as a cache without an executor allows: --remote_instance_name,
# --remote_header, --remote_timeout, --remote_upload_local_results, --remote_download_toplevel,
# and an execution platform with exec_properties (--platforms/--host_platform/
# --extra_execution_platforms) as a remote executor would be given (README "Studies on a
# remote-execution cluster").
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { echo "remote-cache: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

command -v nginx > /dev/null || die "nginx is not installed (tools/setup.sh installs nginx-light)"
bazel build -c fastbuild //system:nestbed //system:nestbed-host > /dev/null 2>&1 ||
  die "cannot build //system:nestbed"
bin=$(bazel info -c fastbuild bazel-bin 2> /dev/null)

tmp=$(mktemp -d /tmp/nestbed-remote-cache.XXXXXX)
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2> /dev/null
  for ob in "$tmp"/ob1 "$tmp"/ob2; do
    [ -d "$ob" ] && (cd "$tmp/ws" && bazel --nohome_rc --output_base="$ob" shutdown > /dev/null 2>&1)
  done
  chmod -R u+w "$tmp" 2> /dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# ---- the cache: nginx serving GET/PUT under $tmp/cache, on a free port of 127.0.0.1
mkdir -p "$tmp/cache" "$tmp/nginx"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
       echo $((20000 + RANDOM % 20000)))
# Workers run as this user (root's nginx would otherwise drop to nobody, who cannot write here).
user=""
[ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
cat > "$tmp/nginx/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $tmp/nginx/access.log;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$port;
    location / {
      root $tmp/cache;
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
    }
  }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" 2> /dev/null && break
  (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  sleep 0.1
done
kill -0 "$nginx_pid" 2> /dev/null || die "nginx did not start: $(cat "$tmp/nginx/error.log")"
say "HTTP cache on 127.0.0.1:$port (nginx $(nginx -v 2>&1 | sed 's/.*\///'))"

# ---- the scratch workspace
ws=$tmp/ws
mkdir -p "$ws/tools" "$ws/interfaces" "$ws/system/manifests" "$ws/system/scenarios" "$ws/study"
# The workspace's offline stand-ins for the repositories Bazel 4.2.3 would download.
mkdir -p "$ws/third_party"
cp -r third_party/rules_cc third_party/rules_java third_party/remote_coverage_tools "$ws/third_party/"
grep -E '^(workspace|local_repository)\(' WORKSPACE > "$ws/WORKSPACE"
cp tools/study.bzl "$ws/tools/"
# The shipped execution platform (tools/BUILD.bazel), as a remote executor would be given it.
sed -n '/^platform(/,/^)/p' tools/BUILD.bazel > "$ws/tools/BUILD"
grep -q 'name = "debian12"' "$ws/tools/BUILD" || die "tools/BUILD.bazel has no debian12 platform"
cp interfaces/*.capnp "$ws/interfaces/"
echo 'filegroup(name = "schemas", srcs = glob(["*.capnp"]), visibility = ["//visibility:public"])' \
  > "$ws/interfaces/BUILD"
cp system/manifests/guest-native.toml "$ws/system/manifests/"
cp system/scenarios/guest-batches.capnp "$ws/system/scenarios/"
for d in manifests scenarios; do
  echo 'exports_files(glob(["*"]))' > "$ws/system/$d/BUILD"
done
cp "$bin/system/nestbed" "$ws/system/nestbed.bin"
cp "$bin/system/nestbed-host" "$ws/system/nestbed-host.bin"
cat > "$ws/system/BUILD" <<'EOF'
# The binaries the checkout built, as the targets tools/study.bzl runs.
sh_binary(
    name = "nestbed",
    srcs = ["nestbed.bin"],
    data = ["//interfaces:schemas"],
    visibility = ["//visibility:public"],
)

sh_binary(
    name = "nestbed-host",
    srcs = ["nestbed-host.bin"],
    visibility = ["//visibility:public"],
)
EOF
cat > "$ws/study/BUILD" <<'EOF'
load("//tools:study.bzl", "nestbed_study")

nestbed_study(
    name = "four_points",
    figures = ["*one guest batch*"],
    manifests = ["//system/manifests:guest-native.toml"],
    param = "scenario.batch",
    scenarios = ["//system/scenarios:guest-batches.capnp"],
    series = "components.smmu_queue.guest_path",
    series_values = ["native", "sw_vcmdq"],
    values = ["1", "8"],
)
EOF

flags=(
  --disk_cache=
  --remote_cache="http://127.0.0.1:$port"
  --remote_instance_name=nestbed-ci
  --remote_header=x-nestbed-test=remote-cache
  --remote_timeout=60
  --remote_upload_local_results
  --remote_download_toplevel
  --spawn_strategy=sandboxed
  --platforms=//tools:debian12
  --host_platform=//tools:debian12
  --extra_execution_platforms=//tools:debian12
  --jobs=2
)
build() {   # $1: the output base
  (cd "$ws" && bazel --nohome_rc --output_base="$1" build "${flags[@]}" //study:four_points 2>&1)
}
summary() { grep -E '^INFO: [0-9]+ process' <<< "$1" | tail -1; }

say "first build (fresh output base, empty cache)"
first=$(build "$tmp/ob1") || { echo "$first"; die "the first build failed"; }
say "  $(summary "$first")"
cp "$ws/bazel-bin/study/four_points.txt" "$tmp/first.txt" 2> /dev/null ||
  cp "$tmp"/ob1/execroot/nestbed/bazel-out/*/bin/study/four_points.txt "$tmp/first.txt" ||
  die "the first build wrote no table"
(cd "$ws" && bazel --nohome_rc --output_base="$tmp/ob1" shutdown > /dev/null 2>&1)
grep -qE '[0-9]+ (linux-sandbox|processwrapper-sandbox)' <<< "$(summary "$first")" ||
  die "the first build ran no sandboxed action: $(summary "$first")"
puts=$(grep -c '"PUT /ac/' "$tmp/nginx/access.log")
[ "$puts" -ge 5 ] || die "the first build uploaded $puts action results, fewer than 4 points + merge"

say "second build (another fresh output base)"
rm -rf "$ws/bazel-bin" "$ws/bazel-out" "$ws/bazel-ws" "$ws/bazel-testlogs"
second=$(build "$tmp/ob2") || { echo "$second"; die "the second build failed"; }
line=$(summary "$second")
say "  $line"
hits=$(sed -nE 's/.* ([0-9]+) remote cache hit.*/\1/p' <<< "$line")
[ "${hits:-0}" -ge 5 ] || die "the second build had ${hits:-0} remote cache hits, not the 4 points + merge"
if grep -qE '[0-9]+ (linux-sandbox|processwrapper-sandbox|local|remote)([,.]|$)' <<< "$line"; then
  die "the second build executed actions: $line"
fi
cp "$tmp"/ob2/execroot/nestbed/bazel-out/*/bin/study/four_points.txt "$tmp/second.txt" 2> /dev/null ||
  die "the second build did not download the table (--remote_download_toplevel)"
cmp -s "$tmp/first.txt" "$tmp/second.txt" || die "the cached table differs from the first build's"
grep -q 'one guest batch of TLBI_NH_VA' "$tmp/second.txt" || die "the table lacks the study's step"
gets=$(grep -cE '"GET /(ac|cas)/[0-9a-f]+ HTTP/1.1" 200' "$tmp/nginx/access.log")
say "PASS: second build entirely from the cache ($hits remote cache hits, $gets cache reads answered)"
