// Internal endpoint the dispatch trigger calls through pg_net with {"job_id"}. Authenticated by
// the narrative service secret (verify_jwt = false in config.toml), never by user tokens.
import { generateNarrativeBody } from '../../../shared/narrative.ts';
import { requiredEnv } from '../_shared/env.ts';
import { HttpError, json, readJson, route, secretsEqual } from '../_shared/http.ts';
import { runAttempt } from '../_shared/narrative/generate.ts';

const serviceSecret = requiredEnv('NARRATIVE_SERVICE_SECRET');

export const handler = route('generate-narrative', async (req) => {
  if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'Use POST', { allow: 'POST' });
  const token = req.headers.get('authorization')?.replace(/^bearer\s+/i, '') ?? '';
  if (!token || !(await secretsEqual(token, serviceSecret))) {
    throw new HttpError(401, 'unauthorized', 'The narrative service secret is required');
  }
  const { job_id } = await readJson(req, generateNarrativeBody);
  return json(await runAttempt(job_id));
});
