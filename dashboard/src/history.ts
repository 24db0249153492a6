// The history view: every stored version (newest first) with its date, model, why it was
// written, how many claims it has and the server's one-line summary; opening a version shows
// what changed from the one before it — claims added, removed and kept.
import type { JobReason, NarrativeClaim, NarrativeHistoryResponse, NarrativeVersionResponse } from '../../shared/narrative.ts';
import type { Failure, NarrativeApi } from './api.ts';
import { h, plural, setStatus, timeEl, uid } from './dom.ts';
import { changes } from './events.ts';
import { failureText } from './format.ts';
import { inlineDom } from './markdown.ts';

export interface HistoryElements {
  status: HTMLElement;
  list: HTMLOListElement;
}

type Summary = NarrativeHistoryResponse['versions'][number];

/** Why a version was written, in the user's words. */
const REASONS: Record<JobReason, string> = {
  cache_miss: 'first request',
  stale: 'new memories',
  manual: 'you asked',
  weekly: 'weekly refresh',
  backfill: 'initial fill',
  memories_changed: 'a memory changed',
  notes_changed: 'a note changed',
};

export class HistoryView {
  private dirty = true;
  private run = 0;

  constructor(private readonly el: HistoryElements, private readonly api: NarrativeApi, private readonly onUnauthorized: () => void) {
    // Deleting a memory or a note strips every stored version too; a new version may follow.
    changes.on(() => { this.dirty = true; });
  }

  show(): void {
    if (this.dirty) void this.load();
  }

  reset(): void {
    this.run++;
    this.dirty = true;
    setStatus(this.el.status, null, '');
    this.el.list.replaceChildren();
  }

  private async load(): Promise<void> {
    this.dirty = false;
    const run = ++this.run;
    setStatus(this.el.status, 'info', 'Loading the history…');
    const r = await this.api.history();
    if (run !== this.run) return;
    if (r.kind !== 'ok') {
      this.dirty = true;
      return this.failed('The history could not be loaded', r);
    }
    setStatus(this.el.status, null, r.data.length ? '' : 'No versions yet', r.data.length ? '' : 'Your narrative has not been written yet.');
    this.el.list.replaceChildren(...r.data.map((v) => this.item(v)));
  }

  private item(v: Summary): HTMLLIElement {
    const diffId = uid('diff');
    const toggle = h('button', { type: 'button', class: 'version-toggle', 'aria-expanded': 'false', 'aria-controls': diffId },
      h('span', { class: 'version-title' }, `Version ${v.version}`),
      h('span', { class: 'version-meta' }, timeEl(v.generated_at, true), ` · ${v.reason ? REASONS[v.reason] : 'reason not recorded'} · `,
        h('span', { class: 'model' }, v.model ?? 'model not recorded'), ` · ${plural(v.claim_count, 'claim')}`),
      h('span', { class: 'version-summary' }, v.summary));
    const diff = h('div', { id: diffId, class: 'diff', hidden: true });
    let loaded = false;
    toggle.addEventListener('click', async () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      diff.hidden = !open;
      if (!open || loaded) return;
      loaded = true;
      diff.replaceChildren(h('p', { role: 'status' }, 'Loading the changes…'));
      const r = await this.api.version(v.version);
      if (r.kind === 'ok') return diff.replaceChildren(...this.changes(r.data));
      loaded = false;
      if (r.kind === 'unauthorized') return this.onUnauthorized();
      diff.replaceChildren(h('p', { class: 'status status-error', role: 'status' },
        `The changes could not be loaded. ${failureText(r).title}. Close and open the version to try again.`));
    });
    return h('li', { class: 'item version' }, toggle, diff);
  }

  private changes(v: NarrativeVersionResponse): Node[] {
    const { added, removed, kept } = v.changes;
    return [
      h('p', { class: 'diff-caption' }, v.version === 1 ? 'The first version: every claim in it is new.' : `Compared with version ${v.version - 1}:`),
      ...this.group('Added', 'added', '+', added),
      ...this.group('Removed', 'removed', '−', removed),
      h('details', { class: 'diff-kept' }, h('summary', {}, `Kept (${kept.length})`),
        kept.length ? this.claimList(kept, 'kept', '=') : h('p', { class: 'empty' }, 'None.')),
    ];
  }

  private group(title: string, kind: string, mark: string, claims: NarrativeClaim[]): Node[] {
    return [
      h('h3', { class: `diff-heading diff-${kind}` }, `${title} (${claims.length})`),
      claims.length ? this.claimList(claims, kind, mark) : h('p', { class: 'empty' }, 'None.'),
    ];
  }

  private claimList(claims: NarrativeClaim[], kind: string, mark: string): HTMLUListElement {
    return h('ul', { class: `diff-list diff-${kind}` }, ...claims.map((c) => h('li', {},
      h('span', { class: 'diff-mark', 'aria-hidden': 'true' }, mark),
      h('span', {}, h('span', { class: 'diff-section' }, c.section), h('span', { class: 'diff-text' }, ...inlineDom(document, c.text))))));
  }

  private failed(what: string, f: Failure): void {
    if (f.kind === 'unauthorized') return this.onUnauthorized();
    const { title, detail } = failureText(f);
    setStatus(this.el.status, 'error', `${what}: ${title}`, detail);
  }
}
