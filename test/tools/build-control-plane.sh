#!/usr/bin/env bash
# Builds a real kube-apiserver, kubectl and helm from source through the Go module proxy and caches
# them outside the repo, keyed by version. Prints the bin directory on stdout.
# Why from source: CI machines have no Docker and may fetch nothing but registry packages.
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.34.2}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
BIN="$CACHE/control-plane-$K8S_VERSION-helm-$HELM_VERSION/bin"
mkdir -p "$BIN"
log() { echo "[control-plane] $*" >&2; }

if [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kubectl" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  log "building kube-apiserver and kubectl $K8S_VERSION (first run only; takes a while)"
  cd "$work"
  go mod init tollgate.local/k8sbuild >/dev/null 2>&1
  # k8s.io/kubernetes pins its staging modules as v0.0.0 with local replaces; mirror them at the
  # matching published v0.X.Y so the module resolves outside its own tree.
  minor="${K8S_VERSION#v1.}"; staging="v0.${minor}"
  modjson="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION")"
  gomod="$(printf '%s' "$modjson" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u > staging.txt
  {
    echo "require k8s.io/kubernetes $K8S_VERSION"
    while read -r m; do echo "replace $m => $m $staging"; done < staging.txt
  } >> go.mod
  cat > tools.go <<'GO'
//go:build tools
package tools
import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION" -o "$BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION" -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl
fi
if [ ! -x "$BIN/helm" ]; then
  log "building helm $HELM_VERSION"
  GOBIN="$BIN" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
echo "$BIN"
