// Thousands of malformed requests across every function: bad credentials, wrong methods, bad
// JSON, wrong shapes and types, huge and unicode strings, wrong content types. Only 4xx may come
// back, never 5xx, and a snapshot of the database before and after shows no change. Runs alone
// (tests/isolated) so the snapshot is not disturbed by other suites.
import fc from 'fast-check';
import { SignJWT, generateKeyPair, importJWK } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { backfillBody, generateNarrativeBody, orchestrateBody } from '../../shared/narrative.ts';
import { mcpToken } from '../helpers/mcp.ts';
import { addMemories, drainQueue } from '../helpers/pipeline.ts';
import { API_URL } from '../../local/config.ts';
import { db, keys } from '../helpers/stack.ts';
import { createUser, type TestUser } from '../helpers/users.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

const RUNS_PER_FUNCTION = 400;
type Creds = Record<string, string>;
interface Target { name: string; methods: string[]; valid: () => Creds; isValidBody: (v: unknown) => boolean }

let user: TestUser;
let badCreds: Creds[];
const targets: Target[] = [];

beforeAll(async () => {
  user = await createUser();
  await addMemories(sql, user.id, 2);
  const k = keys();
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ role: 'authenticated', aud: 'authenticated', sub: user.id })
    .setProtectedHeader({ alg: 'ES256', kid: k.privateJwk.kid }).setIssuedAt(now - 7200).setExpirationTime(now - 60)
    .sign(await importJWK(k.privateJwk, 'ES256'));
  const { privateKey } = await generateKeyPair('ES256');
  const forged = await new SignJWT({ role: 'service_role', sub: user.id })
    .setProtectedHeader({ alg: 'ES256', kid: k.privateJwk.kid }).setExpirationTime('1h').sign(privateKey);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ role: 'service_role', sub: user.id, exp: now + 600 })}.`;
  badCreds = [
    {}, { authorization: 'Bearer' }, { authorization: 'Bearer garbage' }, { authorization: `Basic ${enc({})}` },
    { authorization: `Bearer ${expired}` }, { authorization: `Bearer ${forged}` }, { authorization: `Bearer ${none}` },
    { authorization: `Bearer ${k.anonKey}` }, { apikey: 'sb_secret_wrong' }, { apikey: k.publishableKey },
  ];
  const userCreds = () => ({ authorization: `Bearer ${user.accessToken}` });
  // mcp takes the MCP OAuth client's token, not the session token.
  const oauthToken = await mcpToken(user);
  const mcpCreds = () => ({ authorization: `Bearer ${oauthToken}` });
  const never = () => false;
  targets.push(
    { name: 'health', methods: ['GET'], valid: userCreds, isValidBody: never },
    // narrative POST takes no parameters: only an empty body or {} is valid.
    { name: 'narrative', methods: ['GET', 'POST'], valid: userCreds,
      isValidBody: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0 },
    { name: 'orchestrate', methods: ['POST'], valid: userCreds, isValidBody: (v) => orchestrateBody.safeParse(v).success },
    { name: 'backfill', methods: ['GET', 'POST'], valid: () => ({ apikey: k.secretKey }), isValidBody: (v) => backfillBody.safeParse(v).success },
    { name: 'generate-narrative', methods: ['POST'], valid: () => ({ authorization: `Bearer ${k.narrativeServiceSecret}` }),
      isValidBody: (v) => generateNarrativeBody.safeParse(v).success },
    { name: 'mcp', methods: ['POST'], valid: mcpCreds, isValidBody: never },
    // memories takes no body at all (GET lists, DELETE memories/<id> deletes).
    { name: 'memories', methods: ['GET'], valid: userCreds, isValidBody: never },
  );
});

async function snapshot() {
  const [row] = await sql`select
    (select md5(coalesce(string_agg(id::text || status || attempts || updated_at::text, ',' order by id), '')) from narrative_jobs) as jobs,
    (select md5(coalesce(string_agg(user_id::text || version || updated_at::text, ',' order by user_id), '')) from user_narratives) as narratives,
    (select md5(coalesce(string_agg(id::text || updated_at::text || state, ',' order by id), '')) from memories) as memories,
    (select md5(coalesce(string_agg(id::text || updated_at::text, ',' order by id), '')) from auth.users) as users,
    (select count(*) from net.http_request_queue) as pending_requests`;
  return row;
}

const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }),
  fc.constantFrom('', ' ', '{', '{"a":', '[1,2', 'null', 'true', '"str"', '\u0000', '{"job_id":1}x', '\ud800', '%7B%7D'));
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
const shaped = fc.record({
  user_id: fc.oneof(fc.uuid(), fc.string(), fc.integer(), fc.constant(null)),
  user_message: fc.oneof(fc.string(), fc.integer(), fc.constant('x'.repeat(9000)), fc.string({ unit: 'grapheme' })),
  is_new_conversation: fc.oneof(fc.boolean(), fc.string(), fc.constant(null)),
  job_id: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(-1), fc.constant(2 ** 53)),
  min_memories: fc.oneof(fc.integer(), fc.string(), fc.constant(0)), limit: fc.oneof(fc.integer({ min: -5, max: 0 }), fc.string()),
  dry_run: fc.oneof(fc.string(), fc.integer()), extra: fc.anything({ maxDepth: 2 }),
}, { requiredKeys: [] }).map((v) => JSON.stringify(v));
const huge = fc.constantFrom(JSON.stringify({ user_message: 'y'.repeat(70_000), is_new_conversation: true }), 'z'.repeat(300_000));
// Nesting past the 64-level limit, some of it inside otherwise valid bodies (a recursive check overflowed on 5,000).
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const nested = fc.constantFrom(deep(5_000), deep(65), '{"a":'.repeat(3_000) + '1' + '}'.repeat(3_000),
  `{"user_message":"hi","is_new_conversation":true,"x":${deep(5_000)}}`, `{"job_id":1,"x":${deep(100)}}`,
  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_memories","arguments":{"text":"x","y":${deep(5_000)}}}}`);
