#!/usr/bin/env bash
# Turns the test bed into a single-node Kubernetes cluster, on demand, idempotently: on top of
# hack/testbed-up.sh (etcd, kube-apiserver, the project's Docker engine) it starts
#   - a containerd of its own with the CRI plugin (own socket, root, state and runc root; separate
#     from the Docker engine whose containers the agent manages) for the kubelet's pods,
#   - a pause image built from hack/pause/pause.c and the agent image (hack/build-image.sh), both
#     loaded into that containerd (no registry),
#   - kube-controller-manager, kube-scheduler and a kubelet from the same pinned release as the
#     apiserver (hack/build-node.sh, cached under their own key),
# and waits until the Node is Ready. Writes $CRS_STATE_DIR/cluster.env. Needs root (kubelet,
# containerd). Stop with hack/cluster-down.sh (hack/testbed-down.sh does too).
source "$(dirname "$0")/lib.sh"
need_root "starting a kubelet" "the kubelet and its containerd manage cgroups, mounts and namespaces"
start=$SECONDS
bash "$HACK_DIR/testbed-up.sh"
bash "$HACK_DIR/build-node.sh"
command -v containerd >/dev/null && command -v ctr >/dev/null || die "containerd is required (hack/install-engine.sh installs it)"
if [ ! -x /usr/lib/cni/bridge ]; then
  log "apt-get install containernetworking-plugins"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends containernetworking-plugins >/dev/null
fi

pki="$CP_DIR/pki"
logs="$CRS_STATE_DIR/logs"
cri="$CLUSTER_DIR/cri"
mkdir -p "$CLUSTER_DIR" "$logs" "$cri" "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/kubelet" "$CLUSTER_DIR/pod-logs"
kubectl=("$KUBE_BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH")
export DOCKER_HOST="$CRS_DOCKER_HOST"

