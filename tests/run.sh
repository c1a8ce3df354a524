#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then runs pytest.
#
#   bash tests/run.sh            # everything (unit, e2e against a real livekit-server, SIP, bench smoke)
#   bash tests/run.sh -m "not e2e"   # arguments go to pytest
#
# What it installs (idempotent, cached under ~/.cache/ivrkit-stack):
#   .venv with ivrkit[test]; Debian packages and the Go-built livekit-server / LiveKit SIP
#   (tests/stack/install.sh, install_sip.sh); Chromium and the dial pad's npm packages
#   (install_web.sh). Without root, Go or Node those steps say what they skip, and the e2e tests
#   skip with the reason (CI sets IVRKIT_STACK_REQUIRED=1: there they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

for installer in tests/stack/install.sh tests/stack/install_sip.sh tests/stack/install_web.sh; do
    if [ -f "$installer" ]; then
        bash "$installer"
    fi
done

echo "== install took $(( $(date +%s) - started )) s"
export LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE=0
exec .venv/bin/python -m pytest "$@"
