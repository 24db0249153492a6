// The dashboard: sign in with supabase-js (the session lives in localStorage and survives a
// reload), then four views as tabs: the narrative (claims and their sources), the notes
// editor, the history with diffs, and the memories list. URL and anon key are fixed at build time.
import { createClient, type Session } from '@supabase/supabase-js';
import { narrativeApi } from './api.ts';
import { HistoryView } from './history.ts';
import { MemoriesView } from './memories.ts';
import { NotesEditor } from './notes.ts';
import { NarrativePanel } from './panel.ts';
import { Tabs } from './tabs.ts';
import './style.css';

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
}

const boot = byId('boot');
const url = import.meta.env.VITE_SUPABASE_URL as string | undefined;
const anonKey = import.meta.env.VITE_SUPABASE_ANON_KEY as string | undefined;

if (!url || !anonKey) {
  boot.textContent = 'This dashboard was built without VITE_SUPABASE_URL and VITE_SUPABASE_ANON_KEY.';
  throw new Error('missing VITE_SUPABASE_URL / VITE_SUPABASE_ANON_KEY at build time');
}

const supabase = createClient(url, anonKey, {
  auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: false },
});

const signinView = byId('signin-view');
const form = byId<HTMLFormElement>('signin-form');
const email = byId<HTMLInputElement>('email');
const password = byId<HTMLInputElement>('password');
const signinButton = byId<HTMLButtonElement>('signin-button');
const signinStatus = byId('signin-status');
const account = byId('account');
const accountEmail = byId('account-email');
const signOutButton = byId<HTMLButtonElement>('sign-out');
const app = byId('app');

let view: 'signin' | 'panel' | null = null;

function formMessage(text: string, tone: 'info' | 'warn' = 'warn'): void {
  signinStatus.dataset.tone = tone;
  signinStatus.textContent = text;
}

const api = narrativeApi(supabase);

/** A call was refused with 401: the session is over. */
function sessionEnded(): void {
  showSignIn('Your session has ended. Please sign in again.');
  // Drop the rejected session from this browser (the server already refuses its token).
  void supabase.auth.signOut({ scope: 'local' });
}

const panel = new NarrativePanel({
  root: byId('panel'),
  heading: byId('panel-title'),
  status: byId('status'),
  retry: byId('retry'),
  tryAgain: byId('try-again'),
  article: byId('narrative'),
  generated: byId('meta-generated'),
  version: byId('meta-version'),
  model: byId('meta-model'),
  stale: byId('stale-badge'),
  updating: byId('updating-badge'),
  regenerate: byId('regenerate'),
  body: byId('narrative-body'),
}, api, sessionEnded);

const notes = new NotesEditor({
  form: byId('note-form'),
  input: byId('note-new'),
  pinned: byId('note-new-pinned'),
  counter: byId('note-new-count'),
  add: byId('note-add'),
  formError: byId('note-form-error'),
  status: byId('notes-status'),
  count: byId('notes-count'),
  list: byId('notes-list'),
}, api, sessionEnded);

const history = new HistoryView({ status: byId('history-status'), list: byId('history-list') }, api, sessionEnded);

const memories = new MemoriesView({
  form: byId('memory-search-form'),
  search: byId('memory-search'),
  status: byId('memories-status'),
  list: byId('memories-list'),
  more: byId('memories-more'),
}, api, sessionEnded);

const views = { narrative: panel, notes, history, memories };
// Each view loads when first shown; the narrative is loaded at sign-in and read again on its
// tab only after a change elsewhere.
const tabs = new Tabs(byId('tabs'), (view) => views[view].show());

function showSignIn(message = ''): void {
  view = 'signin';
  tabs.stop();
  // A confirmation left open belongs to the session that ended.
  for (const d of document.querySelectorAll('dialog[open]')) (d as HTMLDialogElement).close();
  for (const v of Object.values(views)) v.reset();
  boot.hidden = true;
  app.hidden = true;
  account.hidden = true;
  signinView.hidden = false;
  signinButton.disabled = false;
  password.value = '';
  formMessage(message);
  email.focus();
}

function showPanel(session: Session, focus: boolean): void {
  view = 'panel';
  boot.hidden = true;
  signinView.hidden = true;
  formMessage('');
  account.hidden = false;
  accountEmail.textContent = session.user.email ?? '';
  accountEmail.title = session.user.email ?? '';
  app.hidden = false;
  tabs.start();
  if (focus) document.querySelector<HTMLElement>('[role="tabpanel"]:not([hidden]) h1')?.focus();
  void panel.load();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  signinButton.disabled = true;
  formMessage('Signing in…', 'info');
  const { data, error } = await supabase.auth.signInWithPassword({ email: email.value.trim(), password: password.value });
  signinButton.disabled = false;
  if (error || !data.session) {
    formMessage(error?.status === 400 ? 'Wrong email or password.'
      : !error?.status ? "Can't reach the server. Check your connection and try again."
      : `Signing in failed (HTTP ${error.status}).`);
    return;
  }
  password.value = '';
  showPanel(data.session, true);
});

signOutButton.addEventListener('click', async () => {
  signOutButton.disabled = true;
  showSignIn('You are signed out.');
  const { error } = await supabase.auth.signOut();
  // Revoking on the server failed (offline?): still forget the session in this browser.
  if (error) await supabase.auth.signOut({ scope: 'local' });
  signOutButton.disabled = false;
});

// The session can end without a click (refresh token revoked, another tab signed out).
supabase.auth.onAuthStateChange((event) => {
  if (event === 'SIGNED_OUT' && view === 'panel') setTimeout(() => showSignIn('You have been signed out.'), 0);
});

const { data } = await supabase.auth.getSession();
if (data.session) showPanel(data.session, false);
else showSignIn();
