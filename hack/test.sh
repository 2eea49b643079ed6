#!/usr/bin/env bash
# The project's test command (`npm test`): installs the npm dependencies when needed, type-checks,
# runs the unit tests, brings up the real test bed and runs the integration tests against it.
# Needs root for the Docker engine with CRIU. Extra arguments go to vitest.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "type-check"
npx tsc -p tsconfig.json --noEmit
bash "$HACK_DIR/testbed-up.sh"
log "vitest (unit + integration)"
report="$CRS_STATE_DIR/vitest-report.json"
mkdir -p "$CRS_STATE_DIR"; rm -f "$report"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line that any CI reads: "N passed, N failed, N skipped".
if [ -f "$report" ]; then
  jq -r '"\(.numPassedTests) passed, \(.numFailedTests) failed, \(.numPendingTests + .numTodoTests) skipped"' "$report"
fi
exit "$status"
