#!/usr/bin/env bash
# `make bench-libssh-0.11`: the same benchmarks with castgate built against libssh 0.11.5, the
# version Debian 13 ships, on this Debian 12 machine (no container engine needed). The source is
# Debian 13's own (from the Debian mirror this machine's apt is configured with, checked against
# the SHA-256 of its Sources index); it is built into build-libssh-0.11/ and nothing is installed
# system-wide.
# Usage: bench/libssh-0.11.sh [bench.py options], e.g. --only bulk,sftp,recording
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build-libssh-0.11
TARBALL=libssh_0.11.5.orig.tar.xz
SHA256=6898ba9dd836d618b71dc7a4bb786a502c173cef5cafbf20fe5e0567ba4ea30c
# The main archive's base URL from apt's sources (deb822 `URIs:` or one-line `deb` entries), not
# the security archive.
debian_mirror() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
    2>/dev/null | awk '
      /^[[:space:]]*#/ { next }
      $1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }
      $1 == "deb" || $1 == "deb-src" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }
    ' | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1 | sed 's:/*$::'
}
MIRROR=$(debian_mirror)
[ -n "$MIRROR" ] || { echo "no Debian mirror found in /etc/apt/sources*" >&2; exit 1; }
URL=$MIRROR/pool/main/libs/libssh/$TARBALL
mkdir -p "$OUT"
if [ ! -f "$OUT/prefix/lib/libssh.so.4" ]; then
  if [ ! -f "$OUT/$TARBALL" ]; then
    echo "fetching $URL"
    curl -fsS --max-time 300 -o "$OUT/$TARBALL.part" "$URL"
    mv "$OUT/$TARBALL.part" "$OUT/$TARBALL"
  fi
  echo "$SHA256  $OUT/$TARBALL" | sha256sum -c --quiet - \
    || { echo "checksum mismatch for $TARBALL" >&2; rm -f "$OUT/$TARBALL"; exit 1; }
  rm -rf "$OUT/src" && mkdir -p "$OUT/src"
  tar -xf "$OUT/$TARBALL" -C "$OUT/src" --strip-components=1
  cmake -S "$OUT/src" -B "$OUT/libssh-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$OUT/prefix" -DWITH_GSSAPI=OFF -DWITH_EXAMPLES=OFF \
    -DUNIT_TESTING=OFF -DWITH_SERVER=ON >/dev/null
  cmake --build "$OUT/libssh-build" >/dev/null
  cmake --install "$OUT/libssh-build" >/dev/null
fi
# castgate as `make build` builds it, against that libssh (found first, and its path kept in the
# binary so the system's 0.10 is not loaded instead).
cmake -S . -B "$OUT/castgate" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
  -DCMAKE_PREFIX_PATH="$OUT/prefix" -DCMAKE_BUILD_RPATH="$OUT/prefix/lib" >/dev/null
cmake --build "$OUT/castgate"
"$OUT/castgate/gateway/castgate" --version
CASTGATE_BIN=$OUT/castgate/gateway/castgate exec bash bench/run.sh "$OUT/castgate" \
  --results "$ROOT/bench/results-libssh-0.11" "$@"
