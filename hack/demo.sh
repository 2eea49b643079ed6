#!/usr/bin/env bash
# The main job on the local embedded default (`npm run demo`): brings up the local control plane and
# the project's Docker engine, builds the sample workload and takes its checkpoint, starts the agent,
# applies the example CheckpointReplicaSet and shows live progress, then a summary. Ctrl-C (or
# DEMO_EXIT=1 after the summary) deletes the resource, which removes its containers, and stops the agent.
# Env: DEMO_REPLICAS (45 per node), DEMO_MEMORY_MB (200), DEMO_MAX_CONCURRENT (10), DEMO_NAMESPACE (demo),
# DEMO_NODES (1): with N > 1, nodes 2..N are the engines of hack/nodes-up.sh, each with its own
# checkpoint, Node object and agent (metrics on DEMO_METRICS_PORT + i - 1), and the progress view
# shows each node.
# Needs root: the Docker engine with CRIU does.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
replicas="${DEMO_REPLICAS:-45}"
memory_mb="${DEMO_MEMORY_MB:-200}"
max_concurrent="${DEMO_MAX_CONCURRENT:-10}"
namespace="${DEMO_NAMESPACE:-demo}"
node="${DEMO_NODE:-$(hostname | tr '[:upper:]_' '[:lower:]-')}"
port="${DEMO_METRICS_PORT:-9464}"
nodes="${DEMO_NODES:-1}"
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || die "DEMO_NODES must be 1..99, got '$nodes'"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"; npm ci --no-audit --no-fund --loglevel=error
fi
bash "$HACK_DIR/testbed-up.sh"
source "$CRS_STATE_DIR/testbed.env"
# Node 1 is the main engine; node i > 1 is the (i-1)th engine of hack/nodes-up.sh.
have=$(sed -n 's/^export NODES=//p' "$CRS_STATE_DIR/nodes.env" 2>/dev/null || true)
if [ "$nodes" -gt 1 ] && [ "${have:-0}" -lt $((nodes - 1)) ]; then bash "$HACK_DIR/nodes-up.sh" $((nodes - 1)); fi
# Node i's engine: its data root and its run dir (socket), as hack/nodes-up.sh names them.
suffix() { [ "$1" = 1 ] || echo "-n$(($1 - 1))"; }
engine_root() { echo "$CRS_DOCKER_ROOT$(suffix "$1")"; }
engine_run() { echo "$CRS_DOCKER_RUN$(suffix "$1")"; }
engine_tmp() { if [ "$1" = 1 ]; then echo "$CONTAINERD_TMP"; else echo "$(engine_root "$1")/containerd-tmp"; fi; }
node_name() { if [ "$1" = 1 ]; then echo "$node"; else echo "$node-$1"; fi; }

free_gb=$(df -BG --output=avail "$CRS_DOCKER_ROOT" | tail -1 | tr -dc 0-9)
need_gb=$(( (memory_mb * (max_concurrent * 3 + 2)) / 1024 + 1 ))
[ "$free_gb" -ge "$need_gb" ] || log "warning: $free_gb GB free under $CRS_DOCKER_ROOT; $replicas restores of a $memory_mb MB checkpoint, $max_concurrent at a time, want about $need_gb GB (the agent waits for room rather than fail)"

for i in $(seq 1 "$nodes"); do
  # A checkpoint belongs to the engine that made it: each node takes its own.
  log "node $(node_name "$i"): taking checkpoint 'warm' of container app-template ($memory_mb MB)"
  CRS_DOCKER_ROOT=$(engine_root "$i") CRS_DOCKER_RUN=$(engine_run "$i") APP_MEMORY_MB="$memory_mb" RESTORE_INTO_NAMESPACES="$namespace" \
    bash "$HACK_DIR/checkpoint-workload.sh" app-template warm >/dev/null
done

kubectl apply --server-side --force-conflicts -f crds/checkpoint.dev_checkpointreplicasets.yaml >/dev/null
kubectl wait --for=condition=Established crd/checkpointreplicasets.checkpoint.dev --timeout=60s >/dev/null
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# No kubelet runs here, so each agent's Node object is made by hand (it carries the labels that
# spec.nodeSelector matches); one agent per node, as the DaemonSet would run them.
agents=() metrics=() agent_logs=()
mkdir -p "$CRS_STATE_DIR/logs"
for i in $(seq 1 "$nodes"); do
  name=$(node_name "$i")
  kubectl apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels: { kubernetes.io/hostname: $name }
NODE
  agent_log="$CRS_STATE_DIR/logs/agent-demo$([ "$i" = 1 ] || echo "-$i").log"
  agent_port=$((port + i - 1))
  log "starting the agent for node $name (log $agent_log, metrics http://127.0.0.1:$agent_port/metrics)"
  node_modules/.bin/tsx controller/main.ts --kubeconfig "$KUBECONFIG" --node-name "$name" \
    --docker-socket "$(engine_run "$i")/docker.sock" --docker-root "$(engine_root "$i")" \
    --containerd-tmp "$(engine_tmp "$i")" --metrics-address "127.0.0.1:$agent_port" \
    --metrics-secure=false --max-concurrent-restores "$max_concurrent" >>"$agent_log" 2>&1 &
  agents+=($!) metrics+=("$name=http://127.0.0.1:$agent_port") agent_logs+=("$agent_log")
done

cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return; cleaned=1
  echo
  log "cleaning up: deleting the CheckpointReplicaSet (the agent removes its containers first)"
  kubectl -n "$namespace" delete crs app --ignore-not-found --timeout=120s >/dev/null 2>&1 || log "delete did not finish; see ${agent_logs[*]}"
  for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  log "done; the control plane and engine keep running (stop them with: bash hack/testbed-down.sh)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for i in "${!agents[@]}"; do
  for _ in $(seq 1 120); do
    curl -fsS "${metrics[$i]#*=}/readyz" >/dev/null 2>&1 && break
    kill -0 "${agents[$i]}" 2>/dev/null || die "the agent exited; see ${agent_logs[$i]}"; sleep 0.5
  done
done

log "applying manifests/examples/replicaset.yaml: $replicas replicas on each of $nodes node(s), at most $max_concurrent restores at a time per node"
sed -E "s/^(  replicas:) [0-9]+/\1 $replicas/; s/^(    maxConcurrent:) [0-9]+/\1 $max_concurrent/" manifests/examples/replicaset.yaml |
  kubectl -n "$namespace" apply -f - >/dev/null
node_modules/.bin/tsx hack/demo/progress.ts --namespace "$namespace" --name app --nodes "$nodes" \
  --metrics "$(IFS=,; echo "${metrics[*]}")" || true

cat <<INFO

  kubectl:  export KUBECONFIG=$KUBECONFIG PATH=$KUBE_BIN_DIR:\$PATH
            kubectl -n $namespace get crs; kubectl -n $namespace describe crs app
  docker:   DOCKER_HOST=$DOCKER_HOST docker ps --filter label=checkpoint.dev/owner-name=app$([ "$nodes" = 1 ] ||
  printf '\n            (node i > 1: DOCKER_HOST=unix://%s-n<i-1>/docker.sock)' "$CRS_DOCKER_RUN")
  metrics:  curl -s http://127.0.0.1:$port/metrics | grep ^crs_   (node i: port $port + i - 1)
  agent logs: ${agent_logs[*]}
INFO
if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
log "running; press Ctrl-C to clean up"
wait "${agents[@]}"
