#!/usr/bin/env bash
# Generate a chart's README.md with helm-docs (built by tools/build-helm-docs.sh) from its
# README.md.gotmpl, Chart.yaml and the `# --` comments of its values.yaml.
#   tools/chart-readme.sh [CHART_DIR]   (default: helm/parallelrun-operator)
# `make chart-readme` runs it on the chart; tests/chart runs it on a copy and compares.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chart_dir="${1:-$tools_dir/../helm/parallelrun-operator}"
if [[ ! -f "$chart_dir/Chart.yaml" ]]; then
    echo "chart-readme: $chart_dir has no Chart.yaml; pass the chart's folder" >&2
    exit 1
fi
helm_docs="$(bash "$tools_dir/build-helm-docs.sh" | tail -n 1)"
# Values in values.yaml's order (grouped as a reader meets them), not sorted by name.
"$helm_docs" --chart-search-root "$chart_dir" --sort-values-order file --log-level warning
