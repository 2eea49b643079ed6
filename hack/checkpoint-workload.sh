#!/usr/bin/env bash
# Runs the sample workload as a source container and takes a named checkpoint of it.
#   hack/checkpoint-workload.sh [container-name] [checkpoint-name]
# Env: APP_MEMORY_MB (default 64), APP_WARMUP_SECONDS (default 0), RESTORE_INTO_NAMESPACES
# (default '*': which namespaces may restore it), LEAVE_RUNNING=1 to keep the source running,
# APP_HTTP_PORT (default 0: no server) with NETWORK (default none; a bridge network to serve from):
# a server is quiesced (SIGUSR1: it closes its listener) before the checkpoint, see docs/serving.md.
# Replaces an existing container of that name. Prints the container id.
source "$(dirname "$0")/lib.sh"
export DOCKER_HOST="$CRS_DOCKER_HOST"
name="${1:-app-template}"
checkpoint="${2:-warm}"
memory_mb="${APP_MEMORY_MB:-64}"
warmup="${APP_WARMUP_SECONDS:-0}"
bash "$HACK_DIR/build-workload.sh"
docker rm -f "$name" >/dev/null 2>&1 || true
http_port="${APP_HTTP_PORT:-0}"
id=$(docker create --name "$name" --network "${NETWORK:-none}" \
  --label "checkpoint.dev/restore-into-namespaces=${RESTORE_INTO_NAMESPACES:-*}" \
  -e APP_MEMORY_MB="$memory_mb" -e APP_WARMUP_SECONDS="$warmup" -e APP_HTTP_PORT="$http_port" "${SAMPLE_IMAGE:-crs-sample-app:latest}")
docker start "$id" >/dev/null
# Checkpoint once it is ready and has counted a little, so a restore visibly continues the count.
ready() { docker logs "$id" 2>&1 | grep -q '^counter 2$'; }
wait_for $((warmup + 120)) "$name" ready || die "$name did not become ready: $(docker logs --tail 5 "$id" 2>&1)"
if [ "$http_port" != 0 ]; then
  docker kill -s USR1 "$id" >/dev/null
  quiesced() { docker logs "$id" 2>&1 | grep -q '^quiesced$'; }
  wait_for 30 "$name to close its listener" quiesced || die "$name did not quiesce: $(docker logs --tail 5 "$id" 2>&1)"
fi
exit_flag=--leave-running=false
[ "${LEAVE_RUNNING:-0}" = 1 ] && exit_flag=--leave-running
docker checkpoint create "$exit_flag" "$id" "$checkpoint" >/dev/null
log "checkpoint $checkpoint of $name taken ($(du -sh "$CRS_DOCKER_ROOT/containers/$id/checkpoints/$checkpoint" | cut -f1))"
echo "$id"
