// The values SQL answers with are the ones TypeScript expects: each outcome enum, check
// constraint and public function signature in the database, read from the catalog, equals its
// list in shared/narrative.ts. Renaming or adding a value on one side only fails here. Every
// number in a check constraint is either a trivial floor or mirrors a named source it is
// compared with, and the migration files use nothing a later file defines.
import { afterAll, describe, expect, it } from 'vitest';
import {
  backfillBody, CLAIM_OUTCOMES, COMPLETE_OUTCOMES, FAIL_OUTCOMES, JOB_ERROR_CODES, JOB_REASONS, JOB_STATUSES,
  MEMORY_MAX_CHARS, NARRATIVE_FOR_ME_REASONS, NARRATIVE_FOR_ME_STATUSES, NARRATIVE_STATUSES, NOTE_LINE_BREAK, NOTE_MAX_CHARS,
  REQUEST_ROUTES, laneOf,
} from '../shared/narrative.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT } from '../shared/support.ts';
import { definitions, forwardReferences, readMigrations } from './helpers/migrations.ts';
import { actAsUser, db } from './helpers/stack.ts';
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
    const ask = (reason: string) => sql.begin(async (tx) => {
      await actAsUser(tx, user.id);
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

/** Every check constraint on a table of public or private: `schema.table.name` → its definition. */
async function checkConstraints(): Promise<Map<string, string>> {
  const rows = await sql<{ key: string; def: string }[]>`
    select format('%s.%s.%s', n.nspname, r.relname, c.conname) as key, pg_get_constraintdef(c.oid) as def
    from pg_constraint c join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace
    where c.contype = 'c' and n.nspname in ('public', 'private')`;
  return new Map(rows.map((r) => [r.key, r.def]));
}

/** The numbers a constraint compares with, outside its quoted literals. */
const numbers = (def: string) => [...def.replace(/'(?:[^']|'')*'/g, "''").matchAll(/(?<![\w.])\d+(?:\.\d+)?(?![\w.])/g)].map((m) => Number(m[0]));

describe('check-constraint limits match their sources', () => {
  it('every number in a check constraint is a 0/1 floor or share, or mirrors the source named here', async () => {
    const backfillMin = backfillBody.shape.min_memories.unwrap().minValue;
    // What each literal mirrors, as [constraint, its numbers in order, why].
    const MIRRORS: [string, number[], string][] = [
      ['public.memories.memories_check', [MEMORY_MAX_CHARS, 1], 'MEMORY_MAX_CHARS (shared/narrative.ts, MCP add_memories), and not empty'],
      ['public.narrative_notes.narrative_notes_content_check', [1, NOTE_MAX_CHARS], 'NOTE_MAX_CHARS (shared/narrative.ts, the dashboard counter)'],
      ['private.settings.settings_min_memories_check', [backfillMin ?? NaN], "admin backfill's min_memories (backfillBody) and the setting share one floor"],
      ['private.settings.settings_memory_metadata_max_bytes_check', [Buffer.byteLength(JSON.stringify({}))],
        'a memory\'s default and a tombstone\'s metadata, {}, must always fit'],
    ];
    // Floors of a setting's own (a sanity bound), mirroring nothing: listed so that changing one is
    // a decision made here, not a drift. spend_ledger_retention_days: queue_health's last_week
    // window (7 days) reads the ledger, so it keeps at least a day more.
    const OWN: [string, number][] = [
      ['dispatch_timeout_ms', 1000], ['fallback_timeout_ms', 10], ['lease_seconds', 10], ['memory_char_cap', 100],
      ['prompt_candidates', 10], ['prompt_char_budget', 1000], ['redispatch_after_seconds', 10], ['spend_ledger_retention_days', 8],
    ];
    const expected = new Map<string, number[]>([
      ...MIRRORS.map(([k, v]) => [k, v] as [string, number[]]),
      ...OWN.map(([col, v]) => [`private.settings.settings_${col}_check`, [v]] as [string, number[]]),
    ]);
    const constraints = await checkConstraints();
    for (const [key, nums] of expected) {
      expect(constraints.has(key), `${key} exists (an entry here names a real constraint)`).toBe(true);
      expect(numbers(constraints.get(key)!), `${key}: ${constraints.get(key)}`).toEqual(nums);
    }
    for (const [key, def] of constraints) {
      if (expected.has(key)) continue;
      expect(numbers(def).filter((x) => x !== 0 && x !== 1), `${key} (${def}) has a limit no source is named for: add it above`).toEqual([]);
    }
  });

  it('a note is one line by the same characters in SQL, the contract and the dashboard', async () => {
    const def = (await checkConstraints()).get('public.narrative_notes.narrative_notes_content_check')!;
    const cls = /!~ '(\[[^\]]*\])'/.exec(def)?.[1];
    expect(cls, `the character class of ${def}`).toBe(NOTE_LINE_BREAK.source);
  });

  it('request buckets take exactly the routes TypeScript rate-limits', async () => {
    const def = (await checkConstraints()).get('private.request_buckets.request_buckets_route_check')!;
    expect(sorted([...def.matchAll(/'([^']+)'::text/g)].map((m) => m[1])), def).toEqual(sorted(REQUEST_ROUTES));
  });
});

describe('migrations read in order', () => {
  const migrations = readMigrations();

  it('the parser finds every function, table and enum the catalog has, each defined once', async () => {
    const defs = definitions(migrations);
    const names = (kind: string) => defs.filter((d) => d.kind === kind).map((d) => d.name);
    const catalog = await sql<{ kind: string; name: string }[]>`
      select 'function' as kind, format('%s.%s', n.nspname, p.proname) as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')
        and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      union all
      select 'table', format('%s.%s', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private') and c.relkind = 'r'
      union all
      select 'type', format('%s.%s', n.nspname, t.typname) from pg_type t join pg_namespace n on n.oid = t.typnamespace
      where n.nspname in ('public', 'private') and t.typtype = 'e'
      union all
      select 'column', 'private.settings.' || a.attname from pg_attribute a
      where a.attrelid = 'private.settings'::regclass and a.attnum > 0 and not a.attisdropped`;
    for (const kind of ['function', 'table', 'type']) {
      const inDb = catalog.filter((c) => c.kind === kind).map((c) => c.name);
      expect(sorted([...new Set(names(kind))]), `every ${kind} the database has is found in a migration`).toEqual(sorted([...new Set(inDb)]));
      expect(names(kind).length, `no ${kind} is created in two places`).toBe(new Set(names(kind)).size);
    }
    const settings = names('column').filter((n) => n.startsWith('private.settings.'));
    expect(sorted(settings), 'every column of private.settings is found').toEqual(sorted(catalog.filter((c) => c.kind === 'column').map((c) => c.name)));
  });

  it('no migration uses a function, table, type or column that a later file defines', () => {
    expect(forwardReferences(migrations), 'move the definition earlier or the use later').toEqual([]);
  });
});
