#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use when they are missing: Prometheus and
# promtool (alert rule tests, scrape tests), gcc + static libc (the sample workload), openssl (the
# control plane's certificates), curl, jq, iproute2. Needs root only when something is missing.
source "$(dirname "$0")/lib.sh"
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have prometheus && have promtool || missing+=(prometheus)
have gcc || missing+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
have openssl || missing+=(openssl)
have curl || missing+=(curl)
have jq || missing+=(jq)
have ip || missing+=(iproute2)
have go || die "Go is required to build kube-apiserver (it is not a Debian package in a recent enough version): install Go >= 1.24 from https://go.dev/dl"
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
need_root "installing ${missing[*]}" "apt-get install"
log "apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus package may start a system instance; the tests start their own on loopback.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