const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', '', 'application/jsonx');

interface Probe { target: number; kind: 'creds' | 'method' | 'body'; cred: number; method: string; body: string; type: string }
const probe: fc.Arbitrary<Probe> = fc.record({
  target: fc.nat(),
  kind: fc.constantFrom('creds', 'method', 'body') as fc.Arbitrary<Probe['kind']>,
  cred: fc.nat(),
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
  body: fc.oneof(text, json, shaped, huge, nested),
  type: contentType,
});

it(`${RUNS_PER_FUNCTION * 6} malformed requests: only 4xx, and nothing changes`, async () => {
  await drainQueue(sql);
  const before = await snapshot();
  let sent = 0;
  const statuses = new Map<number, number>();
  await fc.assert(fc.asyncProperty(probe, async (p) => {
    const t = targets[p.target % targets.length];
    let headers: Creds;
    let method = p.method;
    let body: string | undefined = p.body;
    if (p.kind === 'creds') {
      // A method the function accepts, so the credentials are what gets judged.
      headers = badCreds[p.cred % badCreds.length];
      method = t.methods[p.cred % t.methods.length];
    } else if (p.kind === 'method') {
      headers = t.valid();
      if (t.methods.includes(method)) method = 'PATCH';
    } else {
      headers = t.valid();
      method = 'POST';
      if (!t.methods.includes('POST')) method = 'PUT';
      let parsed: unknown;
      try { parsed = JSON.parse(p.body); } catch { parsed = Symbol('invalid'); }
      // An empty body is valid where no parameters are taken; a valid one is spoilt.
      if (p.body.trim() === '' || (typeof parsed !== 'symbol' && t.isValidBody(parsed))) body = `${p.body}garbage`;
    }
    if (method === 'GET') body = undefined;
    const h: Record<string, string> = { ...headers, accept: 'application/json, text/event-stream' };
    if (p.type) h['content-type'] = p.type;
    const res = await fetch(`${API_URL}/functions/v1/${t.name}`, { method, headers: h, body });
    const payload = await res.text();
    sent++;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status < 400 || res.status >= 500) {
      throw new Error(`${method} ${t.name} (${p.kind}) -> ${res.status}: ${payload.slice(0, 200)}`);
    }
    expect(() => JSON.parse(payload), `${t.name} ${res.status}: errors are JSON`).not.toThrow();
  }), { numRuns: RUNS_PER_FUNCTION * targets.length, seed: 20261125, endOnFailure: true });

  expect(sent, 'every probe was sent').toBe(RUNS_PER_FUNCTION * targets.length);
  console.log(`fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  expect(await snapshot(), 'the database did not change').toEqual(before);
}, 300_000);
