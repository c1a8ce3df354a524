#!/usr/bin/env bash
# Install what ivrkit's real-stack tests (tests/e2e) need, idempotently:
#   - Debian packages: iproute2 (`ip netns`), graphviz (`dot`, for `ivrkit graph` SVG/PNG and
#     tests/graph/test_render.py) and prometheus (the server the metrics e2e test scrapes the
#     worker with, tests/e2e/test_metrics.py), only when missing, only as root;
#   - livekit-server, built from the Go module proxy at a pinned tag;
#   - the Go test caller tests/e2e/goclient.
# Binaries go to ${IVRKIT_STACK_CACHE:-$HOME/.cache/ivrkit-stack}/bin and are rebuilt only when
# their stamp (pinned version, or hash of the Go client's sources) changes.
# Missing Go or root is not an error: one line says what is skipped and why; the e2e tests then
# skip with the same reason. A build that fails is an error (non-zero exit).
set -euo pipefail

LIVEKIT_SERVER_VERSION="v1.13.5"   # pinned; tests/stack/README.md says how the stack runs
GO_MIN="1.26.8"                    # go.mod of tests/e2e/goclient and server-sdk-go v2.19.0

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${IVRKIT_STACK_CACHE:-$HOME/.cache/ivrkit-stack}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

say() { echo "ivrkit-stack: $*"; }

# --- Debian packages ------------------------------------------------------------------------
need_pkgs=()
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v dot >/dev/null 2>&1 || need_pkgs+=(graphviz)
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        say "skipping Debian packages (${need_pkgs[*]}): not root; e2e tests will skip (they need root for network namespaces), so will the Graphviz drawing tests"
    elif ! command -v apt-get >/dev/null 2>&1; then
        say "skipping Debian packages (${need_pkgs[*]}): no apt-get on this machine"
    else
        say "installing Debian packages: ${need_pkgs[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    fi
elif [[ $(id -u) -ne 0 ]]; then
    say "note: not root; e2e tests will skip (network namespaces need root)"
fi

# --- Go -------------------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
    say "skipping livekit-server and Go client builds: Go not found on PATH (need Go >= $GO_MIN); e2e tests will skip"
    exit 0
fi
go_version="$(go env GOVERSION)"; go_version="${go_version#go}"
if [[ "$(printf '%s\n%s\n' "$GO_MIN" "$go_version" | sort -V | head -n1)" != "$GO_MIN" ]]; then
    say "skipping livekit-server and Go client builds: Go $go_version is older than $GO_MIN; e2e tests will skip"
    exit 0
fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly"

# --- livekit-server -------------------------------------------------------------------------
server="$BIN/livekit-server"
stamp="$server.stamp"
if [[ -x "$server" && -f "$stamp" && "$(cat "$stamp")" == "$LIVEKIT_SERVER_VERSION" ]]; then
    say "livekit-server $LIVEKIT_SERVER_VERSION cached at $server (no build)"
else
    say "building livekit-server $LIVEKIT_SERVER_VERSION from the Go module proxy (cold: about 1.5 min on 2 cores)"
    t0=$SECONDS
    tmp="$(mktemp -d "$CACHE/build.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    # Outside any module, so `go install pkg@version` uses the tag's own go.mod and go.sum.
    if ! (cd "$tmp" && GOBIN="$tmp" go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_SERVER_VERSION") \
            > "$CACHE/livekit-server-build.log" 2>&1; then
        tail -n 30 "$CACHE/livekit-server-build.log"
        say "livekit-server build FAILED (full log: $CACHE/livekit-server-build.log)"
        exit 1
    fi
    got="$("$tmp/server" --version)"
    [[ "$got" == *"${LIVEKIT_SERVER_VERSION#v}"* ]] || { say "built server reports '$got', expected $LIVEKIT_SERVER_VERSION"; exit 1; }
    mv -f "$tmp/server" "$server"
    echo "$LIVEKIT_SERVER_VERSION" > "$stamp"
    say "built livekit-server $LIVEKIT_SERVER_VERSION in $((SECONDS - t0)) s -> $server"
fi

# --- Go test caller (tests/e2e/goclient) ----------------------------------------------------
goclient_src="$REPO/tests/e2e/goclient"
goclient="$BIN/ivrkit-goclient"
if [[ -d "$goclient_src" ]]; then
    src_hash="$(cd "$goclient_src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
    if [[ -x "$goclient" && -f "$goclient.stamp" && "$(cat "$goclient.stamp")" == "$src_hash" ]]; then
        say "Go test caller cached at $goclient (no build)"
    else
        t0=$SECONDS
        tmpbin="$(mktemp "$BIN/.ivrkit-goclient.XXXXXX")"  # concurrent installs never share a file
        if ! go build -C "$goclient_src" -o "$tmpbin" . > "$CACHE/goclient-build.log" 2>&1; then
            rm -f "$tmpbin"
            tail -n 30 "$CACHE/goclient-build.log"
            say "Go test caller build FAILED (full log: $CACHE/goclient-build.log)"
            exit 1
        fi
        mv -f "$tmpbin" "$goclient"
        echo "$src_hash" > "$goclient.stamp"
        say "built Go test caller in $((SECONDS - t0)) s -> $goclient"
    fi
fi
