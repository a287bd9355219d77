#!/usr/bin/env bash
# `npm test`: installs what the tests need (Node >= 22, npm packages, Envoy, Redis, etcd, faketime,
# PostgreSQL, kube-apiserver/kubectl/helm built from source and cached), builds, then runs
#   1. unit tests,
#   2. integration tests, one file at a time, each under a time limit (a file that hangs fails
#      alone, with its name, instead of stalling the run),
#   3. the time-sensitive tests again under shifted clocks (faketime), so a test that only passes
#      this year fails today,
#   4. a bench smoke run (a second or two per target), so a broken bench cannot land.
# A missing component fails the run; nothing is skipped.
#   --unit         only the unit tests          --integration  only the integration tests
#   --shifted      only the shifted-clock pass  --bench-smoke  only the bench smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export TOLLGATE_CACHE="$CACHE"
log() { echo "[npm test] $*" >&2; }

stages="${1:-all}"
case "$stages" in
  all | --unit | --integration | --shifted | --bench-smoke) ;;
  *) log "unknown option $stages (use --unit, --integration, --shifted or --bench-smoke)"; exit 2 ;;
esac
want() { [ "$stages" = all ] || [ "$stages" = "--$1" ]; }

# Seconds one integration file may take before it is killed and counted as failed.
FILE_TIMEOUT_S="${TOLLGATE_TEST_FILE_TIMEOUT_S:-600}"

# Node >= 22: the system Node when new enough, else the npm registry's node@24 package.
. src/dev/ensure-node.sh
log "node $(node --version)"

# Debian packages the tests start for real.
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v faketime >/dev/null || need_apt+=(faketime)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
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
if want integration; then
  export TOLLGATE_CONTROL_PLANE_BIN="$(bash test/tools/build-control-plane.sh)"
fi

log "typecheck + build"
npx tsc -p tsconfig.json

failed=()
FAILURE_DETAILS="$(mktemp)"
trap 'rm -f "$FAILURE_DETAILS"' EXIT
# A prefix for the test command (the shifted-clock pass puts faketime here).
RUNNER=()

# Runs test files with node --test. --test-force-exit ends a file once its tests are done even if it
# leaked a handle (the old failure mode: one unclosed Redis client kept CI waiting forever);
# `timeout` ends a file that hangs inside a test.
run_files() {
  local label="$1" limit="$2"
  shift 2
  local start=$SECONDS rc=0 out
  out="$(mktemp)"
  timeout --kill-after=15 "$limit" "${RUNNER[@]}" node --test --test-reporter=spec --test-force-exit --test-concurrency=1 \
    --test-timeout=$(((limit - 5) * 1000)) "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    # Kept for the end of the log, where a CI summary that shows only the tail still finds them.
    { echo "---- $label"; sed -n '/failing tests:/,$p' "$out" | grep -v '^ *at ' | head -n 60; } >>"$FAILURE_DETAILS"
  fi
  rm -f "$out"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    log "FAILED $label: still running after ${limit}s, killed (a hanging test or an unreleased resource)"
    failed+=("$label (timed out after ${limit}s)")
  elif [ "$rc" -ne 0 ]; then
    log "FAILED $label (exit $rc, $((SECONDS - start))s)"
    failed+=("$label")
  else
    log "passed $label ($((SECONDS - start))s)"
  fi
}

if want unit; then
  log "unit tests"
  run_files "unit tests" 600 'dist/src/**/*.test.js' 'dist/bench/**/*.test.js'
fi

if want integration; then
  log "integration tests (real Envoy, Redis, kube-apiserver), one file at a time, ${FILE_TIMEOUT_S}s each"
  for file in dist/test/integration/*.test.js; do
    run_files "$file" "$FILE_TIMEOUT_S" "$file"
  done
fi

# The tests that read the calendar (limits, token and money budgets, expiry, months, usage months,
# the ledger's monthly partitions and reports), again under
# shifted clocks: 400 days ahead, and across a year boundary at both ends of the world's time zones
# (UTC+14 and UTC-10). Only Node runs shifted; Redis and Envoy keep the real clock (see
# src/dev/real-clock.ts), which is also the clock-skew case the limiter must survive.
SHIFTED_UNIT=(dist/src/ratelimit/*.test.js dist/src/config/*.test.js dist/src/pipeline/auth.test.js dist/src/usage/*.test.js dist/src/billing/*.test.js dist/src/controller/status.test.js)
SHIFTED_INTEGRATION=(dist/test/integration/limiter-redis.test.js dist/test/integration/limits.test.js dist/test/integration/errors.test.js
  dist/test/integration/billing-budgets.test.js dist/test/integration/ledger.test.js)
if want shifted; then
  year="$(date -u +%Y)"
  for shift in "+400d|UTC" "$year-12-31 23:59:00|Pacific/Kiritimati" "$year-12-31 23:59:00|America/Adak"; do
    when="${shift%|*}"
    zone="${shift#*|}"
    if [ "${when:0:1}" = + ]; then
      offset="$when"
    else
      # One offset for every process (test runner, each test file, the gateways it starts), so they
      # agree on the time: seconds from now to that wall-clock time in that zone.
      offset="$(( $(TZ="$zone" date -d "$when" +%s) - $(date +%s) ))s"
      [ "${offset:0:1}" = - ] || offset="+$offset"
    fi
    RUNNER=(env TZ="$zone" faketime -f "$offset")
    seen="$("${RUNNER[@]}" node -e 'console.log(new Date().toString())')"
    if [ "$("${RUNNER[@]}" node -p 'Math.abs(Date.now() - Number(process.argv[1]) * 1000) > 3600e3' "$(date +%s)")" != true ]; then
      log "FAILED: faketime did not shift Node's clock (saw $seen)"
      failed+=("shifted clock $when $zone (faketime had no effect)")
      continue
    fi
    log "shifted clock: faketime $offset, TZ=$zone; Node sees $seen"
    run_files "shifted clock ($when, $zone)" 900 "${SHIFTED_UNIT[@]}" "${SHIFTED_INTEGRATION[@]}"
  done
  RUNNER=()
fi

if want bench-smoke; then
  log "bench smoke (a second or two per target)"
  start=$SECONDS
  if node dist/bench/run.js --smoke >/dev/null; then
    log "passed bench smoke ($((SECONDS - start))s)"
  else
    log "FAILED bench smoke"
    failed+=("bench smoke")
  fi
fi

if [ "${#failed[@]}" -gt 0 ]; then
  if [ -s "$FAILURE_DETAILS" ]; then
    log "what failed (the test runner's summaries, stack frames left out):"
    cat "$FAILURE_DETAILS" >&2
  fi
  log "${#failed[@]} failed:"
  for f in "${failed[@]}"; do log "  $f"; done
  exit 1
fi
log "all passed"
