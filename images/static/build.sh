#!/bin/bash
# Wrap one static binary (a CGO_ENABLED=0 Go build) into a `FROM scratch` image that runs it as a
# non-root user: the binary, /etc/passwd and /etc/group naming that user, a writable /tmp, nothing
# else (no shell, no libc). This is how a static Go service ships to production, so conform can
# run a candidate exactly that way.
#
# Usage: images/static/build.sh BINARY TAG [UID]     (UID default 65532, named `app`)
# The binary lands at /app/<its file name> and is the entrypoint; the working directory is /app.
set -euo pipefail
BINARY=${1:?usage: images/static/build.sh BINARY TAG [UID]}
TAG=${2:?usage: images/static/build.sh BINARY TAG [UID]}
UID_=${3:-65532}
NAME=$(basename "$BINARY")
if file -b "$BINARY" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "images/static: $BINARY is dynamically linked; a scratch image has no libc (build with CGO_ENABLED=0)" >&2
  exit 1
fi
CTX=$(mktemp -d "${TMPDIR:-/tmp}/conform-static.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/tmp" "$CTX/app"
chmod 1777 "$CTX/tmp"
install -m 755 "$BINARY" "$CTX/app/$NAME"
printf 'root:x:0:0:root:/:/nonexistent\napp:x:%s:%s:app:/app:/nonexistent\n' "$UID_" "$UID_" >"$CTX/passwd"
printf 'root:x:0:\napp:x:%s:\n' "$UID_" >"$CTX/group"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM scratch
COPY passwd group /etc/
COPY tmp /tmp
COPY app /app
WORKDIR /app
USER $UID_:$UID_
ENTRYPOINT ["/app/$NAME"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$CTX" >/dev/null
