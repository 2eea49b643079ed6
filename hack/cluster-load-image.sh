#!/usr/bin/env bash
# Loads images from the test bed's Docker engine into the kubelet's container runtime (the CRI
# containerd of hack/cluster-up.sh, namespace k8s.io), as `kind load` does: no registry involved.
# Usage: hack/cluster-load-image.sh IMAGE...   Needs root.
source "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || die "usage: $0 IMAGE..."
[ -S "$CRI_SOCK" ] || die "the kubelet's containerd is not running ($CRI_SOCK); run hack/cluster-up.sh"
DOCKER_HOST="$CRS_DOCKER_HOST" docker save "$@" | ctr --address "$CRI_SOCK" --namespace k8s.io images import --local - >/dev/null ||
  die "importing $* into $CRI_SOCK failed"
log "loaded $* into the kubelet's runtime"
