#!/usr/bin/env bash
# Build a kind node image without any registry: parallelrunstep/kind-node:<Kubernetes version>
# (printed as the last line of stdout; progress goes to stderr).
#
# kind's own node images (kindest/node) come from a registry, and `kind build node-image` starts
# from kind's base image (a registry image whose Dockerfile clones containerd, runc, crictl and
# the CNI plugins from GitHub) and pulls kindnetd and the storage images. Here instead:
#   - a Debian root filesystem from debootstrap (the host's release and mirror) with what kind's
#     images/base/Dockerfile installs from Debian, plus Debian's runc and CNI plugins; cached as
#     a tarball under ~/.cache/parallelrunstep;
#   - kind's entrypoint, systemd units, sysctls and scripts, read from the kind module pinned in
#     tools/kind/go.mod (Apache-2.0, The Kubernetes Authors), and kind's Dockerfile clean-up;
#   - containerd, ctr and the shim (tools/build-node.sh), with tools/kind-node/containerd-config.toml;
#   - kubeadm, kubelet (tools/build-node.sh), kubectl (tools/build-control-plane.sh) in /usr/bin
#     and crictl (tools/build-kind.sh);
#   - the images kubeadm runs, written by tools/oci_image.py and imported into the node's
#     containerd (not unpacked, pinned, as `kind build node-image` does), so nothing is pulled:
#     registry.k8s.io/kube-{apiserver,controller-manager,scheduler,proxy}:<K8S>, each a layer of
#     the Debian + python3 root filesystem of tools/build-base-image.sh (the binaries link
#     glibc) and the binary in /usr/local/bin, kube-proxy also with Debian's iptables and
#     conntrack (tools/kind-node/iptables-wrapper picks the node's backend);
#     registry.k8s.io/etcd:<ETCD>-0 and registry.k8s.io/coredns/coredns:v<COREDNS> (the versions
#     built here: the cluster config tells kubeadm these tags), localhost/prs-pause:1 (sandbox);
#   - the entrypoint tools/kind-node/prs-node-entrypoint: makes read-only cgroup mounts writable
#     (see tools/kind-docker/docker), then runs kind's;
#   - no kindnetd: tools/kind-node/prs-kind-cni (a systemd service) writes each node's bridge
#     CNI config and the routes to the other nodes' pod subnets; clusters set
#     networking.disableDefaultCNI. No default storage manifest: kind falls back to its
#     host-path StorageClass.
# The image is left alone when it exists with the same inputs (label io.parallelrunstep.inputs).
# Needs root (debootstrap, chroot), Docker, Go (for the builds it triggers), python3.
# Settings: DOCKER (default /usr/bin/docker), BASE_MIRROR, BASE_SECURITY_MIRROR.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
docker=${DOCKER:-/usr/bin/docker}
cache="${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}"
log() { echo "build-kind-node: $*" >&2; }
started=$SECONDS

