#!/usr/bin/env bash
# Stops the engine hack/engine-up.sh started (only that one: it goes by our own pidfile).
# Containers stay in the data root; `--purge` also removes the data root.
source "$(dirname "$0")/lib.sh"
pidfile="$CRS_DOCKER_RUN/dockerd.pid"
if pid_alive "$pidfile"; then
  pid=$(cat "$pidfile")
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "dockerd still running after 30 s; killing it"; kill -KILL "$pid"; }
else
  log "engine not running"
fi
rm -f "$pidfile" "$CRS_DOCKER_SOCK"
# The tmpfs engine-up.sh mounts for CRS_CONTAINERD_TMPFS_MB (only a tmpfs it named) goes with the engine.
if grep -q "^crs-containerd-tmp $CRS_CONTAINERD_TMP tmpfs " /proc/mounts; then umount "$CRS_CONTAINERD_TMP" && log "unmounted the tmpfs on $CRS_CONTAINERD_TMP"; fi
if [ "${1:-}" = --purge ]; then
  # Mounts left by containers must go before the folder can.
  grep -o " $CRS_DOCKER_ROOT[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$CRS_DOCKER_ROOT"
  log "removed $CRS_DOCKER_ROOT"
fi
