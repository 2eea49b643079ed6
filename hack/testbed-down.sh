#!/usr/bin/env bash
# Stops the whole local test bed (the cluster's node if hack/cluster-up.sh started one, the control
# plane and the engine). `--purge` also deletes their data.
source "$(dirname "$0")/lib.sh"
bash "$HACK_DIR/cluster-down.sh" "$@"
bash "$HACK_DIR/control-plane-down.sh" "$@"
bash "$HACK_DIR/nodes-down.sh" "$@"
bash "$HACK_DIR/engine-down.sh" "$@"
