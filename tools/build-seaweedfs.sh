#!/usr/bin/env bash
# Build SeaweedFS's `weed` (github.com/seaweedfs/seaweedfs, pinned in tools/seaweedfs/go.mod):
# the S3-compatible server of the object-storage tests (tests/storage_servers.py runs
# `weed server -s3` on loopback).
#
# The binary goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/seaweedfs-<VERSION>/bin/weed
# If it is already there, nothing is built. The binary's path is printed as the last line of
# stdout; progress goes to stderr. Settings: PRS_GO_BUILD_FLAGS (default "-p 1").
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/seaweedfs/seaweedfs

version="$(awk -v mod="$module" '$1 == mod && $2 ~ /^v/ {print $2; exit}' \
    "$tools_dir/seaweedfs/go.mod")"
if [[ -z "$version" ]]; then
    echo "build-seaweedfs: cannot read the pinned $module version from tools/seaweedfs/go.mod" >&2
    exit 1
fi

cache_root="${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}"
binary="$cache_root/seaweedfs-$version/bin/weed"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

command -v go >/dev/null || { echo "build-seaweedfs: 'go' is not on PATH" >&2; exit 1; }
mkdir -p "$cache_root"
# One build at a time (parallel test sessions, or a test run racing a manual build).
exec 9>"$cache_root/.build-seaweedfs.lock"
flock 9
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

staging="$(mktemp -d "$cache_root/.build-seaweedfs.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
started=$SECONDS
read -r -a go_flags <<<"${PRS_GO_BUILD_FLAGS:--p 1}"
go_flags+=(-trimpath -buildvcs=false)

echo "build-seaweedfs: weed $version -> $binary (a first build takes many minutes)" >&2
(cd "$tools_dir/seaweedfs" && CGO_ENABLED=0 go build "${go_flags[@]}" -ldflags="-s -w" \
    -o "$staging/weed" "$module/weed")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/weed" "$binary"
echo "build-seaweedfs: built in $((SECONDS - started))s" >&2
echo "$binary"
