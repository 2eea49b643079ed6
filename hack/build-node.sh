#!/usr/bin/env bash
# Builds kube-controller-manager, kube-scheduler and kubelet from the same pinned Kubernetes release
# as the control plane (hack/build-control-plane.sh, same Go module approach) into $NODE_BIN_DIR,
# a cache of its own so the control plane's cache stays valid. No-op when they are there.
# Needs Go and the Go module proxy; several minutes cold on 2 cores (README), seconds when cached.
source "$(dirname "$0")/lib.sh"

bins=(kube-controller-manager kube-scheduler kubelet)
cached() { local b; for b in "${bins[@]}"; do [ -x "$NODE_BIN_DIR/$b" ] || return 1; done; }
if cached; then
  log "node binaries cached in $NODE_BIN_DIR"
  exit 0
fi

work="$CRS_CACHE_DIR/build-node-$KUBE_VERSION"
log "building ${bins[*]} $KUBE_VERSION in $work"
write_kube_module "$work" "" "${bins[@]/#/k8s.io/kubernetes/cmd/}"
cd "$work"
# Static binaries, like the control plane's: the kubelet needs no cgo for what the test bed uses.
export GOFLAGS=-mod=mod CGO_ENABLED=0
go mod tidy -e >/dev/null 2>&1 || true
mkdir -p "$work/bin"
for b in "${bins[@]}"; do
  go build -trimpath -ldflags "$(kube_ldflags)" -o "$work/bin/$b" "k8s.io/kubernetes/cmd/$b"
done
mkdir -p "$NODE_BIN_DIR"
for b in "${bins[@]}"; do mv "$work/bin/$b" "$NODE_BIN_DIR/"; done
log "built into $NODE_BIN_DIR"
