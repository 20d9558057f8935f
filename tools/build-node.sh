#!/usr/bin/env bash
# Build what a real node of the cluster test tier (tests/cluster/real_node.py) runs, from the
# published Go modules pinned in tools/k8s, tools/containerd and tools/coredns:
#   kubelet, kube-scheduler, kube-proxy (k8s.io/kubernetes, as tools/build-control-plane.sh),
#   kubeadm (the same module; only the kind node image of tools/build-kind-node.sh uses it),
#   containerd, ctr, containerd-shim-runc-v2 (github.com/containerd/containerd/v2),
#   coredns (github.com/coredns/coredns),
#   images/pause.tar: the sandbox image localhost/prs-pause:1, an OCI archive made by
#   tools/oci_image.py from a static build of tools/pause/pause.c.
# runc and the CNI plugins (/usr/lib/cni) come from Debian: apt-get installs runc and
# containernetworking-plugins when missing (also conntrack and iptables for kube-proxy, socat
# and iproute2 for tests/cluster/real_node.py, gcc and libc6-dev for the pause binary).
#
# Everything goes to a cache OUTSIDE the repository, keyed by the pinned versions:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/node-k8s-v<K8S>-containerd-v<C>-coredns-v<D>/bin/
# If everything is already there, nothing is built. The bin directory is printed as the last
# line of stdout (the pause image is ../images/pause.tar from it); progress goes to stderr.
# Settings: PRS_GO_BUILD_FLAGS (default "-p 1": the machine has 2 cores, other work runs).
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
binaries=(kubelet kube-scheduler kube-proxy kubeadm containerd ctr containerd-shim-runc-v2 coredns)

k8s_version="$(pinned_version build-node "$tools_dir/k8s/go.mod" k8s.io/kubernetes)"
containerd_version="$(pinned_version build-node "$tools_dir/containerd/go.mod" github.com/containerd/containerd/v2)"
coredns_version="$(pinned_version build-node "$tools_dir/coredns/go.mod" github.com/coredns/coredns)"
pause_hash="$(cat "$tools_dir/pause/pause.c" "$tools_dir/oci_image.py" | sha256sum | cut -c1-12)"

node_dir="$cache_root/node-k8s-$k8s_version-containerd-$containerd_version-coredns-$coredns_version"
bin_dir="$node_dir/bin"
pause_image="$node_dir/images/pause-$pause_hash.tar"

debian_packages() {  # what the node needs from Debian, missing ones are printed
    [[ -x /usr/sbin/runc ]] || echo runc
    [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback \
        && -x /usr/lib/cni/portmap ]] || echo containernetworking-plugins
    command -v conntrack >/dev/null || echo conntrack
    command -v iptables >/dev/null || echo iptables
    command -v socat >/dev/null || echo socat  # the nodes' relay to the API server
    command -v ip >/dev/null || echo iproute2
    command -v gcc >/dev/null || echo gcc
    [[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/$(uname -m)-linux-gnu/libc.a ]] \
        || echo libc6-dev
}

all_built() {
    local name
    for name in "${binaries[@]}"; do
        [[ -x "$bin_dir/$name" ]] || return 1
    done
    [[ -s "$pause_image" ]] && [[ -z "$(debian_packages)" ]]
}

if all_built; then
    echo "$bin_dir"
    exit 0
fi

lock_build build-node
if all_built; then
    echo "$bin_dir"
    exit 0
fi

missing_packages=($(debian_packages))
if ((${#missing_packages[@]})); then
    echo "build-node: apt-get install ${missing_packages[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >&2
fi

require_tools build-node go
start_staging build-node

# The version stamp of tools/build-control-plane.sh (hack/lib/version.sh).
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
version_flags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
k8s_commands=()
for name in kubelet kube-scheduler kube-proxy kubeadm; do
    [[ -x "$bin_dir/$name" ]] || k8s_commands+=("k8s.io/kubernetes/cmd/$name")
done
if ((${#k8s_commands[@]})); then
    echo "build-node: Kubernetes $k8s_version (${k8s_commands[*]##*/})" >&2
    (cd "$tools_dir/k8s" && go build "${go_flags[@]}" -ldflags="-s -w$version_flags" -o "$staging/" \
        "${k8s_commands[@]}")
fi

if [[ ! -x "$bin_dir/containerd" || ! -x "$bin_dir/ctr" || ! -x "$bin_dir/containerd-shim-runc-v2" ]]; then
    # The stamp and build tags of containerd's Makefile; no btrfs/devmapper/zfs snapshotters
    # (overlayfs and native are enough, and btrfs needs C headers), a static shim.
    pkg=github.com/containerd/containerd/v2
    stamp="-X $pkg/version.Version=$containerd_version -X $pkg/version.Package=$pkg"
    echo "build-node: containerd $containerd_version (containerd, ctr, containerd-shim-runc-v2)" >&2
    (cd "$tools_dir/containerd" \
        && go build "${go_flags[@]}" -tags "no_btrfs no_devmapper no_zfs urfave_cli_no_docs" \
            -ldflags="-s -w $stamp" -o "$staging/" "$pkg/cmd/containerd" "$pkg/cmd/ctr" \
        && CGO_ENABLED=0 go build "${go_flags[@]}" -tags "urfave_cli_no_docs no_grpc" \
            -ldflags="-s -w $stamp" -o "$staging/" "$pkg/cmd/containerd-shim-runc-v2")
fi

if [[ ! -x "$bin_dir/coredns" ]]; then
    # Static (no cgo): it is the only file of its image.
    echo "build-node: CoreDNS $coredns_version" >&2
    (cd "$tools_dir/coredns" && CGO_ENABLED=0 go build "${go_flags[@]}" -ldflags="-s -w" -o "$staging/coredns" \
        github.com/coredns/coredns)
fi

if [[ ! -s "$pause_image" ]]; then
    echo "build-node: sandbox image localhost/prs-pause:1 from tools/pause/pause.c" >&2
    gcc -Os -Wall -Wextra -Werror -static -o "$staging/pause" "$tools_dir/pause/pause.c"
    strip "$staging/pause"
    python3 "$tools_dir/oci_image.py" --name localhost/prs-pause:1 --file "$staging/pause:/pause" \
        --entrypoint /pause -o "$staging/pause.tar" >&2
    mkdir -p "$node_dir/images"
    mv -f "$staging/pause.tar" "$pause_image"
    ln -sfn "$(basename "$pause_image")" "$node_dir/images/pause.tar"
fi

mkdir -p "$bin_dir"
for name in "${binaries[@]}"; do
    if [[ -e "$staging/$name" ]]; then
        mv -f "$staging/$name" "$bin_dir/$name"
    fi
done
echo "build-node: built in $((SECONDS - started))s" >&2
echo "$bin_dir"
