#!/usr/bin/env bash
# npm test: start (or reuse) the local stack once, then run every suite against it:
# vitest (unit suites first, they need no stack; then isolated suites, they rebuild the
# database), then pgTAP with pg_prove.
set -uo pipefail
cd "$(dirname "$0")/.."

# System packages npm cannot provide: pgTAP + pg_prove (database tests) and Chromium (browser
# tests). As root they are installed with apt, as npm start installs Postgres; otherwise the
# exact command is printed and the run stops: no suite is skipped for a missing package.
missing=""
[ -f /usr/share/postgresql/15/extension/pgtap.control ] || missing="$missing postgresql-15-pgtap"
command -v pg_prove >/dev/null || missing="$missing libtap-parser-sourcehandler-pgtap-perl"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing$missing with apt-get ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } || exit 1
  else
    echo "Missing system packages:$missing. Install them with: sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

# Leave the stack as npm start makes it, however this script ends: functions back on the default
# env (the fake Gemini is gone once vitest exits, so jobs would otherwise fail with network errors)
# and the Auth stand-in back on its default token kind (ES256).
restored=0
restore_default() {
  [ "$restored" = 1 ] && return 0
  restored=1
  env -u LOCAL_AUTH_JWT_MODE npx tsx local/cli.ts start >/dev/null
}
trap restore_default EXIT
trap 'exit 130' INT TERM HUP

env -u LOCAL_AUTH_JWT_MODE npx tsx local/cli.ts start --functions-env tests/functions.env >/dev/null || { echo "The local stack did not start (see .local/logs)." >&2; exit 1; }

# supabase-js needs a WebSocket global, which Node 20 has behind a flag.
export NODE_OPTIONS="--experimental-websocket --no-warnings=ExperimentalWarning"
results=.local/test-results
rm -rf "$results" && mkdir -p "$results"

status=0
if npm run -s typecheck; then echo ok > "$results/typecheck.txt"; else echo failed > "$results/typecheck.txt"; status=1; fi
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json" || status=1
npx vitest run --project isolated --reporter=default --reporter=json --outputFile.json="$results/isolated.json" || status=1
npx vitest run --project stack --reporter=default --reporter=json --outputFile.json="$results/stack.json" || status=1
# The user-facing suites again with the Auth stand-in issuing HS256 tokens and the functions given
# the legacy JWT secret (a project not yet on JWT signing keys); only the runtime restarts.
user_facing="tests/jwt-verification.test.ts tests/auth-and-gateway.test.ts tests/serving.test.ts tests/mcp.test.ts"
if LOCAL_AUTH_JWT_MODE=hs256 npx tsx local/cli.ts start --functions-env tests/functions.env >/dev/null; then
  npx vitest run --project stack $user_facing --reporter=default --reporter=json --outputFile.json="$results/stack-hs256.json" || status=1
else
  echo "The runtime did not restart in hs256 mode (see .local/logs)." >&2; status=1
fi
env -u LOCAL_AUTH_JWT_MODE npx tsx local/cli.ts start --functions-env tests/functions.env >/dev/null || status=1
# Faults on purpose (kills the runtime and the worker, restarts Postgres): alone, after vitest.
# It exits 1 below 95 % of jobs succeeded (outside injected permanent faults) or on a failure
# matched to no fault it injected, as well as on a violated invariant.
npx tsx scripts/chaos.ts --jobs 300 --time-limit 240 --min-success 95 2>/dev/null | tee "$results/chaos.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
# Chaos ran on the fake Gemini and has put the default env back: prove it.
npx vitest run --project after-chaos --reporter=default --reporter=json --outputFile.json="$results/after-chaos.json" || status=1

PGPASSWORD=postgres pg_prove -h 127.0.0.1 -p 54322 -U postgres -d postgres supabase/tests/*.sql 2>&1 | tee "$results/pgtap.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

restore_default || status=1

node scripts/test-summary.mjs "$results" || status=1
exit $status
