// Each test makes its own users (local/fakes/users.ts, shared with the scripts), so tests never share state.
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { createAuthUser, type CreateAuthUserOptions } from '../../local/fakes/users.ts';
import { API_URL } from '../../local/config.ts';
import { keys } from './stack.ts';

const noSession = { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } };

export function serviceClient(): SupabaseClient {
  return createClient(API_URL, keys().serviceRoleKey, noSession);
}

export function anonClient(): SupabaseClient {
  return createClient(API_URL, keys().anonKey, noSession);
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  client: SupabaseClient;
}

/** A user made through the Auth admin API, with a supabase-js client holding its session. */
export async function createUser(opts: Omit<CreateAuthUserOptions, 'prefix'> = {}): Promise<TestUser> {
  const user = await createAuthUser(keys(), opts);
  const client = anonClient();
  const set = await client.auth.setSession({ access_token: user.accessToken, refresh_token: user.refreshToken });
  if (set.error) throw new Error(`setSession failed: ${set.error.message}`);
  return { id: user.id, email: user.email, password: user.password, accessToken: user.accessToken, client };
}
