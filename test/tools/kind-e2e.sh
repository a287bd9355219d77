#!/usr/bin/env bash
# `npm run e2e:kind`: the Kubernetes e2e suite against a real kind cluster (needs Docker, kind,
# kubectl and helm on PATH). Creates the cluster from kind-config.yaml, builds and loads the
# Tollgate image, then runs test/integration/kubernetes.test.ts in kind mode: the suite installs the
# chart itself (with the image below, NodePort 30080) and sends its traffic through the Envoy
# Service. Fake providers run on this machine; pods reach them through the kind network gateway.
# KEEP_CLUSTER=1 leaves the cluster running afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLUSTER="${KIND_CLUSTER:-tollgate}"
IMAGE="${TOLLGATE_IMAGE:-tollgate:e2e}"
log() { echo "[e2e:kind] $*" >&2; }
for tool in docker kind kubectl helm node; do
  command -v "$tool" >/dev/null || { echo "[e2e:kind] $tool is required on PATH" >&2; exit 1; }
done

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
fi
cleanup() {
  if [ -z "${KEEP_CLUSTER:-}" ]; then log "deleting cluster $CLUSTER"; kind delete cluster --name "$CLUSTER"; fi
}
trap cleanup EXIT

log "building $IMAGE"
DOCKER_BUILDKIT=1 docker build -f .ci/Dockerfile -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

# A fresh namespace per run (the suite creates it and installs the release there).
kubectl --context "kind-$CLUSTER" delete namespace tollgate-e2e --ignore-not-found --wait=true
# CRDs from a previous run would make `helm install` skip them: start clean.
kubectl --context "kind-$CLUSTER" delete -f crds/ --ignore-not-found

# Pods reach services on this machine through the gateway of the kind Docker network.
HOST_IP="$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | tr ' ' '\n' | grep -E '^[0-9]+\.' | head -1)"
log "fake providers will listen on $HOST_IP"

npm run build --silent
TOLLGATE_E2E_KIND="$CLUSTER" \
TOLLGATE_E2E_IMAGE="$IMAGE" \
TOLLGATE_E2E_HOST_IP="$HOST_IP" \
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 dist/test/integration/kubernetes.test.js
