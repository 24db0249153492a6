// The bearer token the eval's and the soak's MCP requests send: the user's own session token
// today. One place, so a change in how MCP clients get their tokens (an OAuth client's token
// bound to that client instead of the user's session token) is one change.
import type { AuthUser } from '../local/fakes/users.ts';

export async function mcpToken(user: AuthUser): Promise<string> {
  return user.accessToken;
}
