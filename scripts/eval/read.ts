// What one synthetic user can be served, read on every path that serves the narrative: GET
// narrative, orchestrate (new and mid-conversation), MCP (get_narrative, jean_memory,
// narrative://me), the history routes, and the tables as the user under RLS. Part of `npm run eval`.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { TransactionSql } from 'postgres';
import type { AuthUser } from '../../local/fakes/users.ts';
import { mcpToken } from '../mcp-token.ts';
import { narrativeStateOutput } from '../../shared/mcp.ts';
import {
  narrativeHistoryResponse, narrativeResponse, narrativeVersionResponse, orchestrateResponse,
} from '../../shared/narrative.ts';
import type { Persona } from './fixtures.ts';
import type { EvalContext } from './run.ts';
import type { Phase, Read, ServedClaim } from './score.ts';

export interface Answer { status: number; header: (name: string) => string | null; body: unknown }

export async function api(ctx: EvalContext, user: AuthUser, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${ctx.apiUrl}/functions/v1/${path}`, {
    method,
    headers: { authorization: `Bearer ${user.accessToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, header: (n) => res.headers.get(n), body: text ? JSON.parse(text) as unknown : null };
}

/** A statement as the user under RLS: role authenticated and the user's JWT claims, as
 *  PostgREST runs a supabase-js call (the local stack has no PostgREST). */
export function asUser<T>(ctx: EvalContext, userId: string, work: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return ctx.sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
      set_config('request.jwt.claims', ${JSON.stringify({ sub: userId, role: 'authenticated' })}, true)`;
    return await work(tx);
  }) as Promise<T>;
}

const claimsOf = (claims: readonly ServedClaim[], version: number | null) => claims.map((claim) => ({ claim, version }));
const allText = (parts: (string | null | undefined)[], claims: readonly ServedClaim[]) =>
  [...parts, ...claims.map((c) => c.text)].filter(Boolean).join('\n');

/** Everything the user can be served now, on every path that serves the narrative. The reads
 *  that queue nothing (the tables and the history, under RLS) come first, then the ones that
 *  ask narrative_for_me, which may queue or pull forward a regeneration. */
export async function readServed(ctx: EvalContext, user: AuthUser, persona: Persona, phase: Phase): Promise<Read[]> {
  const reads: Read[] = [];
  const rows = await asUser(ctx, user.id, (tx) => tx<{ version: number; narrative_content: string; claims: ServedClaim[]; partial: boolean }[]>`
    select version, narrative_content, claims, partial from public.user_narratives`);
  for (const r of rows.length ? rows : [null]) {
    reads.push(r
      ? { path: 'table user_narratives', phase, version: r.version, whole: true, partial: r.partial, text: allText([r.narrative_content], r.claims), claims: claimsOf(r.claims, r.version) }
      : { path: 'table user_narratives', phase, version: null, whole: true, text: '', claims: [] });
  }
  const versions = await asUser(ctx, user.id, (tx) => tx<{ version: number; narrative_content: string; claims: ServedClaim[]; summary: string }[]>`
    select version, narrative_content, claims, summary from public.user_narrative_versions`);
  for (const v of versions) {
    reads.push({ path: 'table user_narrative_versions', phase, version: v.version, whole: true, text: allText([v.narrative_content, v.summary], v.claims), claims: claimsOf(v.claims, v.version) });
  }
  const list = narrativeHistoryResponse.parse((await api(ctx, user, 'GET', 'narrative/history')).body);
  reads.push({ path: 'GET narrative/history', phase, version: null, whole: false, text: list.versions.map((v) => v.summary).join('\n'), claims: [] });
  for (const { version } of list.versions) {
    const v = narrativeVersionResponse.parse((await api(ctx, user, 'GET', `narrative/history/${version}`)).body);
    const changed = [...v.changes.added, ...v.changes.kept];
    reads.push({
      path: 'GET narrative/history/<v>', phase, version, whole: true,
      text: allText([v.narrative, v.summary], [...v.claims, ...changed, ...v.changes.removed]),
      claims: [...claimsOf(v.claims, version), ...claimsOf(changed, version), ...claimsOf(v.changes.removed, version - 1)],
    });
  }

  const g = await api(ctx, user, 'GET', 'narrative');
  if (g.status === 200) {
    const n = narrativeResponse.parse(g.body);
    reads.push({
      path: 'GET narrative', phase, version: n.version, whole: true, partial: n.partial, text: allText([n.narrative], n.claims), claims: claimsOf(n.claims, n.version),
    });
  } else {
    reads.push({ path: 'GET narrative', phase, version: null, whole: true, text: '', claims: [] });
  }

  const o = await api(ctx, user, 'POST', 'orchestrate', { user_message: 'Hi! Can you help me plan my week?', is_new_conversation: true });
  const oc = orchestrateResponse.parse(o.body);
  reads.push({ path: 'POST orchestrate', phase, version: oc.narrative?.version ?? null, whole: true, text: oc.context, claims: claimsOf(oc.claims, oc.narrative?.version ?? null) });
  // Mid-conversation the context is memories relevant to the message: asking about the deleted
  // facts must not bring them back.
  const asking = `What about ${[...persona.deletedBefore.tells, ...persona.deletedAfter.tells].join(' and ')}?`;
  const mid = orchestrateResponse.parse((await api(ctx, user, 'POST', 'orchestrate', { user_message: asking, is_new_conversation: false })).body);
  reads.push({ path: 'POST orchestrate (mid-conversation)', phase, version: null, whole: false, text: mid.context, claims: [] });

  const client = new Client({ name: 'narrative-eval', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${ctx.apiUrl}/functions/v1/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${await mcpToken(user)}` } },
  }));
  try {
    const gn = narrativeStateOutput.parse((await client.callTool({ name: 'get_narrative', arguments: {} })).structuredContent);
    reads.push({ path: 'MCP get_narrative', phase, version: gn.version, whole: true, text: allText([gn.narrative], gn.claims), claims: claimsOf(gn.claims, gn.version) });
    const jm = orchestrateResponse.parse((await client.callTool({ name: 'jean_memory', arguments: { user_message: 'hello', is_new_conversation: true } })).structuredContent);
    reads.push({ path: 'MCP jean_memory', phase, version: jm.narrative?.version ?? null, whole: true, text: jm.context, claims: claimsOf(jm.claims, jm.narrative?.version ?? null) });
    const res = await client.readResource({ uri: 'narrative://me' });
    const text = res.contents.map((c) => ('text' in c && typeof c.text === 'string' ? c.text : '')).join('\n');
    // Markdown only (no claims, no version): scored on its text, counted with the version
    // get_narrative served just before.
    reads.push({ path: 'MCP narrative://me', phase, version: gn.version, whole: true, markdownOnly: true, text, claims: [] });
  } finally {
    await client.close();
  }
  return reads;
}
