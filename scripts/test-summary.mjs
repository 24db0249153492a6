// Adds up vitest's JSON reports and pg_prove's output into one closing line.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
// unit.json: pure modules, no stack; stack-hs256.json: the user-facing suites again with legacy HS256 user tokens; after-chaos.json:
// the default env is back after the chaos run.
for (const f of ['unit.json', 'isolated.json', 'stack.json', 'stack-hs256.json', 'after-chaos.json']) {
  const file = path.join(dir, f);
  if (!fs.existsSync(file)) { failed += 1; continue; }
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  // A suite that fails to load has no failed tests of its own; count it once.
  failed += r.numFailedTests > 0 ? r.numFailedTests : (r.numFailedTestSuites ?? 0);
  skipped += r.numPendingTests + r.numTodoTests;
}
const prove = fs.existsSync(path.join(dir, 'pgtap.txt')) ? fs.readFileSync(path.join(dir, 'pgtap.txt'), 'utf8') : '';
const total = Number(/Tests=(\d+)/.exec(prove)?.[1] ?? 0);
const provedFailed = (prove.match(/^not ok/gm) ?? []).length + (/Result: PASS/.test(prove) ? 0 : 1);
passed += total - Math.min(total, provedFailed);
failed += provedFailed;
const typecheck = fs.existsSync(path.join(dir, 'typecheck.txt')) ? fs.readFileSync(path.join(dir, 'typecheck.txt'), 'utf8').trim() : '';
if (typecheck === 'ok') passed += 1; else failed += 1;
const chaos = fs.existsSync(path.join(dir, 'chaos.txt')) ? fs.readFileSync(path.join(dir, 'chaos.txt'), 'utf8') : '';
if (/violations\s+0\b/.test(chaos)) passed += 1; else failed += 1;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
