// The fake Gemini lives in local/fakes/gemini.ts (tests, chaos and bench share it); this path
// stays so existing imports keep working.
export * from '../../local/fakes/gemini.ts';
