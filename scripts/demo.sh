#!/usr/bin/env bash
# `make demo`: a working castgate on this machine with a throwaway OpenSSH target.
# Everything lives in .demo/ and is stopped with `make demo-stop`.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO="$ROOT/.demo"
CASTGATE="$ROOT/$BUILD/gateway/castgate"
LOGIN=$(id -un)

bash "$ROOT/scripts/demo-stop.sh" >/dev/null 2>&1 || true
rm -rf "$DEMO"
mkdir -p "$DEMO"
cd "$DEMO"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
key() { ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"; }

key user_ca castgate-demo-user-ca          # signs the per-session certificates
key recording castgate-demo-recording      # signs every session's final event
key target_host demo-target                # the throwaway target's host key
key you "$LOGIN@demo"                      # your key for signing in to castgate

TARGET_PORT=$(free_port)
GATEWAY_PORT=${CASTGATE_DEMO_PORT:-2222}
if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$GATEWAY_PORT))" 2>/dev/null; then
  GATEWAY_PORT=$(free_port)
fi

[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
cat > sshd_config <<CONF
Port $TARGET_PORT
ListenAddress 127.0.0.1
HostKey $DEMO/target_host
PidFile $DEMO/sshd.pid
TrustedUserCAKeys $DEMO/user_ca.pub
AuthorizedKeysFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -f "$DEMO/sshd_config" -E "$DEMO/sshd.log"

# The rules castgate reloads (on SIGHUP, or when they change): a directory of their own, apart
# from the keys, which castgate's network-facing processes never read.
mkdir rules
echo "[127.0.0.1]:$TARGET_PORT $(cat target_host.pub)" > rules/known_hosts
cat > rules/targets.json <<JSON
{"targets": [{"name": "demo.int", "host": "127.0.0.1", "port": $TARGET_PORT}]}
JSON
cat > rules/policy.json <<JSON
{"rules": [{"name": "demo", "groups": ["demo-users"], "targets": ["*"], "logins": ["$LOGIN"],
            "port_forwarding": true}]}
JSON
echo "identity=\"demo-user\",email=\"$LOGIN@demo.invalid\",groups=\"demo-users\",kind=human $(cat you.pub)" > rules/identities

# A local OpenID Provider (npm oidc-provider in development mode): any user name signs in there,
# and everyone is in the demo-users group.
IDP_PORT=${CASTGATE_DEMO_IDP_PORT:-$(free_port)}
IDP_CONFIG="{\"port\": $IDP_PORT, \"client_id\": \"castgate-demo\", \"default_claims\": {\"groups\": [\"demo-users\"]}}" \
  node "$ROOT/tests/idp/server.mjs" >"$DEMO/idp.out" 2>"$DEMO/idp.log" &
echo $! > "$DEMO/idp.pid"
for _ in $(seq 100); do [ -s "$DEMO/idp.out" ] && break; sleep 0.1; done
ISSUER="http://127.0.0.1:$IDP_PORT"
cat > oidc.json <<JSON
{"provider": {"preset": "generic", "issuer": "$ISSUER", "client_id": "castgate-demo"},
 "device_flow": {"prompt": "enter"}, "key_binding_ttl": "1h"}
JSON

"$CASTGATE" --demo --instance demo --listen "127.0.0.1:$GATEWAY_PORT=demo.int" \
  --user-ca-key user_ca --recording-key recording --identities rules/identities \
  --policy rules/policy.json --targets rules/targets.json --known-hosts rules/known_hosts \
  --oidc-config oidc.json \
  --banner "This session is recorded by castgate (demo)." \
  >"$DEMO/events.jsonl" 2>"$DEMO/castgate.log" &
echo $! > "$DEMO/castgate.pid"
for _ in $(seq 50); do
  grep -q "listening on" "$DEMO/castgate.log" 2>/dev/null && break
  sleep 0.1
done
if ! grep -q "listening on" "$DEMO/castgate.log"; then
  cat "$DEMO/castgate.log"; echo "castgate did not start" >&2; exit 1
fi

cat <<MSG

castgate is running on 127.0.0.1:$GATEWAY_PORT in front of a throwaway OpenSSH target (demo.int),
signing people in with a local OpenID Provider ($ISSUER). Try it:

    ssh -o PubkeyAuthentication=no -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -p $GATEWAY_PORT $LOGIN@127.0.0.1

Open the URL it shows in a browser, sign in with any name (development mode), and press Enter.
(On a remote machine, forward the provider first: ssh -L $IDP_PORT:127.0.0.1:$IDP_PORT <this machine>.)
A registered key works too:  ssh -i $DEMO/you -p $GATEWAY_PORT $LOGIN@127.0.0.1

The recording (one JSON event per line):  tail -f $DEMO/events.jsonl
Find sessions:                              $ROOT/$BUILD/player/castgate-player list $DEMO/events.jsonl
Check them:                                 $ROOT/$BUILD/player/castgate-player verify --key $DEMO/recording.pub $DEMO/events.jsonl
Replay one in a browser:                    $ROOT/$BUILD/player/castgate-player html --key $DEMO/recording.pub --session ID -o session.html $DEMO/events.jsonl
castgate's own log:                         $DEMO/castgate.log
Change who may go where:                    edit $DEMO/rules/policy.json (castgate reloads it)
Stop everything:                            make demo-stop
MSG
