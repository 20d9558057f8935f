#!/usr/bin/env bash
# Build a local Python base image for the Dockerfiles' BASE_IMAGE, for machines that cannot
# pull python:3.11-slim: a minimal Debian (the host's release, from the host's apt mirror)
# with its python3 and python3-venv, imported with `docker import`.
#
#   tools/build-base-image.sh            # prints the image name on stdout
#
# Cached twice: the image is left alone when it exists, and the root filesystem tarball is kept
# under ~/.cache/parallelrunstep so a fresh engine only needs `docker import`.
# Settings: BASE_RELEASE (default: the host's VERSION_CODENAME), BASE_MIRROR (default: the
# host's first Debian mirror), DOCKER (default: Debian's /usr/bin/docker).
set -euo pipefail

release=${BASE_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME}")}
image="parallelrunstep/base:${release}-python"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/parallelrunstep"
tarball="$cache/base-${release}-python.tar.gz"
docker=${DOCKER:-/usr/bin/docker}

log() { echo "build-base-image: $*" >&2; }

host_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
          /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | head -n1 | grep -oE 'https?://[^ ]+' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_rootfs() {
  local mirror root
  mirror=${BASE_MIRROR:-$(host_mirror)}
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  root=$(mktemp -d /var/tmp/prs-base.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  log "debootstrap $release from $mirror into $root"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$release" "$root" "$mirror" >&2
  # Sources for derived images that apt-get install more (lists themselves are dropped).
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$release" "$mirror" "$release" \
    > "$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/tmp/* "$root"/var/tmp/*
  mkdir -p "$cache"
  tar --numeric-owner -C "$root" -czf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
}

if "$docker" image inspect "$image" >/dev/null 2>&1; then
  log "$image exists"
else
  [[ -s "$tarball" ]] && log "using cached $tarball" || build_rootfs
  log "docker import $tarball as $image"
  "$docker" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >&2
fi
echo "$image"
