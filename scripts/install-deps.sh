#!/usr/bin/env bash
# Installs what castgate needs to build, test and demo on Debian 12, only if it is missing.
# Idempotent; needs root (or everything already installed).
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config clang-format
  libssh-dev libssl-dev nlohmann-json3-dev libsimdjson-dev libboost-program-options-dev
  doctest-dev libcurl4-openssl-dev libvterm-dev libqrencode-dev libseccomp-dev libisal-dev libzstd-dev
  # real peers for the tests and the demo
  openssh-server openssh-client openssh-sftp-server dropbear-bin putty-tools sudo tmux rsync git
  zbar-tools  # zbarimg decodes the sign-in QR code off a rendered screen
  zstd  # compresses the logs the player tests read
  python3 python3-pytest python3-pytest-timeout python3-pytest-xdist python3-paramiko python3-pyte python3-jsonschema python3-yaml python3-prometheus-client asciinema jq tzdata
  chromium  # headless, for the web player test
  nodejs npm
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # nodejs may come from another repository under the same name; npm may ship with it.
    if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
    if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, pinned by their lock files: asciinema-player (embedded in castgate-player's
# self-contained HTML replay pages), the OpenID Provider used by the tests and the demo
# (oidc-provider), and for the chart tests two helm releases and the Kubernetes API schemas
# (kubernetes-models).
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# Installed again when the lock file changed since the last install (a stamp in node_modules).
for dir in player/web tests/idp tests/deploy; do
  stamp="$ROOT/$dir/node_modules/.castgate-lock.sha256"
  lock_sum=$(sha256sum "$ROOT/$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -d "$ROOT/$dir/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    echo "install-deps: npm ci in $dir"
    (cd "$ROOT/$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$stamp"
  fi
done
