// The narrative as the MCP server shows it (get_narrative and the narrative://me resource): the
// same serving rules as GET /functions/v1/narrative — a servable narrative with its freshness
// (a stale one queues a refresh), or the honest reason there is none, queueing a cache_miss job
// for an eligible user.
import type { NarrativeState } from '../../../../shared/mcp.ts';
import type { UserClaims } from '../auth.ts';
import { narrativeView } from '../narrative/serve.ts';

export type { NarrativeState };
export const NARRATIVE_URI = 'narrative://me';

export async function narrativeState(claims: UserClaims): Promise<NarrativeState> {
  const view = await narrativeView(claims);
  if (view.status === 'ready') return view;
  return { status: view.status, narrative: null, version: null, generated_at: null, age_days: null, stale: null, model: null, claims: [], partial: null };
}

const WHY_NOT: Record<Exclude<NarrativeState['status'], 'ready'>, string> = {
  queued: 'The user\'s narrative is queued to be written; ask again shortly.',
  running: 'The user\'s narrative is being written right now; ask again shortly.',
  failed: 'Writing the user\'s narrative failed; it will be retried later.',
  ineligible: 'The user does not have enough memories for a narrative yet.',
};

export function narrativeMarkdown(s: NarrativeState): string {
  return s.status === 'ready' && s.narrative !== null ? s.narrative : `_${WHY_NOT[s.status as keyof typeof WHY_NOT]}_`;
}
