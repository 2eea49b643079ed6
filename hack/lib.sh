# Shared settings for the hack/ scripts. Source it; do not run it.
# Everything the scripts create lives in two places:
#   - CRS_CACHE_DIR: built binaries keyed by version (survives clean clones; safe to delete);
#   - CRS_STATE_DIR: the running test bed (certs, etcd data, kubeconfig, Docker data root, logs).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"

CRS_CACHE_DIR="${CRS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/crs-controller}"
CRS_STATE_DIR="${CRS_STATE_DIR:-$REPO_ROOT/.local}"
KUBE_BIN_DIR="$CRS_CACHE_DIR/kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
# The rest of a node (hack/build-node.sh): its own cache key, so the control plane's stays valid.
NODE_BIN_DIR="$CRS_CACHE_DIR/node-$KUBE_VERSION"

# The control plane listens on loopback only.
APISERVER_PORT="${APISERVER_PORT:-16443}"
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-12380}"
CP_DIR="$CRS_STATE_DIR/control-plane"
KUBECONFIG_PATH="$CP_DIR/admin.kubeconfig"

# The project's own Docker engine: its own socket, data root and exec root, so it never
# disturbs another Docker daemon on the machine.
CRS_DOCKER_ROOT="${CRS_DOCKER_ROOT:-/var/lib/crs-docker}"
CRS_DOCKER_RUN="${CRS_DOCKER_RUN:-/run/crs-docker}"
CRS_DOCKER_SOCK="$CRS_DOCKER_RUN/docker.sock"
CRS_DOCKER_HOST="unix://$CRS_DOCKER_SOCK"
# containerd writes (and leaks) one ctrd-checkpoint* copy per restore into $XDG_RUNTIME_DIR;
# pointing it at a folder of ours keeps those copies out of /tmp and traceable.
# Overridable for the benchmarks' tmpfs experiment (hack/engine-up.sh, CRS_CONTAINERD_TMPFS_MB).
CRS_CONTAINERD_TMP="${CRS_CONTAINERD_TMP:-$CRS_DOCKER_ROOT/containerd-tmp}"

# write_kube_module DIR "EXTRA_REQUIRE" PACKAGE...: a Go module in DIR that builds the given
# packages of k8s.io/kubernetes at $KUBE_VERSION from the Go module proxy. k8s.io/kubernetes replaces
# its staging modules (k8s.io/api, client-go, ...) with ./staging/...; each is published as v0.N.P,
# so the module replaces them with those releases (the list is read from k8s.io/kubernetes's go.mod).
write_kube_module() {
  local dir=$1 extra=$2; shift 2
  command -v go >/dev/null || die "Go is required to build Kubernetes components (https://go.dev/dl); none on PATH"
  command -v curl >/dev/null || die "curl is required"
  local staging_version="v0.${KUBE_VERSION#v1.}" goproxy proxy kube_mod staging m p
  goproxy=$(go env GOPROXY); proxy="${goproxy%%,*}"; [ -n "$proxy" ] && [ "$proxy" != direct ] || proxy=https://proxy.golang.org
  kube_mod=$(curl -fsSL "$proxy/k8s.io/kubernetes/@v/$KUBE_VERSION.mod") ||
    die "cannot read k8s.io/kubernetes@$KUBE_VERSION's go.mod from $proxy"
  staging=$(printf '%s\n' "$kube_mod" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')
  [ -n "$staging" ] || die "no staging replace block found in k8s.io/kubernetes@$KUBE_VERSION's go.mod"
  mkdir -p "$dir"
  {
    echo "module crs-controller/hack/kube-build"
    echo
    echo "go 1.24.0"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $KUBE_VERSION"
    [ -z "$extra" ] || echo "	$extra"
    echo ")"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_version"; done
    echo ")"
  } > "$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
    printf ')\n'
  } > "$dir/tools.go"
}

# The -ldflags that stamp a Kubernetes binary with its release (kubectl version, /version, kubelet).
kube_ldflags() {
  local minor="${KUBE_VERSION#v1.}"
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
}

# The Debian mirror the machine's apt sources already use (the only package source the scripts use).
debian_mirror() {
  local mirror
  mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    grep -v security | head -1 | grep -oE 'https?://[^ ]+' || true)
  echo "${mirror:-http://deb.debian.org/debian}"
}

# The rest of a single-node cluster (hack/cluster-up.sh): a kubelet on a CRI containerd of its own,
# kube-controller-manager and kube-scheduler. Ports are on loopback and overridable per test bed.
CLUSTER_DIR="$CRS_STATE_DIR/cluster"
CRS_NODE_NAME="${CRS_NODE_NAME:-crs-node}"
KUBELET_PORT="${KUBELET_PORT:-10250}"
KUBELET_HEALTHZ_PORT="${KUBELET_HEALTHZ_PORT:-10248}"
CRI_SOCK="$CLUSTER_DIR/cri/containerd.sock"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root (run it with sudo): $2"
}

# pid_alive FILE: true when FILE holds the pid of a live process.
pid_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pidfile PIDFILE NAME: stops the process PIDFILE names (TERM, KILL after 15 s) and removes the file.
stop_pidfile() {
  local pidfile=$1 name=$2 pid
  if pid_alive "$pidfile"; then
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
wait_for() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  log "$what is ready"
}
