#!/bin/sh
# Entrypoint of conform/postgres: start a throwaway Postgres as fast as possible.
#
# The image carries a cluster initialised at build time (SEED). If PGDATA points elsewhere (a
# tmpfs mount, which is what conform asks for), the baked cluster is copied there first, which
# costs milliseconds where initdb costs about half a second; initdb runs only if there is no seed.
# Durability is off (nothing here must survive a crash) and the server listens on 127.0.0.1 only:
# conform runs it with host networking, so this is the host's loopback. Extra arguments go to
# `postgres` after the defaults, so a caller can override any of them (-p, -k, -c name=value).
set -eu
: "${PGPORT:=5432}"
: "${PGDATA:=/var/lib/postgresql/data}"
SEED=/var/lib/postgresql/data
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -s "$SEED/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    cp -a "$SEED/." "$PGDATA/"
    chmod 700 "$PGDATA"
  else
    "$BIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 --no-sync >&2
  fi
fi
exec "$BIN/postgres" -D "$PGDATA" -p "$PGPORT" \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c jit=off "$@"
