// Internal endpoint the dispatch trigger calls through pg_net with {"job_id"}. Authenticated by
// the narrative service secret (verify_jwt = false in config.toml), never by user tokens.
import { generateNarrativeBody } from '../../../shared/narrative.ts';
import { requiredEnv } from '../_shared/env.ts';
import { bearerToken } from '../_shared/auth.ts';
import { allowMethods, HttpError, json, readJson, route, secretsEqual } from '../_shared/http.ts';
import { runAttempt } from '../_shared/narrative/generate.ts';

const serviceSecret = requiredEnv('NARRATIVE_SERVICE_SECRET');

export const handler = route('generate-narrative', async (req) => {
  allowMethods(req, 'POST');
  const token = bearerToken(req) ?? '';
  if (!token || !(await secretsEqual(token, serviceSecret))) {
    throw new HttpError(401, 'unauthorized', 'The narrative service secret is required');
  }
  const { job_id } = await readJson(req, generateNarrativeBody);
  return json(await runAttempt(job_id));
});
