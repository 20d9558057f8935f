#!/usr/bin/env bash
# Build helm-docs from its published Go module, pinned in tools/helm-docs/go.mod, to generate
# the chart's README (`make chart-readme`) and to check it in the chart tier (tests/chart).
#
# The binary goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/helm-docs-<VERSION>/bin/helm-docs
# If it is already there, nothing is built. The binary's path is printed as the last line
# of stdout; progress goes to stderr.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
module=github.com/norwoodj/helm-docs

version="$(pinned_version build-helm-docs "$tools_dir/helm-docs/go.mod" "$module")"

binary="$cache_root/helm-docs-$version/bin/helm-docs"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

require_tools build-helm-docs go
lock_build build-helm-docs
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

start_staging build-helm-docs

# Stamp the version as helm-docs' own release build does (goreleaser sets main.version);
# without it `helm-docs --version` and the README's footer carry no version.
echo "build-helm-docs: helm-docs $version -> $binary" >&2
(cd "$tools_dir/helm-docs" && CGO_ENABLED=0 go build "${go_flags[@]}" \
    -ldflags="-s -w -X main.version=${version#v}" -o "$staging/helm-docs" "$module/cmd/helm-docs")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/helm-docs" "$binary"
echo "build-helm-docs: built in $((SECONDS - started))s" >&2
echo "$binary"
