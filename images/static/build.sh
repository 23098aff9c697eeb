#!/bin/bash
# Wrap one static binary (a CGO_ENABLED=0 Go build) into a `FROM scratch` image that runs it as
# the non-root user `app` (uid 65532): the Dockerfile, passwd and group beside this script plus
# the binary, nothing else. The harness builds the same image from the same files
# (harness/src/service/scratch_image.rs); this script is for doing it by hand.
#
# Usage: images/static/build.sh BINARY TAG
set -euo pipefail
BINARY=${1:?usage: images/static/build.sh BINARY TAG}
TAG=${2:?usage: images/static/build.sh BINARY TAG}
HERE=$(cd "$(dirname "$0")" && pwd)
if file -b "$BINARY" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "images/static: $BINARY is dynamically linked; a scratch image has no libc (build with CGO_ENABLED=0)" >&2
  exit 1
fi
CTX=$(mktemp -d "${TMPDIR:-/tmp}/conform-static.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
cp "$HERE/Dockerfile" "$HERE/passwd" "$HERE/group" "$CTX/"
install -m 755 "$BINARY" "$CTX/service"
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$CTX" >/dev/null
