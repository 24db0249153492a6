// Each test makes its own users through the Auth admin API, so tests never share state.
import crypto from 'node:crypto';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { API_URL, keys } from './stack.ts';

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

export async function createUser(opts: { appMetadata?: Record<string, unknown>; userMetadata?: Record<string, unknown> } = {}): Promise<TestUser> {
  const email = `test-${crypto.randomUUID()}@example.test`;
  const password = `pw-${crypto.randomUUID()}`;
  const { data, error } = await serviceClient().auth.admin.createUser({
    email, password, email_confirm: true, app_metadata: opts.appMetadata, user_metadata: opts.userMetadata,
  });
  if (error || !data.user) throw new Error(`createUser failed: ${error?.message}`);
  const client = anonClient();
  const signIn = await client.auth.signInWithPassword({ email, password });
  if (signIn.error || !signIn.data.session) throw new Error(`signIn failed: ${signIn.error?.message}`);
  return { id: data.user.id, email, password, accessToken: signIn.data.session.access_token, client };
}
