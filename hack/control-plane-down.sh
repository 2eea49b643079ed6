#!/usr/bin/env bash
# Stops exactly the kube-apiserver and etcd that hack/control-plane-up.sh started (by their pidfiles).
# `--purge` also deletes etcd's data and the certificates.
source "$(dirname "$0")/lib.sh"
stop() {
  local name=$1 pidfile="$CP_DIR/$1.pid"
  if pid_alive "$pidfile"; then
    local pid; pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}
stop kube-apiserver
stop etcd
if [ "${1:-}" = --purge ]; then rm -rf "$CP_DIR"; log "removed $CP_DIR"; fi
