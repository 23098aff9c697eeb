#!/bin/bash
# Build conform/postgres (the docker provider's default Postgres image) with no registry:
# a Debian minbase root filesystem from debootstrap with Debian's postgresql, slimmed, with a
# cluster initialised at build time, imported with `docker import` (a `FROM scratch` image).
#
# Usage: images/postgres/build.sh [TAG]      (default conform/postgres:15)
# Env:   MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm),
#        CACHE  (debootstrap's .deb cache, default /var/cache/conform/debootstrap).
# Needs root, debootstrap and a Docker engine. `cargo xtask images` runs it only when
# `docker image inspect` does not find the tag. Takes about 45-60 s on 2 cores.
set -euo pipefail
TAG=${1:-conform/postgres:15}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
CACHE=${CACHE:-/var/cache/conform/debootstrap}
HERE=$(cd "$(dirname "$0")" && pwd)

# The root filesystem is written on tmpfs when there is one: the disk is the slow part.
PARENT=/dev/shm; [ -d "$PARENT" ] && [ -w "$PARENT" ] || PARENT=${TMPDIR:-/tmp}
WORK=$(mktemp -d "$PARENT/conform-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$CACHE"

echo "images/postgres: debootstrap $SUITE (minbase + postgresql) from $MIRROR" >&2
debootstrap --variant=minbase --include=postgresql --cache-dir="$CACHE" "$SUITE" "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  echo "images/postgres: debootstrap failed; its log ends with:" >&2; tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }

# Slim: package caches, docs, locales, the cluster the package made, and the JIT (LLVM and z3,
# about 130 MB; the entrypoint runs with jit=off).
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* "$R"/usr/share/man/* \
       "$R"/usr/share/info/* "$R"/var/lib/postgresql/*/main "$R"/etc/postgresql/* "$R"/var/log/postgresql/* \
       "$R"/usr/lib/postgresql/*/lib/llvmjit* "$R"/usr/lib/postgresql/*/lib/bitcode "$R"/usr/lib/x86_64-linux-gnu/libLLVM* \
       "$R"/usr/lib/x86_64-linux-gnu/libz3.so*
find "$R/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

# The baked cluster: local (socket) connections trusted, TCP needs a password, as natively.
BIN=$(cd "$R" && ls -d usr/lib/postgresql/*/bin | sort -V | tail -n 1)
chroot --userspec=postgres:postgres "$R" env LANG=C.UTF-8 "/$BIN/initdb" -D /var/lib/postgresql/data -U postgres \
  --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 || {
  echo "images/postgres: initdb in the image failed:" >&2; cat "$WORK/initdb.log" >&2; exit 1; }
install -m 755 "$HERE/entrypoint.sh" "$R/usr/local/bin/conform-postgres-entrypoint"

echo "images/postgres: docker import -> $TAG" >&2
tar -C "$R" -c . | docker import \
  --change 'USER postgres' \
  --change 'ENV PGDATA=/var/lib/postgresql/data PGPORT=5432 LANG=C.UTF-8' \
  --change 'LABEL dev.conform.image=postgres' \
  --change 'ENTRYPOINT ["/usr/local/bin/conform-postgres-entrypoint"]' - "$TAG" >/dev/null
