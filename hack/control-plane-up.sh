#!/usr/bin/env bash
# Starts a real etcd and kube-apiserver on loopback (no kubelet, like controller-runtime's envtest)
# with RBAC authorization and ServiceAccount token signing, and writes an admin kubeconfig.
# Builds the binaries first when they are not cached (hack/build-control-plane.sh).
# Idempotent: a control plane that already answers is reused. Does not need root.
source "$(dirname "$0")/lib.sh"
bash "$HACK_DIR/build-control-plane.sh"

pki="$CP_DIR/pki"
logs="$CRS_STATE_DIR/logs"
mkdir -p "$pki" "$logs" "$CP_DIR/etcd"
kubectl=("$KUBE_BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH")
healthy() { "${kubectl[@]}" get --raw=/readyz >/dev/null 2>&1; }

if pid_alive "$CP_DIR/kube-apiserver.pid" && healthy; then
  log "control plane already running on https://127.0.0.1:$APISERVER_PORT"
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  exit 0
fi
# Something half-started (or a port held by a stranger) must not be mistaken for ours.
for p in "$APISERVER_PORT" "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"; do
  if ! pid_alive "$CP_DIR/etcd.pid" && ! pid_alive "$CP_DIR/kube-apiserver.pid" &&
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p on 127.0.0.1 is taken by another program; set APISERVER_PORT/ETCD_CLIENT_PORT/ETCD_PEER_PORT"
  fi
done

# --- PKI: a CA, the apiserver's serving cert, an admin client cert, the SA signing key --------------
if [ ! -f "$pki/admin.crt" ]; then
  log "creating certificates in $pki"
  command -v openssl >/dev/null || die "openssl is required to create the control plane's certificates"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt -subj "/CN=crs-test-ca" 2>/dev/null
    cat > server.ext <<EXT
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EXT
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext -out server.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=crs-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
  )
fi

# --- etcd ----------------------------------------------------------------------------------------------
if ! pid_alive "$CP_DIR/etcd.pid"; then
  log "starting etcd on 127.0.0.1:$ETCD_CLIENT_PORT (log $logs/etcd.log)"
  setsid "$KUBE_BIN_DIR/etcd" \
    --name crs-test --data-dir "$CP_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "crs-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn \
    >>"$logs/etcd.log" 2>&1 </dev/null &
  echo $! > "$CP_DIR/etcd.pid"
  wait_for 30 etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" ||
    die "etcd did not become healthy within 30 s: $(tail -5 "$logs/etcd.log" | tr '\n' ' ')"
fi

# --- kube-apiserver --------------------------------------------------------------------------------------
cat > "$KUBECONFIG_PATH" <<KC
apiVersion: v1
kind: Config
clusters:
- name: crs-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: crs-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: crs-test
  context: { cluster: crs-test, user: crs-admin, namespace: default }
current-context: crs-test
KC
if ! pid_alive "$CP_DIR/kube-apiserver.pid"; then
  log "starting kube-apiserver $KUBE_VERSION on https://127.0.0.1:$APISERVER_PORT (log $logs/kube-apiserver.log)"
  setsid "$KUBE_BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/server.crt" --tls-private-key-file "$pki/server.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true \
    --disable-admission-plugins ServiceAccount \
    --profiling=false \
    >>"$logs/kube-apiserver.log" 2>&1 </dev/null &
  echo $! > "$CP_DIR/kube-apiserver.pid"
fi
wait_for 90 kube-apiserver healthy ||
  die "kube-apiserver did not become ready within 90 s: $(tail -5 "$logs/kube-apiserver.log" | tr '\n' ' ')"
echo "export KUBECONFIG=$KUBECONFIG_PATH"