cp_bin=$("$tools_dir/build-control-plane.sh" | tail -n1)
node_bin=$("$tools_dir/build-node.sh" | tail -n1)
kind_bin=$("$tools_dir/build-kind.sh" | tail -n1)
base_rootfs=$("$tools_dir/build-base-image.sh" --rootfs | tail -n1)
pause_image="$node_bin/../images/pause.tar"
kind_src=$(cd "$tools_dir/kind" && go mod download -json sigs.k8s.io/kind \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
kind_files="$kind_src/images/base/files"

k8s_version=$("$node_bin/kubelet" --version | awk '{print $2}')          # v1.37.2
etcd_version=$("$cp_bin/etcd" --version | awk '/etcd Version/ {print $3}')  # 3.7.3
coredns_version=$("$node_bin/coredns" -version | sed -n 's/^CoreDNS-//p')  # 1.15.0
image="parallelrunstep/kind-node:$k8s_version"

# shellcheck source=/dev/null
release=${BASE_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME}")}
# What kind's images/base/Dockerfile installs from Debian, without the storage e2e packages
# (nfs-common, open-iscsi) and fuse-overlayfs (rootless only); plus runc and the CNI plugins,
# which kind builds from source.
packages=(systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2
    pigz e2fsprogs bash ca-certificates curl jq procps runc containernetworking-plugins)
rootfs_key=$(printf '%s\n' "$release" "${packages[@]}" | sha256sum | cut -c1-12)
rootfs_tarball="$cache/kind-node-rootfs-$release-$rootfs_key.tar.gz"

inputs=$( {
    cat "$0" "$tools_dir"/kind-node/* "$tools_dir/oci_image.py"
    echo "$kind_src $rootfs_tarball $base_rootfs"
    for file in "$node_bin"/{kubeadm,kubelet,kube-proxy,kube-scheduler,containerd,ctr,containerd-shim-runc-v2,coredns} \
        "$cp_bin"/{kubectl,kube-apiserver,kube-controller-manager,etcd} "$kind_bin/crictl" \
        "$pause_image" "$rootfs_tarball" "$base_rootfs"; do
        stat -L -c '%n %s %Y' "$file" 2>/dev/null || echo "$file missing"
    done
} | sha256sum | cut -c1-16)

if [[ "$("$docker" image inspect --format '{{index .Config.Labels "io.parallelrunstep.inputs"}}' \
        "$image" 2>/dev/null)" == "$inputs" ]]; then
    log "$image is up to date"
    echo "$image"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.build-kind-node.lock"
flock 9

host_mirror() {  # the host's first mirror of archive $1 (as tools/build-base-image.sh)
    local uri
    uri=$(grep -hoE "^(URIs:|deb) +https?://[^ ]+/$1/?( |\$)" \
            /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
          | head -n1 | grep -oE 'https?://[^ ]+' || true)
    echo "${uri:-http://deb.debian.org/$1}"
}

staging=$(mktemp -d /var/tmp/prs-kind-node.XXXXXX)
containerd_pid=""
cleanup() {
    if [[ -n $containerd_pid ]]; then
        kill "$containerd_pid" 2>/dev/null || true
        wait "$containerd_pid" 2>/dev/null || true
    fi
    # nothing may stay mounted below the staging folder before it goes
    if findmnt -rn -o TARGET | grep -q "^$staging"; then
        log "mounts left under $staging, not removing it"
    else
        rm -rf "$staging"
    fi
}
trap cleanup EXIT
root="$staging/root"
mkdir -m 755 "$root"

if [[ ! -s $rootfs_tarball ]]; then
    command -v debootstrap >/dev/null || {
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
    }
    mirror=${BASE_MIRROR:-$(host_mirror debian)}
    security=${BASE_SECURITY_MIRROR:-$(host_mirror debian-security)}
    step=$SECONDS
    log "debootstrap $release (${packages[*]}) from $mirror"
    debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
        "$release" "$root" "$mirror" >&2
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
        "$mirror" "$release" "$mirror" "$release" "$security" "$release" \
        > "$root/etc/apt/sources.list"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    log "apt-get upgrade from $release-updates and $release-security"
    chroot "$root" apt-get update -qq >&2
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq >&2
    : > "$root/etc/resolv.conf"
    # kind's clean-install clean-up
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/tmp/* "$root"/var/tmp/* "$root"/var/cache/debconf/*
    tar --numeric-owner -C "$root" -czf "$rootfs_tarball.partial" .
    mv -f "$rootfs_tarball.partial" "$rootfs_tarball"
    log "root filesystem in $((SECONDS - step))s: $rootfs_tarball"
else
    log "using cached $rootfs_tarball"
    tar --numeric-owner -C "$root" -xzf "$rootfs_tarball"
fi

step=$SECONDS
log "kind $(basename "$kind_src") files, binaries, systemd units"
# kind's images/base/Dockerfile: static files with its modes
install -m 0755 "$kind_files/usr/local/bin/entrypoint" "$root/usr/local/bin/entrypoint"
install -d -m 0755 "$root/kind" "$root/kind/bin" "$root/LICENSES" "$root/etc/containerd" \
    "$root/etc/kubernetes/manifests" "$root/etc/systemd/system/kubelet.service.d" "$root/etc/cni/net.d"
install -m 0644 "$kind_files/kind/README.txt" "$root/kind/README.txt"
install -m 0755 "$kind_files"/kind/bin/*.sh "$root/kind/bin/"
install -m 0644 "$kind_files/LICENSES/README.txt" "$root/LICENSES/README.txt"
install -m 0644 "$kind_files/etc/crictl.yaml" "$root/etc/crictl.yaml"
install -m 0644 "$kind_files/etc/default/kubelet" "$root/etc/default/kubelet"
install -m 0644 "$kind_files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
for unit in containerd.service kubelet.service kubelet.slice undo-mount-hacks.service; do
    install -m 0644 "$kind_files/etc/systemd/system/$unit" "$root/etc/systemd/system/$unit"
done
install -m 0644 "$kind_files"/etc/systemd/system/kubelet.service.d/* \
    "$root/etc/systemd/system/kubelet.service.d/"
install -m 0644 "$tools_dir/kind-node/containerd-config.toml" "$root/etc/containerd/config.toml"
install -m 0755 "$tools_dir/kind-node/prs-kind-cni" "$root/usr/local/bin/prs-kind-cni"
install -m 0755 "$tools_dir/kind-node/prs-node-entrypoint" "$root/usr/local/bin/prs-node-entrypoint"
install -m 0644 "$tools_dir/kind-node/prs-kind-cni.service" "$root/etc/systemd/system/prs-kind-cni.service"

# kind's Dockerfile: no services but ours, no tmpfiles at boot, no kmsg in journald, systemd as init
find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
    "$root"/lib/systemd/system/local-fs.target.wants/* \
    "$root"/lib/systemd/system/sockets.target.wants/*udev* \
    "$root"/lib/systemd/system/sockets.target.wants/*initctl* \
    "$root"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> "$root/etc/systemd/journald.conf"
ln -sfn /usr/lib/systemd/systemd "$root/sbin/init"
chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    prs-kind-cni.service >&2
chroot "$root" systemctl mask systemd-binfmt.service >&2

# binaries where kind puts them
install -m 0755 "$node_bin/kubeadm" "$node_bin/kubelet" "$cp_bin/kubectl" "$root/usr/bin/"
install -m 0755 "$node_bin/containerd" "$node_bin/ctr" "$node_bin/containerd-shim-runc-v2" \
    "$kind_bin/crictl" "$root/usr/local/bin/"
# kind's base runtime spec: `ctr oci spec` with its createContainer hook and no rlimits
"$node_bin/ctr" oci spec | python3 -c '
import json, sys
spec = json.load(sys.stdin)
spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
    {"path": "/kind/bin/mount-product-files.sh"})
spec["process"].pop("rlimits", None)
json.dump(spec, sys.stdout, indent=2)
' > "$root/etc/containerd/cri-base.json"
printf '%s' "$k8s_version" > "$root/kind/version"
log "files in $((SECONDS - step))s"

step=$SECONDS
images="$staging/images"
mkdir -p "$images"
# kube-proxy's iptables: Debian's packages from the node's root filesystem, the wrapper as
# /usr/sbin/iptables & co.
proxy_layer="$staging/proxy-layer"
mkdir -p "$proxy_layer/usr/sbin"
proxy_packages=(iptables conntrack)  # and what they depend on, but glibc (the base layer has it)
for _ in 1 2 3; do
    read -r -a proxy_packages <<<"$(chroot "$root" dpkg-query -W -f '${Package} ${Depends}\n' \
        "${proxy_packages[@]}" | sed -e 's/([^)]*)//g' -e 's/[,|]/ /g' | tr ' ' '\n' \
        | sed 's/:any$//' | grep -vxE '|libc6|libgcc-s1|gcc-12-base|netbase' | sort -u | tr '\n' ' ')"
done
log "kube-proxy's layer: ${proxy_packages[*]}"
chroot "$root" dpkg -L "${proxy_packages[@]}" \
    | grep -vE '^/usr/share/(doc|man|lintian)|^/\.$' | sort -u > "$staging/proxy-files"
(cd "$root" && while read -r path; do
    if [[ -L ".$path" || -f ".$path" ]]; then cp -a --parents ".$path" "$proxy_layer/"; fi
done < "$staging/proxy-files")
install -m 0755 "$tools_dir/kind-node/iptables-wrapper" "$proxy_layer/usr/sbin/iptables-wrapper"
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sfn iptables-wrapper "$proxy_layer/usr/sbin/$name"
done
tar --numeric-owner -C "$proxy_layer" -cf "$staging/proxy-layer.tar" .

oci() { python3 "$tools_dir/oci_image.py" "$@" >&2; }
for binary in "$cp_bin/kube-apiserver" "$cp_bin/kube-controller-manager" "$node_bin/kube-scheduler"; do
    name=$(basename "$binary")
    oci --name "registry.k8s.io/$name:$k8s_version" --layer "$base_rootfs" \
        --file "$binary:/usr/local/bin/$name" -o "$images/$name.tar"
done
oci --name "registry.k8s.io/kube-proxy:$k8s_version" --layer "$base_rootfs" \
    --layer "$staging/proxy-layer.tar" --file "$node_bin/kube-proxy:/usr/local/bin/kube-proxy" \
    -o "$images/kube-proxy.tar"
oci --name "registry.k8s.io/etcd:$etcd_version-0" --layer "$base_rootfs" \
    --file "$cp_bin/etcd:/usr/local/bin/etcd" -o "$images/etcd.tar"
oci --name "registry.k8s.io/coredns/coredns:v$coredns_version" \
    --file "$node_bin/coredns:/coredns" --entrypoint /coredns -o "$images/coredns.tar"
cp "$pause_image" "$images/pause.tar"
log "image archives in $((SECONDS - step))s"

# Import them into the node's containerd store, with the node's containerd run here against
# the root filesystem's /var/lib/containerd (no CRI, no NRI, no /opt plugin: nothing outside
# the staging folder is touched).
step=$SECONDS
socket="$staging/containerd.sock"
cat > "$staging/import.toml" <<TOML
version = 4
root = "$root/var/lib/containerd"
state = "$staging/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt",
  "io.containerd.podsandbox.controller.v1.podsandbox"]
TOML
# --address: containerd 2.4.2 serves on its default socket despite [grpc] address in the file
"$node_bin/containerd" --config "$staging/import.toml" --address "$socket" \
    > "$staging/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do
    "$node_bin/ctr" -a "$socket" version >/dev/null 2>&1 && break
    kill -0 "$containerd_pid" 2>/dev/null || { cat "$staging/containerd.log" >&2; exit 1; }
    sleep 0.2
done
for archive in "$images"/*.tar; do
    "$node_bin/ctr" -a "$socket" -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
        --all-platforms --no-unpack "$archive" >&2
done
"$node_bin/ctr" -a "$socket" -n k8s.io images list -q >&2
kill "$containerd_pid"
wait "$containerd_pid" || true
containerd_pid=""
rm -rf "$root/var/lib/containerd/tmpmounts"
log "images imported in $((SECONDS - step))s"

step=$SECONDS
log "docker import as $image"
previous=$("$docker" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
tar --numeric-owner -C "$root" -c . | "$docker" import \
    --change 'ENV container=docker' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change 'ENTRYPOINT ["/usr/local/bin/prs-node-entrypoint", "/sbin/init"]' \
    - "$image-rootfs" >&2
# systemd exits on SIGRTMIN+3 (docker import cannot set STOPSIGNAL); no layer is added.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL io.parallelrunstep.inputs=%s\n' "$image-rootfs" "$inputs" \
    | DOCKER_BUILDKIT=1 "$docker" build -q -t "$image" - >&2
"$docker" rmi "$image-rootfs" >/dev/null
if [[ -n $previous ]]; then "$docker" rmi "$previous" >/dev/null 2>&1 || true; fi  # the old build
log "docker import in $((SECONDS - step))s; $image built in $((SECONDS - started))s"
echo "$image"
