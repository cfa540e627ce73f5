#!/usr/bin/env bash
# Stops what `make demo` started.
DEMO="$(cd "$(dirname "$0")/.." && pwd)/.demo"
for pidfile in "$DEMO/castgate.pid" "$DEMO/sshd.pid" "$DEMO/idp.pid"; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
echo "demo stopped"
