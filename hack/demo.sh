#!/usr/bin/env bash
# The main job on the local embedded default (`npm run demo`): brings up the local control plane and
# the project's Docker engine, builds the sample workload and takes its checkpoint, starts the agent,
# applies the example CheckpointReplicaSet and shows live progress, then a summary. Ctrl-C (or
# DEMO_EXIT=1 after the summary) deletes the resource, which removes its containers, and stops the agent.
# Env: DEMO_REPLICAS (45), DEMO_MEMORY_MB (200), DEMO_MAX_CONCURRENT (10), DEMO_NAMESPACE (demo).
# Needs root: the Docker engine with CRIU does.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
replicas="${DEMO_REPLICAS:-45}"
memory_mb="${DEMO_MEMORY_MB:-200}"
max_concurrent="${DEMO_MAX_CONCURRENT:-10}"
namespace="${DEMO_NAMESPACE:-demo}"
node="${DEMO_NODE:-$(hostname | tr '[:upper:]_' '[:lower:]-')}"
port="${DEMO_METRICS_PORT:-9464}"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"; npm ci --no-audit --no-fund --loglevel=error
fi
bash "$HACK_DIR/testbed-up.sh"
source "$CRS_STATE_DIR/testbed.env"

free_gb=$(df -BG --output=avail "$CRS_DOCKER_ROOT" | tail -1 | tr -dc 0-9)
need_gb=$(( (memory_mb * (max_concurrent * 3 + 2)) / 1024 + 1 ))
[ "$free_gb" -ge "$need_gb" ] || log "warning: $free_gb GB free under $CRS_DOCKER_ROOT; $replicas restores of a $memory_mb MB checkpoint, $max_concurrent at a time, want about $need_gb GB (the agent waits for room rather than fail)"

log "taking checkpoint 'warm' of container app-template ($memory_mb MB)"
APP_MEMORY_MB="$memory_mb" RESTORE_INTO_NAMESPACES="$namespace" bash "$HACK_DIR/checkpoint-workload.sh" app-template warm >/dev/null

kubectl apply --server-side --force-conflicts -f crds/checkpoint.dev_checkpointreplicasets.yaml >/dev/null
kubectl wait --for=condition=Established crd/checkpointreplicasets.checkpoint.dev --timeout=60s >/dev/null
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# No kubelet runs here, so the agent's Node object is made by hand (it carries the labels that
# spec.nodeSelector matches).
kubectl apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $node
  labels: { kubernetes.io/hostname: $node }
NODE

agent_log="$CRS_STATE_DIR/logs/agent-demo.log"
log "starting the agent for node $node (log $agent_log, metrics http://127.0.0.1:$port/metrics)"
node_modules/.bin/tsx controller/main.ts --kubeconfig "$KUBECONFIG" --node-name "$node" \
  --docker-socket "$DOCKER_SOCKET" --docker-root "$DOCKER_ROOT" --containerd-tmp "$CONTAINERD_TMP" \
  --metrics-address "127.0.0.1:$port" --metrics-secure=false --max-concurrent-restores "$max_concurrent" >>"$agent_log" 2>&1 &
agent=$!

cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return; cleaned=1
  echo
  log "cleaning up: deleting the CheckpointReplicaSet (the agent removes its containers first)"
  kubectl -n "$namespace" delete crs app --ignore-not-found --timeout=120s >/dev/null 2>&1 || log "delete did not finish; see $agent_log"
  kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
  log "done; the control plane and engine keep running (stop them with: bash hack/testbed-down.sh)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; kill -0 "$agent" 2>/dev/null || die "the agent exited; see $agent_log"; sleep 0.5; done

log "applying manifests/examples/replicaset.yaml: $replicas replicas, at most $max_concurrent restores at a time"
sed -E "s/^(  replicas:) [0-9]+/\1 $replicas/; s/^(    maxConcurrent:) [0-9]+/\1 $max_concurrent/" manifests/examples/replicaset.yaml |
  kubectl -n "$namespace" apply -f - >/dev/null
node_modules/.bin/tsx hack/demo/progress.ts --namespace "$namespace" --name app --metrics "http://127.0.0.1:$port" || true

cat <<INFO

  kubectl:  export KUBECONFIG=$KUBECONFIG PATH=$KUBE_BIN_DIR:\$PATH
            kubectl -n $namespace get crs; kubectl -n $namespace describe crs app
  docker:   DOCKER_HOST=$DOCKER_HOST docker ps --filter label=checkpoint.dev/owner-name=app
  metrics:  curl -s http://127.0.0.1:$port/metrics | grep ^crs_
  agent log: $agent_log
INFO
if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
log "running; press Ctrl-C to clean up"
wait "$agent"
