#!/usr/bin/env bash
# The project's test command (`npm test`): installs the npm dependencies when needed, type-checks,
# lints (npm run lint), runs the unit tests, brings up the real test bed and runs the integration tests against it.
# Needs root for the Docker engine with CRIU. Extra arguments go to vitest.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "type-check"
npx tsc -p tsconfig.json --noEmit
log "lint: ESLint (type-aware), Prettier, knip (unused files, exports, dependencies)"
npm run -s lint
bash "$HACK_DIR/testbed-up.sh"
log "vitest (unit + integration)"
reports=("$CRS_STATE_DIR/vitest-report.json" "$CRS_STATE_DIR/vitest-report-compiled.json")
mkdir -p "$CRS_STATE_DIR"; rm -f "${reports[@]}"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="${reports[0]}" "$@" || status=$?
# The main end-to-end file once more against the compiled agent, started as the image starts it
# (`node --max-semi-space-size=2 dist/crs-agent.mjs`, the Dockerfile's ENTRYPOINT; the global setup builds dist/). Only on a full run: extra
# arguments select what to run.
if [ $# -eq 0 ]; then
  log "vitest: test/integration/e2e/controller.test.ts with the compiled agent (CRS_AGENT_COMPILED=1)"
  CRS_AGENT_COMPILED=1 npx vitest run --project integration --reporter=default --reporter=json \
    --outputFile.json="${reports[1]}" test/integration/e2e/controller.test.ts || status=1
fi
# One plain closing line that any CI reads: "N passed, N failed, N skipped", summed over both runs.
existing=(); for r in "${reports[@]}"; do [ -f "$r" ] && existing+=("$r"); done
if [ ${#existing[@]} -gt 0 ]; then
  jq -rs '"\(map(.numPassedTests) | add) passed, \(map(.numFailedTests) | add) failed, \(map(.numPendingTests + .numTodoTests) | add) skipped"' "${existing[@]}"
fi
exit "$status"
