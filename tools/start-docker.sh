#!/usr/bin/env bash
# Make a Docker engine available: install Debian's docker.io when it is missing, start dockerd
# in the background when nothing answers on its socket, wait until it does. Idempotent.
#
#   tools/start-docker.sh    # prints one line saying how the engine runs
#
# Needs root for the install and for dockerd. Settings: DOCKERD_LOG (default
# /var/log/parallelrunstep-dockerd.log), DOCKERD_STORAGE_DRIVER (default: the first of overlay2,
# fuse-overlayfs, vfs that starts), DOCKER_START_TIMEOUT (seconds, default 60).
set -euo pipefail

docker=/usr/bin/docker
log_file=${DOCKERD_LOG:-/var/log/parallelrunstep-dockerd.log}
timeout=${DOCKER_START_TIMEOUT:-60}

say() { echo "start-docker: $*" >&2; }

engine_up() { "$docker" info --format '{{.Driver}}' 2>/dev/null; }

if [[ ! -x /usr/sbin/dockerd || ! -x $docker ]]; then
  say "installing docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
fi

if driver=$(engine_up); then
  echo "docker engine already running (storage driver $driver)"
  exit 0
fi

start_with() {
  local driver=$1 pid waited=0
  say "starting dockerd --storage-driver $driver (log: $log_file)"
  # setsid: the engine outlives the test session or CI step that started it.
  setsid /usr/sbin/dockerd --storage-driver "$driver" >>"$log_file" 2>&1 </dev/null &
  pid=$!
  while ((waited < timeout)); do
    if engine_up >/dev/null; then
      echo "dockerd started: pid $pid, storage driver $driver, log $log_file"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
    waited=$((waited + 1))
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  say "dockerd with $driver did not come up; last log lines:"
  tail -n 5 "$log_file" >&2
  return 1
}

mkdir -p "$(dirname "$log_file")"
if [[ -n ${DOCKERD_STORAGE_DRIVER:-} ]]; then
  start_with "$DOCKERD_STORAGE_DRIVER" && exit 0
else
  for driver in overlay2 fuse-overlayfs vfs; do
    start_with "$driver" && exit 0
  done
fi
echo "start-docker: no Docker engine could be started; see $log_file" >&2
exit 1
