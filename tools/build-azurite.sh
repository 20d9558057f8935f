#!/usr/bin/env bash
# Install Azurite, the Azure Storage emulator of the object-storage tests
# (tests/storage_servers.py runs its blob service on loopback), from the npm registry: the
# version is pinned in tools/azurite/package.json, every dependency in package-lock.json.
#
# The package goes to a cache OUTSIDE the repository, keyed by the pinned version:
#   ${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}/azurite-<VERSION>/node_modules/...
# If it is already there, nothing is installed. The path of the `azurite-blob` entry point
# (node_modules/.bin/azurite-blob, run with the machine's node) is printed as the last line
# of stdout; progress goes to stderr.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tools_dir/build-common.sh"
package_dir="$tools_dir/azurite"

version="$(sed -n 's/^ *"azurite": *"\([0-9][^"]*\)".*/\1/p' "$package_dir/package.json" | head -n 1)"
if [[ -z "$version" ]]; then
    echo "build-azurite: cannot read the pinned azurite version from tools/azurite/package.json" >&2
    exit 1
fi

install_dir="$cache_root/azurite-$version"
entry="$install_dir/node_modules/.bin/azurite-blob"

installed() { [[ -f "$install_dir/.installed" && -x "$entry" ]]; }

if installed; then
    echo "$entry"
    exit 0
fi

require_tools build-azurite node npm
lock_build build-azurite
if installed; then
    echo "$entry"
    exit 0
fi

start_staging build-azurite

echo "build-azurite: azurite $version -> $install_dir" >&2
cp "$package_dir/package.json" "$package_dir/package-lock.json" "$staging/"
# Exactly the locked tree; no install scripts (Azurite needs none: it is plain JavaScript).
(cd "$staging" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
touch "$staging/.installed"

rm -rf "$install_dir"
mv "$staging" "$install_dir"
trap - EXIT
echo "build-azurite: installed in $((SECONDS - started))s" >&2
echo "$entry"
