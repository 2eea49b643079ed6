#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd at the pinned versions from the Go module proxy into
# $KUBE_BIN_DIR. No-op when the binaries are already there. Needs Go and network access to the
# Go module proxy; takes 10-20 minutes cold on 2 cores, seconds when cached.
source "$(dirname "$0")/lib.sh"

if [ -x "$KUBE_BIN_DIR/kube-apiserver" ] && [ -x "$KUBE_BIN_DIR/kubectl" ] && [ -x "$KUBE_BIN_DIR/etcd" ]; then
  log "control plane binaries cached in $KUBE_BIN_DIR"
  exit 0
fi
command -v go >/dev/null || die "Go is required to build the control plane (https://go.dev/dl); none on PATH"
command -v curl >/dev/null || die "curl is required"

minor="${KUBE_VERSION#v1.}" # e.g. 34.4
staging_version="v0.$minor"
work="$CRS_CACHE_DIR/build-$KUBE_VERSION"
mkdir -p "$work"
log "building kube-apiserver, kubectl $KUBE_VERSION and etcd $ETCD_VERSION in $work"

# The staging modules k8s.io/kubernetes replaces with ./staging/...; each is published as v0.N.P.
goproxy=$(go env GOPROXY); proxy="${goproxy%%,*}"; [ -n "$proxy" ] && [ "$proxy" != direct ] || proxy=https://proxy.golang.org
kube_mod=$(curl -fsSL "$proxy/k8s.io/kubernetes/@v/$KUBE_VERSION.mod") ||
  die "cannot read k8s.io/kubernetes@$KUBE_VERSION's go.mod from $proxy"
staging=$(printf '%s\n' "$kube_mod" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')
[ -n "$staging" ] || die "no staging replace block found in k8s.io/kubernetes@$KUBE_VERSION's go.mod"

{
  echo "module crs-controller/hack/kube-build"
  echo
  echo "go 1.24.0"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $KUBE_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in $staging; do echo "	$m => $m $staging_version"; done
  echo ")"
} > "$work/go.mod"
cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO

cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0
go mod tidy -e >/dev/null 2>&1 || true
out="$work/bin"
mkdir -p "$out"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
mkdir -p "$KUBE_BIN_DIR"
mv "$out/kube-apiserver" "$out/kubectl" "$out/etcd" "$KUBE_BIN_DIR/"
log "built into $KUBE_BIN_DIR"
