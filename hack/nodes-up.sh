#!/usr/bin/env bash
# Brings up N extra Docker engines for multi-node tests, one per simulated node, idempotently:
#   hack/nodes-up.sh [N]          (default NODES or 4: multinode-membership.test.ts needs 4)
# Node i gets its own dockerd (socket, data root, exec root, containerd tmp) under
# $CRS_DOCKER_ROOT-n<i> / $CRS_DOCKER_RUN-n<i>, the sample image, and its own checkpoint "warm" of
# the sample workload taken on that engine (container app-template; APP_MEMORY_MB default 16 to bound
# disk). The Node objects are left to the tests (they own their labels); this writes
# $CRS_STATE_DIR/nodes.env with NODE<i>_DOCKER_SOCKET / _ROOT / _CONTAINERD_TMP for tests and shells.
# Needs the control plane and the main engine (hack/testbed-up.sh) first: the image is copied from it.
source "$(dirname "$0")/lib.sh"
need_root "starting the node engines" "dockerd and CRIU (checkpoint/restore) only run as root"
count="${1:-${NODES:-4}}"
[[ "$count" =~ ^[1-9][0-9]?$ ]] || die "node count must be 1..99, got '$count'"
image="${SAMPLE_IMAGE:-crs-sample-app:latest}"
main_host="$CRS_DOCKER_HOST"
env_file="$CRS_STATE_DIR/nodes.env"
: > "$env_file.tmp"
for i in $(seq 1 "$count"); do
  root="$CRS_DOCKER_ROOT-n$i" run="$CRS_DOCKER_RUN-n$i"
  CRS_DOCKER_ROOT="$root" CRS_DOCKER_RUN="$run" bash "$HACK_DIR/engine-up.sh" >/dev/null
  host="unix://$run/docker.sock"
  # Copy the image from the main engine rather than compiling it once per node (CPU is scarce).
  want=$(DOCKER_HOST="$main_host" docker image inspect -f '{{.Id}}' "$image")
  have=$(DOCKER_HOST="$host" docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    DOCKER_HOST="$main_host" docker save "$image" | DOCKER_HOST="$host" docker load >/dev/null
    log "node $i: loaded $image"
  fi
  # Each engine checkpoints the workload itself: a checkpoint belongs to the engine that made it.
  # A checkpoint of an older image is stale (restores would run the old program): take it again
  # when app-template's image is not the current one.
  template_image=$(DOCKER_HOST="$host" docker inspect -f '{{.Image}}' app-template 2>/dev/null || true)
  if [ "$template_image" != "$want" ] || ! DOCKER_HOST="$host" docker checkpoint ls app-template 2>/dev/null | grep -qx warm; then
    CRS_DOCKER_ROOT="$root" CRS_DOCKER_RUN="$run" APP_MEMORY_MB="${APP_MEMORY_MB:-16}" \
      bash "$HACK_DIR/checkpoint-workload.sh" app-template warm >/dev/null
  fi
  cat >> "$env_file.tmp" <<ENV
export NODE${i}_DOCKER_SOCKET=$run/docker.sock
export NODE${i}_DOCKER_ROOT=$root
export NODE${i}_CONTAINERD_TMP=$root/containerd-tmp
ENV
done
echo "export NODES=$count" >> "$env_file.tmp"
mv "$env_file.tmp" "$env_file"
log "$count node engines ready: source $env_file"
