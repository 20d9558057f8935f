# Sourced by the tools/build-*.sh scripts: the shared cache, one build at a time, and a
# staging folder that a failed build leaves nothing in.

cache_root="${PRS_K8S_CACHE:-$HOME/.cache/parallelrunstep}"

# require_tools SCRIPT TOOL...: one line naming the first missing tool, and exit.
require_tools() {
    local script=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$script: '$tool' is not on PATH" >&2; exit 1; }
    done
}

# lock_build NAME: one build of NAME at a time (parallel test sessions, or a test run racing
# a manual build), held until the script exits.
lock_build() {
    mkdir -p "$cache_root"
    exec 9>"$cache_root/.$1.lock"
    flock 9
}

# start_staging NAME: $staging, a fresh folder in the cache removed at exit (a finished build
# moves its results out first), $started, and $go_flags for `go build`.
start_staging() {
    staging="$(mktemp -d "$cache_root/.$1.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    started=$SECONDS
    read -r -a go_flags <<<"${PRS_GO_BUILD_FLAGS:--p 1}"
    go_flags+=(-trimpath -buildvcs=false)
}

# pinned_version SCRIPT GO_MOD MODULE: the version GO_MOD requires MODULE at (in a require
# block or a one-line require); one line naming both, and exit, when it has none.
pinned_version() {
    local version
    version="$(awk -v mod="$3" '$1 == mod && $2 ~ /^v/ {print $2; exit}
        $1 == "require" && $2 == mod {print $3; exit}' "$2")"
    if [[ -z "$version" ]]; then
        echo "$1: cannot read the pinned $3 version from $2" >&2
        exit 1
    fi
    echo "$version"
}
