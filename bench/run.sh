#!/usr/bin/env bash
# `make bench`: castgate side by side with OpenSSH (direct and ProxyJump) on this machine.
# Results: bench/results/report.md (the README's table) and results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
exec /usr/bin/python3 bench/bench.py "${@:2}"
