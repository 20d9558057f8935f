#!/usr/bin/env bash
# Build the control plane used by the cluster test tier (tests/cluster): etcd,
# kube-apiserver, kube-controller-manager and kubectl, from the published Go modules
# pinned in tools/k8s/go.mod and tools/etcd/go.mod.
#
# The binaries go to a cache OUTSIDE the repository, keyed by the pinned versions:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/k8s-v<K8S>-etcd-v<ETCD>/bin/
# If all four binaries are already there, nothing is built. The bin directory is printed
# as the last line of stdout; progress goes to stderr.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

k8s_version="$(pinned_version build-control-plane "$tools_dir/k8s/go.mod" k8s.io/kubernetes)"
etcd_version="$(pinned_version build-control-plane "$tools_dir/etcd/go.mod" go.etcd.io/etcd/server/v3)"

bin_dir="$cache_root/k8s-$k8s_version-etcd-$etcd_version/bin"

all_built() {
    local name
    for name in "${binaries[@]}"; do
        [[ -x "$bin_dir/$name" ]] || return 1
    done
}

if all_built; then
    echo "$bin_dir"
    exit 0
fi

require_tools build-control-plane go
lock_build build-control-plane
if all_built; then
    echo "$bin_dir"
    exit 0
fi

start_staging build-control-plane
build_flags=(-trimpath -buildvcs=false -ldflags=-s\ -w)

echo "build-control-plane: etcd $etcd_version -> $bin_dir" >&2
(cd "$tools_dir/etcd" && go build "${build_flags[@]}" -o "$staging/etcd" go.etcd.io/etcd/server/v3)

# Stamp the version as Kubernetes' own build does (hack/lib/version.sh): without it the
# binaries call themselves v0.0.0-master, which e.g. Helm's kubeVersion constraints reject.
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
version_flags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
echo "build-control-plane: Kubernetes $k8s_version (kube-apiserver, kube-controller-manager, kubectl)" >&2
(cd "$tools_dir/k8s" && go build -trimpath -buildvcs=false -ldflags="-s -w$version_flags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl)

mkdir -p "$bin_dir"
for name in "${binaries[@]}"; do
    mv -f "$staging/$name" "$bin_dir/$name"
done
echo "build-control-plane: built in $((SECONDS - started))s" >&2
echo "$bin_dir"
