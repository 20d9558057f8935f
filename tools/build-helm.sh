#!/usr/bin/env bash
# Build the helm CLI from Helm's published Go module, pinned in tools/helm/go.mod, for the
# chart tier (tests/chart) and the cluster tier's chart tests.
#
# The binary goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/helm-<VERSION>/bin/helm
# If it is already there, nothing is built. The binary's path is printed as the last line
# of stdout; progress goes to stderr.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
module=helm.sh/helm/v4

helm_version="$(pinned_version build-helm "$tools_dir/helm/go.mod" "$module")"

binary="$cache_root/helm-$helm_version/bin/helm"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

require_tools build-helm go
lock_build build-helm
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

start_staging build-helm

# Stamp the version as Helm's own Makefile does for a tagged build; without it the binary
# reports only its minor version.
version_pkg="$module/internal/version"
ldflags="-s -w -X $version_pkg.version=$helm_version -X $version_pkg.metadata="
ldflags+=" -X $version_pkg.gitTreeState=clean"
echo "build-helm: helm $helm_version -> $binary" >&2
(cd "$tools_dir/helm" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="$ldflags" \
    -o "$staging/helm" "$module/cmd/helm")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/helm" "$binary"
echo "build-helm: built in $((SECONDS - started))s" >&2
echo "$binary"
