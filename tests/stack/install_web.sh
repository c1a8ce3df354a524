#!/usr/bin/env bash
# Install what the browser dial pad (`ivrkit dialpad`) and its e2e test need, idempotently:
#   - Debian's chromium (/usr/bin/chromium), only when missing, only as root;
#   - `npm ci` in ivrkit/dialpad/web (livekit-client + esbuild, pinned by its package-lock.json) and in
#     tests/e2e/web (playwright-core, pinned), only when the lock file changed since last time;
#   - the page's JS bundle, built into ivrkit/dialpad/web/dist/ (git-ignored, never committed), only when
#     its sources or lock file changed.
# Missing root or Node.js/npm is not an error: one line says what is skipped and why, and
# tests/e2e/test_dialpad.py then skips with the same reason. A failing install or build is an error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WEB="$REPO/ivrkit/dialpad/web"
E2E_WEB="$REPO/tests/e2e/web"
CHROMIUM="${IVRKIT_CHROMIUM:-/usr/bin/chromium}"

say() { echo "ivrkit-web: $*"; }

# --- Debian chromium (Playwright's own browser download does not work on these machines) -------
if [[ -x "$CHROMIUM" ]]; then
    :
elif [[ $(id -u) -ne 0 ]]; then
    say "skipping Debian chromium: not root (the dial pad e2e test will skip; install package chromium)"
elif ! command -v apt-get >/dev/null 2>&1; then
    say "skipping Debian chromium: no apt-get on this machine (the dial pad e2e test will skip)"
else
    say "installing Debian package chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# --- Node packages and the page bundle --------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "skipping the dial pad bundle and playwright-core: no Node.js/npm on PATH (ivrkit dialpad and its e2e test are unavailable)"
    exit 0
fi

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# npm ci only when package-lock.json differs from the one node_modules was installed from.
npm_ci() {
    local dir="$1" stamp="$1/node_modules/.ivrkit-lock-hash" want
    want="$(hash_of "$dir/package-lock.json")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "node modules up to date in ${dir#"$REPO"/}"
        return
    fi
    say "npm ci in ${dir#"$REPO"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
}

npm_ci "$WEB"
npm_ci "$E2E_WEB"

bundle="$WEB/dist/app.js"
bundle_stamp="$WEB/dist/.ivrkit-src-hash"
want="$(hash_of "$WEB/package.json" "$WEB/package-lock.json" "$WEB"/src/*.js)"
if [[ -f "$bundle" && -f "$bundle_stamp" && "$(cat "$bundle_stamp")" == "$want" ]]; then
    say "dial pad bundle up to date: ${bundle#"$REPO"/}"
else
    (cd "$WEB" && npm run --silent build)
    echo "$want" > "$bundle_stamp"
    say "built dial pad bundle: ${bundle#"$REPO"/} ($(du -k "$bundle" | cut -f1) KiB)"
fi
