#!/usr/bin/env bash
# Build kind (sigs.k8s.io/kind, pinned in tools/kind/go.mod) for tools/kind-e2e.sh, and crictl
# (sigs.k8s.io/cri-tools, pinned in tools/crictl/go.mod) for the kind node image of
# tools/build-kind-node.sh (`kind load` asks crictl which images a node already has).
#
# The binaries go to a cache OUTSIDE the repository, keyed by the pinned versions:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/kind-v<KIND>-crictl-v<CRICTL>/bin/{kind,crictl}
# If both are already there, nothing is built. The bin directory is printed as the last line
# of stdout; progress goes to stderr. Settings: PRS_GO_BUILD_FLAGS (default "-p 1").
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"

kind_version="$(pinned_version build-kind "$tools_dir/kind/go.mod" sigs.k8s.io/kind)"
crictl_version="$(pinned_version build-kind "$tools_dir/crictl/go.mod" sigs.k8s.io/cri-tools)"

bin_dir="$cache_root/kind-$kind_version-crictl-$crictl_version/bin"

all_built() { [[ -x "$bin_dir/kind" && -x "$bin_dir/crictl" ]]; }

if all_built; then
    echo "$bin_dir"
    exit 0
fi

require_tools build-kind go
lock_build build-kind
if all_built; then
    echo "$bin_dir"
    exit 0
fi

start_staging build-kind
# Both static, without build ids, as kind's and cri-tools' Makefiles build them.
if [[ ! -x "$bin_dir/kind" ]]; then
    echo "build-kind: kind $kind_version" >&2
    (cd "$tools_dir/kind" && CGO_ENABLED=0 go build "${go_flags[@]}" -ldflags="-buildid= -s -w" \
        -o "$staging/kind" sigs.k8s.io/kind)
fi
if [[ ! -x "$bin_dir/crictl" ]]; then
    echo "build-kind: crictl $crictl_version" >&2
    (cd "$tools_dir/crictl" && CGO_ENABLED=0 go build "${go_flags[@]}" \
        -ldflags="-buildid= -s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version" \
        -o "$staging/crictl" sigs.k8s.io/cri-tools/cmd/crictl)
fi
mkdir -p "$bin_dir"
for name in kind crictl; do
    if [[ -e "$staging/$name" ]]; then
        mv -f "$staging/$name" "$bin_dir/$name"
    fi
done
echo "build-kind: built in $((SECONDS - started))s" >&2
echo "$bin_dir"
