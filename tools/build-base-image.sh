#!/usr/bin/env bash
# Build a local Python base image for the Dockerfiles' BASE_IMAGE, for machines that cannot
# pull python:3.11-slim: a minimal Debian (the host's release, from the host's apt mirror)
# with its python3 and python3-venv, imported with `docker import`.
#
#   tools/build-base-image.sh            # prints the image name on stdout
#   tools/build-base-image.sh --rootfs   # only the root filesystem tarball; prints its path
#
# Cached twice: the image is left alone when it exists, and the root filesystem tarball is kept
# under ~/.cache/parallelrunstep so a fresh engine only needs `docker import`.
# Settings: BASE_RELEASE (default: the host's VERSION_CODENAME), BASE_MIRROR and
# BASE_SECURITY_MIRROR (default: the host's first debian and debian-security mirrors, else
# deb.debian.org's), DOCKER (default: Debian's /usr/bin/docker).
set -euo pipefail

# shellcheck source=/dev/null
release=${BASE_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME}")}
image="parallelrunstep/base:${release}-python"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/parallelrunstep"
tarball="$cache/base-${release}-python.tar.gz"
docker=${DOCKER:-/usr/bin/docker}

log() { echo "build-base-image: $*" >&2; }

# The host's first mirror of archive $1 (debian or debian-security), else deb.debian.org's.
host_mirror() {
  local uri
  uri=$(grep -hoE "^(URIs:|deb) +https?://[^ ]+/$1/?( |\$)" \
          /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | head -n1 | grep -oE 'https?://[^ ]+' || true)
  echo "${uri:-http://deb.debian.org/$1}"
}

build_rootfs() {
  local mirror security
  mirror=${BASE_MIRROR:-$(host_mirror debian)}
  security=${BASE_SECURITY_MIRROR:-$(host_mirror debian-security)}
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  root=$(mktemp -d /var/tmp/prs-base.XXXXXX)  # global: the EXIT trap removes it
  chmod 755 "$root"  # apt in the chroot downloads as _apt
  trap 'rm -rf "$root"' EXIT
  log "debootstrap $release from $mirror into $root"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$release" "$root" "$mirror" >&2
  # The release as debootstrap installs it lacks the security and point-release updates.
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$release" "$mirror" "$release" "$security" "$release" \
    > "$root/etc/apt/sources.list"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  log "apt-get upgrade from $release-updates and $release-security"
  chroot "$root" apt-get update -qq >&2
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq >&2
  : > "$root/etc/resolv.conf"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/tmp/* "$root"/var/tmp/*
  mkdir -p "$cache"
  tar --numeric-owner -C "$root" -czf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
}

if [[ ${1:-} == --rootfs ]]; then
  # Only the root filesystem tarball (no Docker needed), e.g. for the real nodes of
  # tests/cluster, which make an OCI image of it: its path is printed on stdout.
  if [[ -s "$tarball" ]]; then log "using cached $tarball"; else build_rootfs; fi
  echo "$tarball"
  exit 0
fi

if "$docker" image inspect "$image" >/dev/null 2>&1; then
  log "$image exists"
else
  if [[ -s "$tarball" ]]; then log "using cached $tarball"; else build_rootfs; fi
  log "docker import $tarball as $image"
  "$docker" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >&2
fi
echo "$image"
