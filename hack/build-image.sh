#!/usr/bin/env bash
# Builds the agent image from the project's Dockerfile into the test bed's Docker engine, with no
# container registry: the Dockerfile's base images are build arguments (node:20-slim for users), and
# here they are made from Debian packages with mmdebstrap (Debian 13's nodejs is 20; bookworm's 18 is
# too old for package.json's engines), cached as tarballs in $CRS_CACHE_DIR keyed by their recipe.
# RUN steps reach the npm registry through the host's network (the engine runs with --bridge none).
# Usage: hack/build-image.sh [TAG...]   (default crs-controller:<package.json version>); prints the tag.
# Needs root (apt-get for mmdebstrap, the engine).
source "$(dirname "$0")/lib.sh"
export DOCKER_HOST="$CRS_DOCKER_HOST"

version=$(jq -r .version "$REPO_ROOT/package.json")
tags=("$@"); [ ${#tags[@]} -gt 0 ] || tags=("crs-controller:$version")
suite=trixie

# The certificate authorities this host adds to Debian's (for example a TLS-inspecting proxy's, as on
# the project's CI machines): the build stages reach the npm registry through the same network as
# the host, so they trust what the host trusts. Only the build base gets them, never the runtime's.
host_cas=/usr/local/share/ca-certificates

# base_image NAME PACKAGES [host-cas]: a Debian $suite root with PACKAGES (and the host's extra CAs),
# imported as NAME:<recipe hash>.
base_image() {
  local name=$1 packages=$2 cas=${3:-} key tar hooks=() env=()
  key=$( { printf '%s %s %s\n' "$suite" "$packages" "--variant=apt"; [ -z "$cas" ] || cat "$host_cas"/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-12)
  if [ -n "$cas" ] && ls "$host_cas"/*.crt >/dev/null 2>&1; then
    hooks=(--customize-hook="copy-in $host_cas /usr/local/share" --customize-hook='chroot "$1" update-ca-certificates')
    env=(-c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  fi
  tar="$CRS_CACHE_DIR/debian-base/$name-$suite-$key.tar"
  if ! docker image inspect "$name:$key" >/dev/null 2>&1; then
    if [ ! -f "$tar" ]; then
      command -v mmdebstrap >/dev/null || {
        need_root "installing mmdebstrap" "apt-get install"
        log "apt-get install mmdebstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends mmdebstrap >/dev/null
      }
      mkdir -p "$(dirname "$tar")"
      log "mmdebstrap $suite with $packages into $tar"
      mmdebstrap --quiet --variant=apt --format=tar --include="$packages" "${hooks[@]}" "$suite" "$tar.partial" "$(debian_mirror)" ||
        die "mmdebstrap of $suite ($packages) failed"
      mv "$tar.partial" "$tar"
    fi
    docker import "${env[@]}" "$tar" "$name:$key" >/dev/null || die "docker import of $tar failed"
    log "imported $name:$key (node $(docker run --rm --network none "$name:$key" node --version))"
  fi
  echo "$name:$key"
}
runtime=$(base_image crs-node-base nodejs,ca-certificates) || exit 1
build=$(base_image crs-node-build nodejs,npm,ca-certificates host-cas) || exit 1

log "docker build ${tags[*]} (base $runtime, build stages $build)"
tag_args=(); for t in "${tags[@]}"; do tag_args+=(-t "$t"); done
# The classic builder: it honours --network host for RUN steps; BuildKit is not installed here.
DOCKER_BUILDKIT=0 docker build --quiet --network host \
  --build-arg BASE_IMAGE="$runtime" --build-arg BUILD_IMAGE="$build" \
  "${tag_args[@]}" "$REPO_ROOT" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "${tags[0]}")
log "built ${tags[*]}: $((size / 1000000)) MB"
echo "${tags[0]}"
