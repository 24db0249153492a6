// Query strings, validated like bodies: each parameter at most once, then the zod schema
// (unknown parameters included), so a bad one is a 400 with what was wrong, never a 500.
import type { z } from 'zod';
import { HttpError, validated } from './http.ts';

export function readQuery<S extends z.ZodTypeAny>(req: Request, schema: S): z.infer<S> {
  const raw: Record<string, string> = {};
  for (const [key, value] of new URL(req.url).searchParams) {
    if (Object.hasOwn(raw, key)) throw new HttpError(400, 'invalid_request', `${key}: give it once`);
    raw[key] = value;
  }
  return validated(schema, raw, 'query');
}
