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
source "$tools_dir/build-common.sh"
module=github.com/seaweedfs/seaweedfs

version="$(pinned_version build-seaweedfs "$tools_dir/seaweedfs/go.mod" "$module")"

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
