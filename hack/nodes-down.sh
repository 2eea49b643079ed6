#!/usr/bin/env bash
# Stops the node engines hack/nodes-up.sh started (by their own pidfiles); `--purge` also removes
# their data roots. Goes by $CRS_STATE_DIR/nodes.env, so only engines this test bed started.
source "$(dirname "$0")/lib.sh"
env_file="$CRS_STATE_DIR/nodes.env"
[ -f "$env_file" ] || { log "no node engines recorded in $env_file"; exit 0; }
count=$(sed -n 's/^export NODES=//p' "$env_file")
for i in $(seq 1 "${count:-0}"); do
  CRS_DOCKER_ROOT="$CRS_DOCKER_ROOT-n$i" CRS_DOCKER_RUN="$CRS_DOCKER_RUN-n$i" bash "$HACK_DIR/engine-down.sh" "$@"
done
rm -f "$env_file"
