#!/usr/bin/env bash
# Starts the project's own Docker engine (dockerd --experimental, for checkpoint/restore) on its own
# socket, data root and exec root, and checks CRIU. Idempotent: does nothing when it already runs.
# Prints `export DOCKER_HOST=...` for the shell. Needs root: dockerd and CRIU need it.
source "$(dirname "$0")/lib.sh"
need_root "starting the Docker engine" "dockerd and CRIU (checkpoint/restore) only run as root"
bash "$HACK_DIR/install-engine.sh"

pidfile="$CRS_DOCKER_RUN/dockerd.pid"
logfile="$CRS_STATE_DIR/logs/dockerd.log"
ping() { curl -fsS --unix-socket "$CRS_DOCKER_SOCK" http://localhost/_ping; }

# containerd's XDG_RUNTIME_DIR is root-only, so nobody else can plant folders where the agent
# reclaims leaked copies (README: Security model); also for an engine an older version started.
mkdir -p "$CRS_CONTAINERD_TMP"
chmod 0700 "$CRS_CONTAINERD_TMP"

# Benchmark knobs (hack/bench, docs/benchmarks.md); both off by default and read only when the engine starts:
#   CRS_ENGINE_DEBUG=1         dockerd and the containerd it starts log at debug level (restore breakdown);
#   CRS_CONTAINERD_TMPFS_MB=N  containerd's temporary folder (CRS_CONTAINERD_TMP, where each restore
#                              unpacks its checkpoint copy) on a tmpfs of N MB. It must lie outside the data
#                              root: dockerd bind-mounts its data root over itself, which hides mounts inside it.
engine_log_level=warn
[ "${CRS_ENGINE_DEBUG:-0}" = 1 ] && engine_log_level=debug
if [ -n "${CRS_CONTAINERD_TMPFS_MB:-}" ]; then
  case "$CRS_CONTAINERD_TMP/" in
    "$CRS_DOCKER_ROOT"/*) die "CRS_CONTAINERD_TMPFS_MB: CRS_CONTAINERD_TMP ($CRS_CONTAINERD_TMP) lies inside the data root $CRS_DOCKER_ROOT, where dockerd would hide the tmpfs; set CRS_CONTAINERD_TMP to a folder outside it" ;;
  esac
  [[ "$CRS_CONTAINERD_TMPFS_MB" =~ ^[1-9][0-9]*$ ]] || die "CRS_CONTAINERD_TMPFS_MB: \"$CRS_CONTAINERD_TMPFS_MB\" is not a size in MB"
  if ! mountpoint -q "$CRS_CONTAINERD_TMP"; then
    mount -t tmpfs -o "size=${CRS_CONTAINERD_TMPFS_MB}m,mode=0700" crs-containerd-tmp "$CRS_CONTAINERD_TMP"
    log "containerd's temporary folder $CRS_CONTAINERD_TMP on a tmpfs of $CRS_CONTAINERD_TMPFS_MB MB"
  fi
fi

if pid_alive "$pidfile" && ping >/dev/null 2>&1; then
  log "engine already running (pid $(cat "$pidfile"), $CRS_DOCKER_HOST)"
  [ "${CRS_ENGINE_DEBUG:-0}" = 0 ] || log "CRS_ENGINE_DEBUG applies when the engine starts: run hack/engine-down.sh first"
else
  criu check >/dev/null 2>&1 || die "criu check failed: $(criu check 2>&1 | tail -3 | tr '\n' ' ')"
  mkdir -p "$CRS_DOCKER_ROOT" "$CRS_DOCKER_RUN" "$CRS_CONTAINERD_TMP" "$(dirname "$logfile")"
  # A dockerd killed hard leaves its pidfile and socket behind; they would block the next start.
  pid_alive "$pidfile" || rm -f "$pidfile" "$CRS_DOCKER_SOCK"
  log "starting dockerd on $CRS_DOCKER_HOST (data root $CRS_DOCKER_ROOT, log $logfile)"
  # --bridge=none and no iptables: the engine must not rewrite the host's network for tests;
  # replicas that need networking get it from a real deployment's engine.
  XDG_RUNTIME_DIR="$CRS_CONTAINERD_TMP" TMPDIR="$CRS_CONTAINERD_TMP" setsid dockerd \
    --experimental \
    --host "$CRS_DOCKER_HOST" \
    --data-root "$CRS_DOCKER_ROOT" \
    --exec-root "$CRS_DOCKER_RUN/exec" \
    --pidfile "$pidfile" \
    --bridge none --iptables=false --ip6tables=false --ip-masq=false \
    --storage-driver overlay2 \
    --log-level "$engine_log_level" \
    >>"$logfile" 2>&1 < /dev/null &
  wait_for 60 "dockerd" ping || die "dockerd did not answer on $CRS_DOCKER_SOCK within 60 s; see $logfile: $(tail -5 "$logfile" | tr '\n' ' ')"
fi
experimental=$(DOCKER_HOST="$CRS_DOCKER_HOST" docker version -f '{{.Server.Experimental}}' 2>/dev/null || true)
[ "$experimental" = true ] || die "the engine on $CRS_DOCKER_HOST does not run with experimental features (checkpoint routes need them)"
echo "export DOCKER_HOST=$CRS_DOCKER_HOST"
