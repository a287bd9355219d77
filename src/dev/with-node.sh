#!/usr/bin/env bash
# Runs an npm script's command on a supported Node (>= 22): the system Node when new enough, else the
# npm registry's node@24 cached under $TOLLGATE_CACHE. Installs the npm packages when missing or stale.
#   bash src/dev/with-node.sh [--build] <command> [args...]
# --build compiles TypeScript into dist/ first. Every npm script goes through here, so none of them
# runs on an older system Node (Node 20 crashes in undici's zstd decompressor, for one).
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export TOLLGATE_CACHE="$CACHE"
log() { echo "[tollgate] $*" >&2; }

. src/dev/ensure-node.sh
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 22 ]; then
  log "Node $(node --version) is too old and node@24 could not be put on PATH; Tollgate needs Node >= 22"
  exit 1
fi
# A symlinked node_modules (a git worktree sharing another checkout's packages) is never reinstalled:
# npm ci would empty the shared folder under everyone using it.
if [ ! -L node_modules ] && { [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  log "installing npm packages"
  npm ci --no-audit --no-fund >&2
fi
if [ "${1:-}" = "--build" ]; then
  shift
  npx tsc -p tsconfig.json
fi
exec "$@"
