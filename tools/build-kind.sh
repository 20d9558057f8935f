#!/usr/bin/env bash
# Build kind (sigs.k8s.io/kind) from its Go module, pinned in tools/kind/go.mod, for
# tools/kind-e2e.sh.
#
# The binary goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/kind-v<KIND>/bin/kind
# If it is already there, nothing is built. The bin directory is printed as the last line of
# stdout; progress goes to stderr. Settings: PRS_GO_BUILD_FLAGS (default "-p 1").
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

kind_version="$(awk '$1 == "sigs.k8s.io/kind" && $2 ~ /^v/ {print $2; exit}' "$tools_dir/kind/go.mod")"
if [[ -z "$kind_version" ]]; then
    echo "build-kind: cannot read the pinned version from tools/kind/go.mod" >&2
    exit 1
fi

cache_root="${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}"
bin_dir="$cache_root/kind-$kind_version/bin"

if [[ -x "$bin_dir/kind" ]]; then
    echo "$bin_dir"
    exit 0
fi

command -v go >/dev/null || { echo "build-kind: 'go' is not on PATH" >&2; exit 1; }
mkdir -p "$cache_root"
exec 9>"$cache_root/.build-kind.lock"
flock 9
if [[ -x "$bin_dir/kind" ]]; then
    echo "$bin_dir"
    exit 0
fi

staging="$(mktemp -d "$cache_root/.build-kind.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
started=$SECONDS
read -r -a go_flags <<<"${PRS_GO_BUILD_FLAGS:--p 1}"
echo "build-kind: kind $kind_version -> $bin_dir" >&2
# kind's Makefile: static, -trimpath, no build id.
(cd "$tools_dir/kind" && CGO_ENABLED=0 go build "${go_flags[@]}" -trimpath -buildvcs=false \
    -ldflags="-buildid= -s -w" -o "$staging/kind" sigs.k8s.io/kind)
mkdir -p "$bin_dir"
mv -f "$staging/kind" "$bin_dir/kind"
echo "build-kind: built in $((SECONDS - started))s" >&2
echo "$bin_dir"
