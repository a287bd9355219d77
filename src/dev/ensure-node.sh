# Sourced by test/run.sh (npm test) and src/dev/start.sh (npm start): puts Node >= 22 on PATH,
# installing the npm registry's node@24 package into $CACHE when the system Node is older.
# Expects CACHE and a log function to be set by the caller.
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 22 ]; then
  NODE24="$CACHE/node-24"
  if [ ! -x "$NODE24/node_modules/node/bin/node" ]; then
    log "system Node is $(node --version); installing node@24 from the npm registry into $NODE24"
    mkdir -p "$NODE24"
    npm install --no-save --no-audit --no-fund --prefix "$NODE24" node@24 >&2
  fi
  export PATH="$NODE24/node_modules/node/bin:$PATH"
fi
