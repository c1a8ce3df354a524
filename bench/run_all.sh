#!/usr/bin/env bash
# Every benchmark row, one after the other (never in parallel: they would measure each other),
# then bench/README.md's results section regenerated from bench/results/*.json.
#   bash bench/run_all.sh            # rows 5-6 need root and `bash tests/stack/install.sh`
#   bash bench/run_all.sh --smoke    # the quick check the test suite runs (writes nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
export LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE=0
py=.venv/bin/python
extra=("$@")
$py bench/keypress.py --callgrind "${extra[@]}"
$py bench/load.py "${extra[@]}"
$py bench/memory.py "${extra[@]}"
$py bench/completion.py "${extra[@]}"
$py bench/report.py "${extra[@]}"
$py bench/amd.py "${extra[@]}"
if [ "$(id -u)" = 0 ]; then
    $py bench/server_latency.py "${extra[@]}"
    $py bench/concurrency.py "${extra[@]}"
else
    echo "rows 5-6 skipped: they need root (network namespaces for the real livekit-server)" >&2
fi
if [[ " ${extra[*]} " != *" --smoke "* ]]; then
    $py bench/table.py --write > /dev/null
    echo "bench/README.md updated"
fi
