#!/usr/bin/env bash
# Fetch the prometheus-operator CRDs (monitoring.coreos.com: ServiceMonitor, PrometheusRule,
# ...) of the release pinned in tools/prometheus-operator-crds/go.mod, for the cluster tier:
# installed on its API server, they let a server-side dry run validate the chart's
# monitoring objects against their real schemas.
#
# They come from the published Go module (its example/prometheus-operator-crd folder), which
# `go mod download` fetches from the module proxy and checks against go.sum. They go to a
# cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/prometheus-operator-crds-<VERSION>/
# If they are already there, nothing is fetched. The folder is printed as the last line of
# stdout; progress goes to stderr.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
module=github.com/prometheus-operator/prometheus-operator
pin_dir="$tools_dir/prometheus-operator-crds"

version="$(pinned_version fetch-prometheus-operator-crds "$pin_dir/go.mod" "$module")"
crd_dir="$cache_root/prometheus-operator-crds-$version"

if [[ -f "$crd_dir/.complete" ]]; then
    echo "$crd_dir"
    exit 0
fi

require_tools fetch-prometheus-operator-crds go
lock_build fetch-prometheus-operator-crds
if [[ -f "$crd_dir/.complete" ]]; then
    echo "$crd_dir"
    exit 0
fi

start_staging fetch-prometheus-operator-crds
echo "fetch-prometheus-operator-crds: $module $version -> $crd_dir" >&2
# -json prints the module's unpacked folder (Dir) in the module cache.
module_dir="$(cd "$pin_dir" && go mod download -json "$module" \
    | awk -F'"' '$2 == "Dir" {print $4}')"
source_dir="$module_dir/example/prometheus-operator-crd"
if ! compgen -G "$source_dir/monitoring.coreos.com_*.yaml" >/dev/null; then
    echo "fetch-prometheus-operator-crds: no monitoring.coreos.com_*.yaml in $source_dir" >&2
    exit 1
fi
cp "$source_dir"/monitoring.coreos.com_*.yaml "$staging/"
touch "$staging/.complete"
chmod 755 "$staging"
rm -rf "$crd_dir"
mkdir -p "$(dirname "$crd_dir")"
mv "$staging" "$crd_dir"
trap - EXIT
echo "$crd_dir"
