#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd at the pinned versions from the Go module proxy into
# $KUBE_BIN_DIR. No-op when the binaries are already there. Needs Go and network access to the
# Go module proxy; takes 10-20 minutes cold on 2 cores, seconds when cached.
source "$(dirname "$0")/lib.sh"

if [ -x "$KUBE_BIN_DIR/kube-apiserver" ] && [ -x "$KUBE_BIN_DIR/kubectl" ] && [ -x "$KUBE_BIN_DIR/etcd" ]; then
  log "control plane binaries cached in $KUBE_BIN_DIR"
  exit 0
fi
work="$CRS_CACHE_DIR/build-$KUBE_VERSION"
log "building kube-apiserver, kubectl $KUBE_VERSION and etcd $ETCD_VERSION in $work"
write_kube_module "$work" "go.etcd.io/etcd/server/v3 $ETCD_VERSION" \
  go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl

cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0
go mod tidy -e >/dev/null 2>&1 || true
out="$work/bin"
mkdir -p "$out"
ldflags=$(kube_ldflags)
go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
mkdir -p "$KUBE_BIN_DIR"
mv "$out/kube-apiserver" "$out/kubectl" "$out/etcd" "$KUBE_BIN_DIR/"
log "built into $KUBE_BIN_DIR"
