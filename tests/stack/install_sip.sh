#!/usr/bin/env bash
# Install what ivrkit's real SIP call tests (tests/e2e/test_sip_*.py) need, idempotently:
#   - Debian packages, each only when missing and only as root: redis-server (LiveKit server and
#     LiveKit SIP talk over it), sip-tester (SIPp, the test phone), and the cgo build deps of
#     LiveKit SIP (pkg-config libopus-dev libopusfile-dev libsoxr-dev);
#   - LiveKit SIP (github.com/livekit/sip, main cmd/livekit-sip, cgo) from the Go module proxy at a
#     pinned tag into ${IVRKIT_STACK_CACHE:-$HOME/.cache/ivrkit-stack}/bin/livekit-sip, rebuilt
#     only when its stamp (the pinned version) changes.
# Missing root or Go is not an error: one line says what is skipped; the SIP tests then skip with
# the same reason. A build that fails is an error (non-zero exit).
#
# Why not `go install github.com/livekit/sip/cmd/livekit-sip@TAG`: the Go client then also reads
# the module's version list (for deprecation notices), which the module proxy reachable here
# refuses (403) for github.com/livekit/sip. So: `go mod download` the tagged module (the proxy
# serves that), copy it to a temp dir and `go build` there with the tag's own go.mod and go.sum.
set -euo pipefail

# Pinned. v1.11.0, v1.9.0 and v1.10.x are refused
# by the module proxy reachable here (403 "not available"); v1.8.0 (2026-07-23, a week before
# livekit-server v1.13.5) is served and has no replace directives.
LIVEKIT_SIP_VERSION="v1.8.0"
GO_MIN="1.26.0"   # go directive of livekit/sip's go.mod at that tag

CACHE="${IVRKIT_STACK_CACHE:-$HOME/.cache/ivrkit-stack}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

say() { echo "ivrkit-stack(sip): $*"; }

# --- Debian packages ------------------------------------------------------------------------
want_pkgs=(redis-server sip-tester pkg-config libopus-dev libopusfile-dev libsoxr-dev)
need_pkgs=()
for p in "${want_pkgs[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
        need_pkgs+=("$p")
    fi
done
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        say "skipping Debian packages (${need_pkgs[*]}) and the LiveKit SIP build: not root; SIP tests will skip"
        exit 0
    elif ! command -v apt-get >/dev/null 2>&1; then
        say "skipping Debian packages (${need_pkgs[*]}) and the LiveKit SIP build: no apt-get on this machine; SIP tests will skip"
        exit 0
    fi
    say "installing Debian packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- Go -------------------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
    say "skipping the LiveKit SIP build: Go not found on PATH (need Go >= $GO_MIN); SIP tests will skip"
    exit 0
fi
go_version="$(go env GOVERSION)"; go_version="${go_version#go}"
if [[ "$(printf '%s\n%s\n' "$GO_MIN" "$go_version" | sort -V | head -n1)" != "$GO_MIN" ]]; then
    say "skipping the LiveKit SIP build: Go $go_version is older than $GO_MIN; SIP tests will skip"
    exit 0
fi

# --- LiveKit SIP ----------------------------------------------------------------------------
sip="$BIN/livekit-sip"
stamp="$sip.stamp"
if [[ -x "$sip" && -f "$stamp" && "$(cat "$stamp")" == "$LIVEKIT_SIP_VERSION" ]]; then
    say "livekit-sip $LIVEKIT_SIP_VERSION cached at $sip (no build)"
    exit 0
fi
say "building livekit-sip $LIVEKIT_SIP_VERSION from the Go module proxy (cgo; cold: several minutes on 2 cores)"
t0=$SECONDS
tmp="$(mktemp -d "$CACHE/build-sip.XXXXXX")"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export CGO_ENABLED=1 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly"
moddir="$(cd "$tmp" && go mod download -json "github.com/livekit/sip@$LIVEKIT_SIP_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$moddir" && -f "$moddir/go.mod" ]] || { say "go mod download github.com/livekit/sip@$LIVEKIT_SIP_VERSION gave no module directory"; exit 1; }
cp -r "$moddir" "$tmp/src"
chmod -R u+w "$tmp/src"
(cd "$tmp/src" && go build -trimpath \
    -ldflags "-X github.com/livekit/sip/version.Version=${LIVEKIT_SIP_VERSION#v}" \
    -o "$tmp/livekit-sip" ./cmd/livekit-sip)
got="$("$tmp/livekit-sip" --version 2>&1 || true)"
[[ "$got" == *"${LIVEKIT_SIP_VERSION#v}"* ]] || { say "built livekit-sip reports '$got', expected $LIVEKIT_SIP_VERSION"; exit 1; }
mv -f "$tmp/livekit-sip" "$sip"
echo "$LIVEKIT_SIP_VERSION" > "$stamp"
say "built livekit-sip $LIVEKIT_SIP_VERSION in $((SECONDS - t0)) s -> $sip"
