#!/usr/bin/env bash
# `make image-test`'s first step: builds the Dockerfile's image as castgate:test with buildah (no
# container engine or daemon needed; Debian's packages), as root, with the layers kept under
# $CASTGATE_IMAGE_DIR (default /var/tmp/castgate-image) so a second run is quick.
#
# The Dockerfile starts FROM debian:bookworm-slim. Our machines reach no image registry, so that
# base is made here with debootstrap from the Debian mirror in this machine's apt configuration
# (never a name written in this repository), and its apt uses that mirror too. It is made again
# only when the machine's Debian sources change. CASTGATE_IMAGE_BASE=pull pulls it from a registry
# instead, where one can be reached.
#
# Extra CA certificates in /usr/local/share/ca-certificates/ (a TLS-intercepting proxy's) are
# handed to the build as the optional secret `extra-ca`: apt and npm in the build trust them, and
# no layer of the image holds them.
#
# Environment: CASTGATE_IMAGE_DIR, CASTGATE_IMAGE_TAG (castgate:test), CASTGATE_IMAGE_BASE
# (local|pull), CASTGATE_IMAGE_NICE (19: the build compiles C++ at the lowest priority),
# CASTGATE_IMAGE_STORAGE_DRIVER (vfs: works anywhere, but every layer is a full copy; overlay
# takes far less disk where the kernel allows it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CASTGATE_IMAGE_DIR:-/var/tmp/castgate-image}
TAG=${CASTGATE_IMAGE_TAG:-castgate:test}
BASE_MODE=${CASTGATE_IMAGE_BASE:-local}
NICE=${CASTGATE_IMAGE_NICE:-19}
DRIVER=${CASTGATE_IMAGE_STORAGE_DRIVER:-vfs}
SUITE=bookworm
BASE_TAG=debian:$SUITE-slim
# Bumped when the way the base is made changes, so a cached base is made again.
BASE_RECIPE=2

die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (buildah with vfs storage and chroot isolation, debootstrap)"

# --- packages ------------------------------------------------------------------------------------
need=()
for p in buildah debootstrap debian-archive-keyring python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

mkdir -p "$DIR"
# One build at a time per storage directory.
exec 9>"$DIR/.lock"
flock -w 3600 9 || die "another build holds $DIR/.lock"

BUILDAH=(buildah --root "$DIR/storage" --runroot "$DIR/run" --storage-driver "$DRIVER")

