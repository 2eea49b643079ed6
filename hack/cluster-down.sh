#!/usr/bin/env bash
# Stops what hack/cluster-up.sh started, by its pidfiles: the kubelet's pods (their containers keep
# running under containerd's shims otherwise), the kubelet, the scheduler, the controller manager and
# the CRI containerd. The control plane and the Docker engine stay up (hack/testbed-down.sh stops
# those). `--purge` also deletes the cluster's state (certificates, runtime root, kubelet root).
source "$(dirname "$0")/lib.sh"
stop_pidfile "$CLUSTER_DIR/kubelet.pid" kubelet
stop_pidfile "$CLUSTER_DIR/kube-scheduler.pid" kube-scheduler
stop_pidfile "$CLUSTER_DIR/kube-controller-manager.pid" kube-controller-manager
if pid_alive "$CLUSTER_DIR/cri/containerd.pid"; then
  # Every pod container and sandbox the kubelet left: kill its task, then delete it.
  ctr_=(ctr --address "$CRI_SOCK" --namespace k8s.io)
  for id in $("${ctr_[@]}" tasks list -q 2>/dev/null); do
    "${ctr_[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $("${ctr_[@]}" containers list -q 2>/dev/null); do
    for _ in $(seq 1 20); do "${ctr_[@]}" tasks delete "$id" >/dev/null 2>&1 && break; "${ctr_[@]}" tasks list -q | grep -qx "$id" || break; sleep 0.25; done
    "${ctr_[@]}" containers delete "$id" >/dev/null 2>&1 || true
  done
fi
stop_pidfile "$CLUSTER_DIR/cri/containerd.pid" "containerd (CRI)"
# The kubelet's volume mounts (projected tokens, bind mounts) and the runtime's leftovers.
if [ -d "$CLUSTER_DIR" ]; then
  grep -o " $CLUSTER_DIR/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
fi
rm -f "$CRS_STATE_DIR/cluster.env"
if [ "${1:-}" = --purge ]; then rm -rf "$CLUSTER_DIR"; log "removed $CLUSTER_DIR"; fi
