#!/usr/bin/env bash
# Build fake-gcs-server (github.com/fsouza/fake-gcs-server, pinned in
# tools/fake-gcs-server/go.mod): the Google Cloud Storage emulator of the object-storage tests
# (tests/storage_servers.py).
#
# The binary goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/fake-gcs-server-<VERSION>/bin/fake-gcs-server
# If it is already there, nothing is built. The binary's path is printed as the last line of
# stdout; progress goes to stderr. Settings: PRS_GO_BUILD_FLAGS (default "-p 1").
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
module=github.com/fsouza/fake-gcs-server

version="$(pinned_version build-fake-gcs-server "$tools_dir/fake-gcs-server/go.mod" "$module")"

binary="$cache_root/fake-gcs-server-$version/bin/fake-gcs-server"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

require_tools build-fake-gcs-server go
lock_build build-fake-gcs-server
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

start_staging build-fake-gcs-server

echo "build-fake-gcs-server: fake-gcs-server $version -> $binary" >&2
(cd "$tools_dir/fake-gcs-server" && CGO_ENABLED=0 go build "${go_flags[@]}" -ldflags="-s -w" \
    -o "$staging/fake-gcs-server" "$module")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/fake-gcs-server" "$binary"
echo "build-fake-gcs-server: built in $((SECONDS - started))s" >&2
echo "$binary"