# --- the base image --------------------------------------------------------------------------------
# This machine's Debian sources for $SUITE (and its -updates/-security/-backports suites), in
# deb822 form for the base's /etc/apt/sources.list.d/debian.sources; other repositories (third
# parties' keys are not in the base) are left out. Prints the sources; the mirror is the URI of
# the stanza that carries $SUITE itself.
machine_sources() {
  python3 - "$SUITE" <<'PY'
import glob, re, sys
suite = sys.argv[1]
wanted = re.compile(r"^%s(-updates|-security|-backports)?$" % re.escape(suite))
entries = []  # (uri, [suites], [components])

def add(types, uris, suites, comps):
    if "deb" not in types:
        return
    suites = [s for s in suites if wanted.match(s)]
    if suites:
        for uri in uris:
            entries.append((uri, suites, comps))

for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    text = open(path).read()
    for stanza in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        add(fields.get("types", "").split(), fields.get("uris", "").split(),
            fields.get("suites", "").split(), fields.get("components", "").split())

lists = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
for path in lists:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3:
            add([line[0]], [line[1]], [line[2]], line[3:])

main = [e for e in entries if suite in e[1]]
if not main:
    sys.exit(f"no apt source for Debian {suite} in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources")
print("# mirror " + main[0][0])
for uri, suites, comps in entries:
    print(f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\n"
          f"Components: {' '.join(comps) or 'main'}\n"
          "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
PY
}

base_label() {
  "${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "castgate.base-sources"}}' \
    "$BASE_TAG" 2>/dev/null || true
}

make_base() {
  local sources mirror sum rootfs ctr mnt
  sources=$(machine_sources) || die "cannot read this machine's Debian apt sources"
  mirror=$(sed -n 's/^# mirror //p' <<<"$sources")
  sources=$(sed '/^# mirror /d' <<<"$sources")
  sum=$(printf '%s\n%s\n' "$BASE_RECIPE" "$sources" | sha256sum | cut -c1-64)
  if [ "$(base_label)" = "$sum" ]; then
    say "base image $BASE_TAG is cached (same apt sources)"
    return
  fi
  say "making the base image $BASE_TAG: debootstrap --variant=minbase $SUITE from this machine's mirror"
  rootfs="$DIR/rootfs"
  rm -rf "$rootfs"
  if ! nice -n "$NICE" debootstrap --variant=minbase --components=main "$SUITE" "$rootfs" "$mirror" \
      >"$DIR/debootstrap.log" 2>&1; then
    tail -n 30 "$DIR/debootstrap.log" >&2
    die "debootstrap failed (log: $DIR/debootstrap.log)"
  fi
  # Like the published slim image: apt's sources, no package caches or lists, no machine identity.
  rm -f "$rootfs/etc/apt/sources.list"
  printf '%s\n' "$sources" >"$rootfs/etc/apt/sources.list.d/debian.sources"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
         "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
         "$rootfs"/tmp/* "$rootfs"/var/tmp/*
  # No trace of this machine (debootstrap copies its resolver and name): a container engine puts
  # its own over these files.
  : >"$rootfs/etc/machine-id"
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
  "${BUILDAH[@]}" rm castgate-base >/dev/null 2>&1 || true  # left by an interrupted run
  ctr=$("${BUILDAH[@]}" from --name castgate-base scratch)
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  tar -C "$rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  "${BUILDAH[@]}" config --os linux --arch "$(dpkg --print-architecture)" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash --label "castgate.base-sources=$sum" "$ctr"
  "${BUILDAH[@]}" rmi -f "$BASE_TAG" >/dev/null 2>&1 || true
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$BASE_TAG" >/dev/null
  rm -rf "$rootfs"
  say "base image $BASE_TAG made"
}

t0=$(date +%s)
case "$BASE_MODE" in
  local) make_base ;;
  pull) "${BUILDAH[@]}" pull --quiet "$BASE_TAG" >/dev/null || die "cannot pull $BASE_TAG" ;;
  *) die "CASTGATE_IMAGE_BASE must be local or pull, not '$BASE_MODE'" ;;
esac
t1=$(date +%s)

# --- the optional secret: this machine's extra CA certificates -------------------------------------
secret=()
ca_bundle="$DIR/extra-ca.pem"
rm -f "$ca_bundle"
shopt -s nullglob
cas=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
shopt -u nullglob
if [ ${#cas[@]} -gt 0 ]; then
  (umask 077; cat "${cas[@]}" >"$ca_bundle")
  secret=(--secret "id=extra-ca,src=$ca_bundle")
  say "handing ${#cas[@]} extra CA certificate(s) to the build as the secret extra-ca"
fi

# --- the image -------------------------------------------------------------------------------------
# Even with every layer cached, buildah with vfs storage copies each stage's whole file system to
# run it (minutes). So the build is skipped when nothing it reads changed since the last one: the
# same base image and the same files (those git sees: tracked, or new and not ignored) with the
# same contents. tests/image is not in the build context (.dockerignore).
image_id() {
  "${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true
}
stamp="$DIR/$(tr -c 'A-Za-z0-9.\n-' _ <<<"$TAG").inputs"
inputs=""
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tr '\0' '\n' \
          | grep -v '^tests/image/' | LC_ALL=C sort -u) || die "cannot list the build's files"
  inputs=$( { echo "$(image_id "$BASE_TAG") ${#secret[@]}"
              cd "$ROOT" && while IFS= read -r f; do
                if [ -f "$f" ]; then sha256sum -- "$f"; else echo "absent $f"; fi
              done <<<"$files"; } | sha256sum | cut -c1-64)
fi
current=$(image_id "$TAG")
if [ -n "$inputs" ] && [ -n "$current" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs $current" ]; then
  rm -f "$ca_bundle"
  say "$TAG is up to date: nothing the build reads changed (base $((t1 - t0)) s); storage: $DIR/storage"
  exit 0
fi
rm -f "$stamp"

say "building $TAG (log: $DIR/build.log)"
if ! nice -n "$NICE" "${BUILDAH[@]}" bud --isolation chroot --pull=never --layers \
    "${secret[@]}" -t "$TAG" -f "$ROOT/Dockerfile" "$ROOT" >"$DIR/build.log" 2>&1; then
  tail -n 40 "$DIR/build.log" >&2
  die "the image build failed (log: $DIR/build.log)"
fi
rm -f "$ca_bundle"
[ -z "$inputs" ] || echo "$inputs $(image_id "$TAG")" >"$stamp"
t2=$(date +%s)
say "built $TAG (base $((t1 - t0)) s, build $((t2 - t1)) s); storage: $DIR/storage"
