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
module=github.com/fsouza/fake-gcs-server

version="$(awk -v mod="$module" '$1 == mod && $2 ~ /^v/ {print $2; exit}' \
    "$tools_dir/fake-gcs-server/go.mod")"
if [[ -z "$version" ]]; then
    echo "build-fake-gcs-server: cannot read the pinned $module version" \
        "from tools/fake-gcs-server/go.mod" >&2
    exit 1
fi

cache_root="${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}"
binary="$cache_root/fake-gcs-server-$version/bin/fake-gcs-server"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

command -v go >/dev/null || { echo "build-fake-gcs-server: 'go' is not on PATH" >&2; exit 1; }
mkdir -p "$cache_root"
# One build at a time (parallel test sessions, or a test run racing a manual build).
exec 9>"$cache_root/.build-fake-gcs-server.lock"
flock 9
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

staging="$(mktemp -d "$cache_root/.build-fake-gcs-server.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
started=$SECONDS
read -r -a go_flags <<<"${PRS_GO_BUILD_FLAGS:--p 1}"
go_flags+=(-trimpath -buildvcs=false)

echo "build-fake-gcs-server: fake-gcs-server $version -> $binary" >&2
(cd "$tools_dir/fake-gcs-server" && CGO_ENABLED=0 go build "${go_flags[@]}" -ldflags="-s -w" \
    -o "$staging/fake-gcs-server" "$module")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/fake-gcs-server" "$binary"
echo "build-fake-gcs-server: built in $((SECONDS - started))s" >&2
echo "$binary"
