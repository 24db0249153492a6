#!/usr/bin/env bash
# npm run functions:lock: writes supabase/functions/deno.lock, the Deno lockfile of what
# `supabase functions deploy` resolves from supabase/functions/import_map.json (the functions
# run locally from node_modules, which has no Deno lock of its own). Run it after changing a
# version in the import map; tests/function-deps.test.ts checks the two agree with package-lock.
set -euo pipefail
cd "$(dirname "$0")/.."
# The edge runtime's Deno writes the lockfile format the edge runtime reads.
deno=node_modules/deno-edge/deno
[ -x "$deno" ] || deno=node_modules/deno/deno
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '{ "importMap": "%s" }\n' "$PWD/supabase/functions/import_map.json" > "$tmp/deno.json"
rm -f supabase/functions/deno.lock
# Deno reads the system CA bundle only when told (the npm registry may sit behind a proxy CA).
DENO_CERT="${DENO_CERT:-/etc/ssl/certs/ca-certificates.crt}" DENO_DIR="$tmp/cache" DENO_NO_UPDATE_CHECK=1 \
  "$deno" cache --quiet --config "$tmp/deno.json" --lock="$PWD/supabase/functions/deno.lock" \
  supabase/functions/*/index.ts
echo "wrote supabase/functions/deno.lock"
