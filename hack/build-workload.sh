#!/usr/bin/env bash
# Builds the sample workload (hack/workload/app.c, statically linked) and imports it into the
# project's engine as crs-sample-app:latest. No registry is needed. Rebuilt only when the source
# changed (the image carries the source hash as a label).
source "$(dirname "$0")/lib.sh"
export DOCKER_HOST="$CRS_DOCKER_HOST"
image="${SAMPLE_IMAGE:-crs-sample-app:latest}"
src="$HACK_DIR/workload/app.c"
hash=$(sha256sum "$src" | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "checkpoint.dev/source-hash"}}' "$image" 2>/dev/null)" = "$hash" ]; then
  log "image $image is up to date"
  exit 0
fi
command -v gcc >/dev/null || die "gcc is required to build the sample workload (apt-get install gcc libc6-dev)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -static -o "$tmp/app" "$src"
tar -C "$tmp" -cf "$tmp/app.tar" app
docker import -c 'ENTRYPOINT ["/app"]' -c "LABEL checkpoint.dev/source-hash=$hash" "$tmp/app.tar" "$image" >/dev/null
log "imported $image"
