#!/usr/bin/env bash
# `make bench-libssh-0.11`: the same benchmarks with castgate built against libssh 0.11.5, the
# version Debian 13 ships, on this Debian 12 machine (no container engine needed). The source is
# Debian 13's own (deb.debian.org, checked against the SHA-256 of its Sources index); it is built
# into build-libssh-0.11/ and nothing is installed system-wide.
# Usage: bench/libssh-0.11.sh [bench.py options], e.g. --only bulk,sftp,recording
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build-libssh-0.11
TARBALL=libssh_0.11.5.orig.tar.xz
SHA256=6898ba9dd836d618b71dc7a4bb786a502c173cef5cafbf20fe5e0567ba4ea30c
URL=http://deb.debian.org/debian/pool/main/libs/libssh/$TARBALL
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
