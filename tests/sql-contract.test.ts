// The values SQL answers with are the ones TypeScript expects: each outcome enum, check
// constraint and public function signature in the database, read from the catalog, equals its
// list in shared/narrative.ts. Renaming or adding a value on one side only fails here.
import { afterAll, describe, expect, it } from 'vitest';
import {
  CLAIM_OUTCOMES, COMPLETE_OUTCOMES, FAIL_OUTCOMES, JOB_ERROR_CODES, JOB_REASONS, JOB_STATUSES,
  NARRATIVE_FOR_ME_REASONS, NARRATIVE_FOR_ME_STATUSES, NARRATIVE_STATUSES, laneOf,
} from '../shared/narrative.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT } from '../shared/support.ts';
import { db } from './helpers/stack.ts';
import { createUser } from './helpers/users.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

async function enumValues(type: string): Promise<string[]> {
  const [{ values }] = await sql<{ values: string[] }[]>`select enum_range(null::${sql.unsafe(type)})::text[] as values`;
  return values;
}

/** The quoted literals of a check constraint on narrative_jobs (`col in ('a', 'b')`). */
async function checkValues(column: string): Promise<string[]> {
  const rows = await sql<{ def: string }[]>`
    select pg_get_constraintdef(c.oid) as def from pg_constraint c
    where c.conrelid = 'public.narrative_jobs'::regclass and c.contype = 'c'
      and c.conkey = array[(select attnum from pg_attribute where attrelid = 'public.narrative_jobs'::regclass and attname = ${column})]`;
  expect(rows.length, `one check constraint on narrative_jobs.${column}`).toBe(1);
  return [...rows[0].def.matchAll(/'([^']+)'::text/g)].map((m) => m[1]);
}

const sorted = (xs: readonly string[]) => [...xs].sort();

describe('SQL outcome values match shared/narrative.ts', () => {
  it('private.job_lane puts every reason in the lane laneOf says', async () => {
    const rows = await sql<{ reason: string; lane: string }[]>`
      select r as reason, private.job_lane(r) as lane from unnest(${[...JOB_REASONS]}::text[]) r`;
    for (const { reason, lane } of rows) {
      expect(lane, `lane of ${reason}`).toBe(laneOf(reason as (typeof JOB_REASONS)[number]));
    }
    expect(rows.length, 'every reason checked').toBe(JOB_REASONS.length);
  });

  it('claim, complete and fail outcomes are the enums the queue functions return', async () => {
    expect(await enumValues('private.claim_outcome'), 'claim_job outcomes').toEqual([...CLAIM_OUTCOMES]);
    expect(await enumValues('private.complete_outcome'), 'complete_job outcomes').toEqual([...COMPLETE_OUTCOMES]);
    expect(await enumValues('private.fail_outcome'), 'fail_job outcomes').toEqual([...FAIL_OUTCOMES]);
    const returns = await sql<{ fn: string; type: string }[]>`
      select p.proname as fn, t.typname as type from pg_proc p
      join lateral unnest(p.proallargtypes, p.proargmodes, p.proargnames) a(oid, mode, name) on a.mode = 't' and a.name = 'outcome'
      join pg_type t on t.oid = a.oid
      where p.pronamespace = 'private'::regnamespace and p.proname in ('claim_job', 'complete_job', 'fail_job')
      order by 1`;
    expect(returns, 'each function returns its enum').toEqual([
      { fn: 'claim_job', type: 'claim_outcome' }, { fn: 'complete_job', type: 'complete_outcome' }, { fn: 'fail_job', type: 'fail_outcome' },
    ]);
  });

  it('narrative_for_me statuses are the enum it returns, and the 204 header values are among them', async () => {
    expect(await enumValues('private.narrative_status'), 'narrative_for_me statuses').toEqual([...NARRATIVE_FOR_ME_STATUSES]);
    const [{ type }] = await sql<{ type: string }[]>`
      select format_type(a.oid, null) as type
      from pg_proc p, unnest(p.proallargtypes, p.proargnames) a(oid, name)
      where p.oid = 'public.narrative_for_me(text, text)'::regprocedure and a.name = 'status'`;
    expect(type, 'narrative_for_me.status is the enum').toBe('private.narrative_status');
    for (const s of NARRATIVE_STATUSES) expect(NARRATIVE_FOR_ME_STATUSES, `header value ${s}`).toContain(s);
  });

  it('job reasons, statuses and error codes are the check constraints of narrative_jobs', async () => {
    expect(sorted(await checkValues('reason')), 'reasons').toEqual(sorted(JOB_REASONS));
    expect(sorted(await checkValues('status')), 'statuses').toEqual(sorted(JOB_STATUSES));
    expect(sorted(await checkValues('last_error_code')), 'error codes').toEqual(sorted(JOB_ERROR_CODES));
  });

  it('narrative_for_me accepts exactly the reasons TypeScript sends', async () => {
    const user = await createUser();
    const claims = JSON.stringify({ sub: user.id, role: 'authenticated' });
    const ask = (reason: string) => sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claims}, true)`;
      const [row] = await tx<{ status: string }[]>`select status from public.narrative_for_me(${reason})`;
      return row.status;
    }).then((s) => s, (err: { code?: string }) => `error ${err.code}`);
    for (const r of NARRATIVE_FOR_ME_REASONS) expect(await ask(r), `${r} is accepted (a user without memories)`).toBe('ineligible');
    for (const r of JOB_REASONS.filter((x) => !(NARRATIVE_FOR_ME_REASONS as readonly string[]).includes(x))) {
      expect(await ask(r), `${r} is refused as bad input`).toBe('error 22023');
    }
  });

  it('claim_support_min defaults to the calibrated CLAIM_SUPPORT_MIN_DEFAULT and is a share (0..1)', async () => {
    const [{ def }] = await sql<{ def: string }[]>`
      select pg_get_expr(d.adbin, d.adrelid) as def from pg_attrdef d
      join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
      where d.adrelid = 'private.settings'::regclass and a.attname = 'claim_support_min'`;
    expect(Number(def.replace(/::\w+.*$/, '').replace(/'/g, '')), `the column default (${def})`).toBe(CLAIM_SUPPORT_MIN_DEFAULT);
    for (const bad of [-0.01, 1.01]) {
      const err = await sql`update private.settings set claim_support_min = ${bad}`.then(() => null, (e: { code?: string }) => e.code);
      expect(err, `${bad} refused by the check constraint`).toBe('23514');
    }
  });
});