# --- Identities: client certificates signed by the test bed's CA ----------------------------------------
# client_kubeconfig NAME SUBJECT: a cert for SUBJECT and a kubeconfig $CLUSTER_DIR/NAME.kubeconfig.
client_kubeconfig() {
  local name=$1 subject=$2 dir="$CLUSTER_DIR/pki"
  mkdir -p "$dir"
  if [ ! -f "$dir/$name.crt" ]; then
    openssl req -newkey rsa:2048 -nodes -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "$subject" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
      -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr"
  fi
  cat > "$CLUSTER_DIR/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: crs-test
  cluster: { server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$pki/ca.crt" }
users:
- name: $name
  user: { client-certificate: "$dir/$name.crt", client-key: "$dir/$name.key" }
contexts:
- name: $name
  context: { cluster: crs-test, user: $name }
current-context: $name
KC
}
# The bootstrap RBAC roles of these users ship with the apiserver.
client_kubeconfig kube-controller-manager "/CN=system:kube-controller-manager"
client_kubeconfig kube-scheduler "/CN=system:kube-scheduler"
client_kubeconfig kubelet "/O=system:nodes/CN=system:node:$CRS_NODE_NAME"
# The apiserver authorizes with RBAC only (no Node authorizer: the flags are shared by every test bed
# that never runs a kubelet). system:node is the role the Node authorizer would narrow to the node's
# own objects; bound to this one node's identity it gives the kubelet what a node needs.
"${kubectl[@]}" apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "crs-testbed:node:$CRS_NODE_NAME" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:node:$CRS_NODE_NAME" }]
YAML

# start_daemon NAME PIDFILE COMMAND...: runs COMMAND in the background (log $logs/<name>.log) unless
# it already runs with the same command line and files named on it; one started from older settings is
# restarted (pods keep running: their containers live in containerd's shims).
start_daemon() {
  local name=$1 pidfile=$2; shift 2
  local log="$logs/$name.log" signature a
  signature=$(for a in "$@"; do printf '%s\n' "$a"; [ ! -f "$a" ] || cat "$a"; done | sha256sum | cut -c1-16)
  if pid_alive "$pidfile"; then
    [ "$(cat "$pidfile.signature" 2>/dev/null)" = "$signature" ] && return 0
    log "restarting $name: its settings changed"
    stop_pidfile "$pidfile" "$name"
  fi
  log "starting $name (log $log)"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! > "$pidfile"
  echo "$signature" > "$pidfile.signature"
}

# --- The kubelet's container runtime -------------------------------------------------------------------
pause_image="crs-pause:$(sha256sum "$HACK_DIR/pause/pause.c" | cut -c1-12)"
cat > "$cri/config.toml" <<TOML
version = 2
root = "$cri/root"
state = "$cri/state"
[grpc]
  address = "$CRI_SOCK"
[ttrpc]
  address = "$cri/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Without CAP_SYS_RESOURCE (as inside a container, like this project's CI machines) the kernel
  # refuses a negative oom_score_adj, which the kubelet asks for every pod sandbox (-998) and runc
  # then fails "can't get final child's PID from pipe": clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # PID 1 is not systemd here: the cgroupfs driver, as the kubelet's.
        SystemdCgroup = false
        Root = "$cri/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "$cri/opt"
TOML
# The runtime reports its network ready only with a CNI config. The agent's pod uses the host's
# network (manifests/overlays/testbed explains why), so this bridge is only for other pods.
cat > "$CLUSTER_DIR/cni/net.d/10-crs-testbed.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "crs-testbed",
  "plugins": [
    { "type": "bridge", "bridge": "crs-cni0", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.244.77.0/24" }]], "dataDir": "$CLUSTER_DIR/cni/ipam" } },
    { "type": "loopback" }
  ]
}
JSON
cri_ok() { ctr --address "$CRI_SOCK" version >/dev/null 2>&1; }
pid_alive "$cri/containerd.pid" || rm -f "$CRI_SOCK"
start_daemon containerd-cri "$cri/containerd.pid" containerd --config "$cri/config.toml" --log-level warn
wait_for 30 "containerd (CRI)" cri_ok || die "containerd did not answer on $CRI_SOCK within 30 s: $(tail -5 "$logs/containerd-cri.log" | tr '\n' ' ')"

# --- Images: the pause process and the agent, built here and loaded into the runtime --------------------
if ! docker image inspect "$pause_image" >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  gcc -O2 -static -o "$tmp/pause" "$HACK_DIR/pause/pause.c"
  tar -C "$tmp" -cf "$tmp/pause.tar" pause
  docker import -c 'ENTRYPOINT ["/pause"]' "$tmp/pause.tar" "$pause_image" >/dev/null
  rm -rf "$tmp"
fi
agent_image=$(bash "$HACK_DIR/build-image.sh")
bash "$HACK_DIR/cluster-load-image.sh" "$pause_image" "$agent_image"

# --- kube-controller-manager and kube-scheduler ------------------------------------------------------------
# start_component NAME ARGS...: NAME from $NODE_BIN_DIR (see start_daemon).
start_component() {
  local name=$1; shift
  start_daemon "$name" "$CLUSTER_DIR/$name.pid" "$NODE_BIN_DIR/$name" "$@"
}
# Each controller acts as its own ServiceAccount (the bootstrap roles are made for that); the token
# controller signs with the apiserver's key and publishes the CA that pods' projected tokens carry.
start_component kube-controller-manager \
  --kubeconfig "$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --leader-elect=false --secure-port 0 --v 1
start_component kube-scheduler \
  --kubeconfig "$CLUSTER_DIR/kube-scheduler.kubeconfig" \
  --leader-elect=false --secure-port 0 --v 1

# --- kubelet -------------------------------------------------------------------------------------------
cat > "$CLUSTER_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CRI_SOCK
# This machine has cgroup v1 (hybrid) and PID 1 is not systemd; kubelet >= 1.31 refuses cgroup v1
# unless told otherwise.
cgroupDriver: cgroupfs
failCgroupV1: false
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
# Only clients with a certificate of the test bed's CA (the apiserver, the admin) reach its API.
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: "$pki/ca.crt" }
authorization: { mode: AlwaysAllow }
# A shared test machine's disk is not the node's alone: evict nothing and collect no images for it
# (the agent image is loaded, not pulled; nothing could bring it back).
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
# Containers' logs (kubectl logs needs the apiserver to hold a kubelet client cert, which the shared
# apiserver flags do not give it): read them here.
podLogsDir: $CLUSTER_DIR/pod-logs
YAML
start_component kubelet \
  --config "$CLUSTER_DIR/kubelet.yaml" \
  --kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" \
  --root-dir "$CLUSTER_DIR/kubelet" --cert-dir "$CLUSTER_DIR/kubelet/pki" \
  --hostname-override "$CRS_NODE_NAME" --v 1
# Ready as posted by THIS kubelet (a Node object outlives its kubelet, with its last status).
node_ready() {
  curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null &&
  [ "$("${kubectl[@]}" get node "$CRS_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
wait_for 120 "node $CRS_NODE_NAME" node_ready ||
  die "node $CRS_NODE_NAME not Ready within 120 s: $("${kubectl[@]}" get node "$CRS_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>&1); kubelet log: $(grep -E '^E' "$logs/kubelet.log" | tail -5)"

cat > "$CRS_STATE_DIR/cluster.env" <<ENV
export CRS_NODE_NAME=$CRS_NODE_NAME
export CRI_SOCK=$CRI_SOCK
export AGENT_IMAGE=$agent_image
export POD_LOGS_DIR=$CLUSTER_DIR/pod-logs
ENV
log "cluster ready in $((SECONDS - start)) s: node $CRS_NODE_NAME, agent image $agent_image"
