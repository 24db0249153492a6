// Wording for times shown on the panel.

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
