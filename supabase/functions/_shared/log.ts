// The one JSON log line: `{"ts", ...fields}` on stdout, which the platform collects per function.
// Callers pass ids, steps, outcomes and durations, never tokens or memory text. No imports, so
// the local stand-ins log the same way without loading the functions' env.
export function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ ts: new Date().toISOString(), ...fields }));
}
