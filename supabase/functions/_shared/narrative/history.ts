// The user's narrative history (public.user_narrative_versions), read as the user under RLS:
// every stored version with the claims it was rendered from and what changed from the one
// before. Memory and note changes strip the history in their own transaction (20261125001200),
// so what is read here never quotes a deleted memory.
import type { UserClaims } from '../auth.ts';
import { asUser } from '../db.ts';
import type { NarrativeHistoryResponse, NarrativeVersionResponse } from '../../../../shared/narrative.ts';

type Summary = NarrativeHistoryResponse['versions'][number];
type SummaryRow = Omit<Summary, 'generated_at'> & { generated_at: Date };

const iso = <T extends { generated_at: Date }>(r: T) => ({ ...r, generated_at: r.generated_at.toISOString() });

/** Every version, newest first. */
export async function listVersions(claims: UserClaims): Promise<NarrativeHistoryResponse> {
  const rows = await asUser(claims, (tx) => tx<SummaryRow[]>`
    select version, generated_at, model, reason, memory_count, claim_count, summary
    from public.user_narrative_versions
    where user_id = ${claims.sub}
    order by version desc`);
  return { versions: rows.map(iso) };
}

/** One version, or null when the user has no such version. */
export async function getVersion(claims: UserClaims, version: number): Promise<NarrativeVersionResponse | null> {
  const [row] = await asUser(claims, (tx) => tx<(Omit<NarrativeVersionResponse, 'generated_at'> & { generated_at: Date })[]>`
    select version, generated_at, model, reason, memory_count, claim_count, summary,
      narrative_content as narrative, claims, changes
    from public.user_narrative_versions
    where user_id = ${claims.sub} and version = ${version}`);
  return row ? iso(row) : null;
}
