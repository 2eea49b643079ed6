#!/usr/bin/env bash
# Where one restore's time goes: one restore of an M MB checkpoint (default 200) into a new container
# with its own unique copy, timed from outside and broken down from the engine's debug log (dockerd and
# the containerd it starts) and CRIU's restore.log. Prints the log lines that mark each phase, with
# their offsets from the API call; docs/benchmarks.md ("Where a restore's time goes") reads them.
#   bash hack/engine-down.sh && CRS_ENGINE_DEBUG=1 bash hack/engine-up.sh   # debug logs on
#   COLD=1 bash hack/bench/restore-breakdown.sh 200                          # COLD=1: drop the page cache first (machine-wide)
#   bash hack/engine-down.sh && bash hack/engine-up.sh                       # back to normal
source "$(dirname "$0")/../lib.sh"
need_root "the breakdown" "it reads the engine's files and may drop the page cache"
export DOCKER_HOST="$CRS_DOCKER_HOST"
mb="${1:-200}"
logfile="$CRS_STATE_DIR/logs/dockerd.log"
grep -q 'level=debug' "$logfile" || die "no debug lines in $logfile: start the engine with CRS_ENGINE_DEBUG=1 (see the header)"

src=""; id=""
# Whatever happens, the containers and the unpacked copy this script made go (containerd leaves the copy: issue 10166).
cleanup() {
  [ -z "$id" ] || for d in "$CRS_CONTAINERD_TMP"/ctrd-checkpoint*; do [ "$(cat "$d/replica-id" 2>/dev/null)" = "$id" ] && rm -rf "$d"; done
  docker rm -f $id $src >/dev/null 2>&1 || true
}
trap cleanup EXIT
src=$(APP_MEMORY_MB="$mb" bash "$HACK_DIR/checkpoint-workload.sh" breakdown-src warm | tail -1)
image=$(docker inspect -f '{{.Image}}' "$src")
id=$(docker create --network none -e APP_MEMORY_MB="$mb" --label checkpoint.dev/bench=breakdown "$image")
copy="$CRS_DOCKER_ROOT/containers/$id/checkpoints/warm"
mkdir -p "$(dirname "$copy")"
cp -al "$CRS_DOCKER_ROOT/containers/$src/checkpoints/warm" "$copy"
echo "$id" > "$copy/replica-id" # unique: its own upload digest
from=$(($(wc -l < "$logfile") + 1))
if [ "${COLD:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
t0=$(date +%s.%N)
docker start --checkpoint warm "$id" >/dev/null
t1=$(date +%s.%N)
sleep 1
echo "checkpoint: $(du -sm "$copy" | cut -f1) MB of CRIU images; page cache: $([ "${COLD:-0}" = 1 ] && echo dropped || echo warm)"
echo "docker start --checkpoint returned after $(echo "$t1 - $t0" | bc) s"
echo "--- engine log, offsets from the first line after the call (s) ---"
tail -n +"$from" "$logfile" |
  grep -E "$id|ctrd-checkpoint|checkpoint|content|ingest|commit|Checkpoint|restore|snapshot|shim|TaskCreate|TaskStart|task" |
  grep -vE 'loading plugin' |
  awk -v t0="$t0" '{ if (match($0, /time="[^"]+"/)) { ts = substr($0, RSTART + 6, RLENGTH - 7); cmd = "date -d \"" ts "\" +%s.%N"; cmd | getline s; close(cmd); printf "%+7.3f  %s\n", s - t0, substr($0, 1, 260) } }'
# containerd logs neither the upload's commit nor the unpack: the unpacked copy's folder tells when
# the unpack began (its birth) and ended (its newest file), and so where the upload ended.
for d in "$CRS_CONTAINERD_TMP"/ctrd-checkpoint*; do
  [ "$(cat "$d/replica-id" 2>/dev/null)" = "$id" ] || continue
  born=$(stat -c %W "$d"); newest=$(find "$d" -type f -printf '%C@\n' | sort -n | tail -1)
  printf '%+7.3f  unpack into %s began (folder born)\n%+7.3f  unpack ended: last file changed, by ctime since the unpack keeps the tar mtimes\n' "$(echo "$born - $t0" | bc)" "$d" "$(echo "$newest - $t0" | bc)"
done
echo "--- CRIU restore.log ---"
restore_log=$(find "$CRS_DOCKER_RUN" "$CRS_DOCKER_ROOT" -name restore.log -path "*$id*" 2>/dev/null | head -1)
if [ -n "$restore_log" ]; then
  echo "$restore_log ($(stat -c %y "$restore_log"))"; grep -E 'Version|Restore finished|pagemap|Forking' "$restore_log" | head -5; tail -3 "$restore_log"
else
  echo "no restore.log under $CRS_DOCKER_RUN or $CRS_DOCKER_ROOT for $id"
fi
