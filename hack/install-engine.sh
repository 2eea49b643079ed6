#!/usr/bin/env bash
# Installs what the project's Docker engine needs when it is missing: dockerd, containerd, runc
# and CRIU 4 or newer. Debian bookworm's CRIU (3.17) fails `criu check` on current kernels
# ("vdso: Unexpected rt vDSO area bounds"), so CRIU and a current engine come from Debian trixie
# through a sources entry that is removed again afterwards. Needs root (apt-get).
source "$(dirname "$0")/lib.sh"

criu_ok() {
  command -v criu >/dev/null || return 1
  local v; v=$(criu --version 2>/dev/null | sed -n 's/^Version: *\([0-9]*\).*/\1/p')
  [ "${v:-0}" -ge 4 ]
}
if command -v dockerd >/dev/null && command -v containerd >/dev/null && command -v runc >/dev/null && criu_ok; then
  log "engine packages present: $(dockerd --version), criu $(criu --version | sed -n 's/^Version: //p')"
  exit 0
fi
need_root "installing the Docker engine and CRIU" "apt-get installs docker.io, containerd, runc and criu"
command -v apt-get >/dev/null || die "no apt-get: install dockerd, containerd, runc and CRIU >= 4 yourself"

export DEBIAN_FRONTEND=noninteractive
# Same mirror the machine already uses, suite trixie.
mirror=$(debian_mirror)
trixie_list=/etc/apt/sources.list.d/crs-trixie.list
cleanup() { rm -f "$trixie_list"; apt-get update -qq >/dev/null 2>&1 || true; }
trap cleanup EXIT
echo "deb $mirror trixie main" > "$trixie_list"
log "apt-get update (with a temporary trixie entry from $mirror)"
apt-get update -qq
log "installing criu, docker.io, containerd, runc from trixie"
apt-get install -y -qq -t trixie --no-install-recommends criu docker.io containerd runc iptables >/dev/null
criu_ok || die "CRIU >= 4 did not install (criu --version: $(criu --version 2>&1 | head -2 | tr '\n' ' '))"
# Debian's docker.io enables the system daemon; ours runs on its own socket and never needs it.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi
log "installed $(dockerd --version), criu $(criu --version | sed -n 's/^Version: //p')"
