// The one parser of `Authorization: Bearer <token>` (functions and the local stand-ins alike):
// the scheme case-insensitively, then the token; null when there is none. No imports, so the
// local Auth and gateway stand-ins can use it without loading the functions' env.
export function bearerToken(req: Request): string | null {
  const header = req.headers.get('authorization');
  if (!header || !/^bearer\s+/i.test(header)) return null;
  return header.replace(/^bearer\s+/i, '').trim() || null;
}
