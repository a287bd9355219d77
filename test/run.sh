#!/usr/bin/env bash
# `npm test`: installs what the tests need (Node >= 22, npm packages, Envoy, Redis, etcd,
# kube-apiserver/kubectl/helm built from source and cached), builds, then runs unit and
# integration tests. A missing component fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export TOLLGATE_CACHE="$CACHE"
log() { echo "[npm test] $*" >&2; }

# Node >= 22: the system Node when new enough, else the npm registry's node@24 package.
. src/dev/ensure-node.sh
log "node $(node --version)"

# Debian packages the tests start for real.
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
bash envoy/install-envoy.sh >/dev/null
if [ -x test/tools/build-control-plane.sh ]; then
  export TOLLGATE_CONTROL_PLANE_BIN="$(bash test/tools/build-control-plane.sh)"
fi

log "typecheck + build"
npx tsc -p tsconfig.json
log "unit tests"
node --test --test-reporter=spec 'dist/src/**/*.test.js' 'dist/bench/**/*.test.js'
log "integration tests (real Envoy, Redis, kube-apiserver)"
node --test --test-reporter=spec --test-concurrency=1 --test-timeout=300000 'dist/test/integration/**/*.test.js'
