#!/usr/bin/env bash
# Builds hack/gitops-check (kstatus from sigs.k8s.io/cli-utils, Flux's kstatus fork and CEL health
# evaluator from github.com/fluxcd/pkg/runtime, and Argo CD's Lua interpreter gopher-lua, at the
# versions pinned in its go.mod/go.sum) from the Go module proxy into
# $CRS_CACHE_DIR/gitops-check-<key>/, keyed by those versions and a hash of the sources.
# Prints the binary's path on stdout. No-op (instant) when cached; about 2 minutes cold on 2 cores.
source "$(dirname "$0")/lib.sh"

src="$HACK_DIR/gitops-check"
pinned() { sed -n "s#^[[:space:]]*$1 \\(v[^ ]*\\)\$#\\1#p" "$src/go.mod"; }
versions="kstatus-$(pinned sigs.k8s.io/cli-utils)-lua-$(pinned github.com/yuin/gopher-lua)-flux-$(pinned github.com/fluxcd/pkg/runtime)"
hash=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-12)
bin="$CRS_CACHE_DIR/gitops-check-$versions-$hash/gitops-check"
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || die "Go is required to build hack/gitops-check (https://go.dev/dl); none on PATH"
  log "building gitops-check ($versions) into $(dirname "$bin")"
  mkdir -p "$(dirname "$bin")"
  # -mod=readonly: the pinned go.sum must be complete; a build never edits the repository.
  (cd "$src" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
