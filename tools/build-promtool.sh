#!/usr/bin/env bash
# Build promtool from Prometheus' published Go module, pinned in tools/promtool/go.mod, for
# the chart tier: `promtool check rules` on the chart's PrometheusRule
# (tests/chart/test_chart_monitoring.py).
#
# The binary goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/promtool-<VERSION>/bin/promtool
# If it is already there, nothing is built. The binary's path is printed as the last line
# of stdout; progress goes to stderr.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
module=github.com/prometheus/prometheus

version="$(pinned_version build-promtool "$tools_dir/promtool/go.mod" "$module")"
binary="$cache_root/promtool-$version/bin/promtool"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

require_tools build-promtool go
lock_build build-promtool
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

start_staging build-promtool

echo "build-promtool: promtool $version -> $binary" >&2
# remove_all_sd: checking and testing rules needs none of Prometheus' service discoveries,
# whose cloud SDKs are most of the build (13 min of CPU with them, 6 without).
(cd "$tools_dir/promtool" && CGO_ENABLED=0 go build "${go_flags[@]}" -tags remove_all_sd -ldflags="-s -w" \
    -o "$staging/promtool" "$module/cmd/promtool")

mkdir -p "$(dirname "$binary")"
mv -f "$staging/promtool" "$binary"
echo "build-promtool: built in $((SECONDS - started))s" >&2
echo "$binary"
