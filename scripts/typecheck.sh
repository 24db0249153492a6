#!/usr/bin/env bash
# npm run typecheck: Node code and the dashboard with tsc; the functions type-checked and then
# loaded with the edge runtime's Deno (node_modules/deno-edge, 2.1.4; the npm deno package's
# binary where that platform package is not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/deno-edge/deno
[ -x "$deno" ] || deno=node_modules/deno/deno
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p dashboard/tsconfig.json
DENO_NO_UPDATE_CHECK=1 "$deno" check --quiet --unstable-net --config deno.json supabase/functions/*/index.ts local/runtime/main.ts
DENO_NO_UPDATE_CHECK=1 "$deno" run -A --quiet --no-lock --config deno.json local/runtime/load-check.ts
