#!/usr/bin/env bash
# Brings up the whole local test bed, idempotently: tools, the Kubernetes control plane, the project's
# Docker engine with CRIU, the sample workload image and the node engines (hack/nodes-up.sh). Writes .local/testbed.env for tests and
# shells (`source .local/testbed.env`). Needs root (see hack/engine-up.sh).
source "$(dirname "$0")/lib.sh"
start=$SECONDS
bash "$HACK_DIR/install-tools.sh"
bash "$HACK_DIR/control-plane-up.sh" >/dev/null
bash "$HACK_DIR/engine-up.sh" >/dev/null
bash "$HACK_DIR/build-workload.sh"
bash "$HACK_DIR/build-gitops-check.sh" >/dev/null # kstatus + Argo CD Lua, for the GitOps health tests
# One engine per simulated node for the multi-node tests (NODES=0 skips them); writes .local/nodes.env.
[ "${NODES:-4}" = 0 ] || bash "$HACK_DIR/nodes-up.sh" "${NODES:-4}"
image="${SAMPLE_IMAGE:-crs-sample-app:latest}"
cat > "$CRS_STATE_DIR/testbed.env" <<ENV
export KUBECONFIG=$KUBECONFIG_PATH
export KUBECTL=$KUBE_BIN_DIR/kubectl
export DOCKER_HOST=$CRS_DOCKER_HOST
export DOCKER_SOCKET=$CRS_DOCKER_SOCK
export DOCKER_ROOT=$CRS_DOCKER_ROOT
export CONTAINERD_TMP=$CRS_CONTAINERD_TMP
export SAMPLE_IMAGE=$image
export PATH=$KUBE_BIN_DIR:\$PATH
ENV
log "test bed ready in $((SECONDS - start)) s: source $CRS_STATE_DIR/testbed.env"
