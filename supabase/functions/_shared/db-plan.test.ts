import { describe, expect, it } from 'vitest';
import { connectionPlan, DEFAULT_POOL_SIZE } from './db-plan.ts';

const direct = 'postgresql://postgres:pw@db.abcdefghijklmnop.supabase.co:5432/postgres';
const pooler = 'postgresql://postgres.abcdefghijklmnop:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres';

describe('connectionPlan', () => {
  it('SUPABASE_DB_URL alone (direct on hosted): prepared statements, a small pool', () => {
    expect(connectionPlan({ poolerUrl: null, dbUrl: direct, poolSize: null }), 'direct')
      .toEqual({ url: direct, source: 'SUPABASE_DB_URL', kind: 'direct', prepare: true, max: DEFAULT_POOL_SIZE.direct });
    expect(DEFAULT_POOL_SIZE.direct, 'each direct connection is a backend: 1 to 3 per isolate').toBeLessThanOrEqual(3);
  });

  it('NARRATIVE_DB_POOLER_URL is read first: transaction mode, no prepared statements', () => {
    expect(connectionPlan({ poolerUrl: pooler, dbUrl: direct, poolSize: null }), 'pooler')
      .toEqual({ url: pooler, source: 'NARRATIVE_DB_POOLER_URL', kind: 'transaction_pooler', prepare: false, max: DEFAULT_POOL_SIZE.transaction_pooler });
  });

  it('a SUPABASE_DB_URL on the transaction pooler port is taken for the pooler', () => {
    const plan = connectionPlan({ poolerUrl: null, dbUrl: pooler, poolSize: null });
    expect(plan.kind, 'port 6543').toBe('transaction_pooler');
    expect(plan.prepare, 'no prepared statements through the transaction pooler').toBe(false);
  });

  it('DB_POOL_SIZE sets the pool whatever the kind; a URL that does not parse is refused', () => {
    expect(connectionPlan({ poolerUrl: null, dbUrl: direct, poolSize: 1 }).max, 'direct').toBe(1);
    expect(connectionPlan({ poolerUrl: pooler, dbUrl: direct, poolSize: 12 }).max, 'pooler').toBe(12);
    expect(() => connectionPlan({ poolerUrl: null, dbUrl: 'not a url', poolSize: null }), 'refused').toThrow(/not a valid URL/);
  });
});
