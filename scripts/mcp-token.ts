// The bearer token the eval's and the soak's MCP requests send: the user's token of the demo MCP
// client (supabase/seed.sql registers it; supabase/functions/.env and tests/functions.env allow
// it), signed in through Auth's OAuth 2.1 server as an MCP client does (local/fakes/oauth.ts).
// The mcp function refuses the user's plain session token: it was not issued for the resource.
import fs from 'node:fs';
import { KEYS_FILE } from '../local/config.ts';
import { mcpToken as oauthToken } from '../local/fakes/oauth.ts';
import type { AuthUser } from '../local/fakes/users.ts';
import type { LocalKeys } from '../local/keys.ts';

let anonKey: string | undefined;

/** Signed in once per user (the consent screen's calls carry the anon key, as supabase-js sends it). */
export async function mcpToken(user: AuthUser): Promise<string> {
  anonKey ??= (JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8')) as LocalKeys).anonKey;
  return await oauthToken(user, anonKey);
}
