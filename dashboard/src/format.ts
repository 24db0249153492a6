// Wording shown on the dashboard.
import type { Failure } from './api.ts';

/** "today", "1 day ago", "12 days ago" from the server's age_days. */
export function generatedAgo(ageDays: number): string {
  const days = Math.floor(Math.max(0, ageDays));
  if (days === 0) return 'today';
  return days === 1 ? '1 day ago' : `${days} days ago`;
}

/** Whole minutes, rounded up so the button is never enabled before the server allows it. */
export function minutesLeft(seconds: number): number {
  return Math.max(1, Math.ceil(seconds / 60));
}

/** Polling delays: 1 s, 2 s, 4 s, … capped at 15 s. */
export function backoff(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, 15_000);
}

/** A failed call said plainly (401 is handled before this: back to sign-in). */
export function failureText(f: Failure): { title: string; detail: string } {
  if (f.kind === 'network') return { title: "Can't reach the server", detail: 'Check your connection, then retry.' };
  if (f.kind === 'unauthorized') return { title: 'Your session has ended', detail: 'Please sign in again.' };
  if (f.status >= 500) return { title: `Something went wrong on our side (HTTP ${f.status})`, detail: 'Please retry in a moment.' };
  if (f.status < 400) return { title: 'Something went wrong on our side', detail: `The server sent an unexpected answer (HTTP ${f.status}).` };
  return { title: `The request was refused (HTTP ${f.status})`, detail: f.message ?? 'Please retry.' };
}
