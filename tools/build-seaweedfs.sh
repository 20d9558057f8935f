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

source "$tools_dir/build-common.sh"
binary="$cache_root/seaweedfs-$version/bin/weed"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

require_tools build-seaweedfs go
lock_build build-seaweedfs
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

start_staging build-seaweedfs

echo "build-seaweedfs: weed $version -> $binary (a first build takes many minutes)" >&2
(cd "$tools_dir/seaweedfs" && CGO_ENABLED=0 go build "${go_flags[@]}" -ldflags="-s -w" \
    -o "$staging/weed" "$module/weed")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/weed" "$binary"
echo "build-seaweedfs: built in $((SECONDS - started))s" >&2
echo "$binary"
