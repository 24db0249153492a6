// The migration files as a newcomer (and `supabase db push` on a fresh project) reads them: in
// file order. What each file defines (functions, tables, types in public and private, and the
// columns of private.settings) and which names defined in a later file it already uses. plpgsql
// bodies are not checked when a function is created, so a call into a later file only fails
// when it runs; tests/sql-contract.test.ts keeps there being none. Columns: those of
// private.settings and every column a later `alter table ... add column` adds.
import fs from 'node:fs';
import path from 'node:path';

export const MIGRATIONS_DIR = 'supabase/migrations';

export interface Migration {
  file: string;
  /** The text without comments and `comment on ... is '...'` statements (prose may name anything). */
  code: string;
}

/** A name a migration defines: `private.sweep`, `public.memories`, `private.settings.max_notes`. */
export interface Definition { name: string; kind: 'function' | 'table' | 'type' | 'column'; file: string }

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort().map((file) => ({
    file,
    code: fs.readFileSync(path.join(dir, file), 'utf8')
      .replace(/comment on [^;]*? is '(?:[^']|'')*';/gi, '')
      .replace(/--[^\n]*/g, ''),
  }));
}

const DEFINES: [Definition['kind'], RegExp][] = [
  ['function', /create\s+(?:or\s+replace\s+)?function\s+((?:public|private)\.\w+)/gi],
  ['table', /create\s+(?:unlogged\s+)?table\s+((?:public|private)\.\w+)/gi],
  ['type', /create\s+type\s+((?:public|private)\.\w+)/gi],
];

/** Every definition, in file order; a name defined twice is listed twice. */
export function definitions(migrations: Migration[]): Definition[] {
  const out: Definition[] = [];
  for (const { file, code } of migrations) {
    for (const [kind, re] of DEFINES) {
      for (const m of code.matchAll(re)) out.push({ name: m[1].toLowerCase(), kind, file });
    }
    const table = /create\s+table\s+private\.settings\s*\(([\s\S]*?)\n\);/i.exec(code);
    if (table) {
      for (const m of table[1].matchAll(/^\s+(\w+)\s+(?:boolean|int|real|numeric|jsonb|text)\b/gm)) {
        out.push({ name: `private.settings.${m[1]}`, kind: 'column', file });
      }
    }
    for (const alter of code.matchAll(/alter\s+table\s+((?:public|private)\.\w+)([^;]*);/gi)) {
      for (const m of alter[2].matchAll(/add\s+column\s+(\w+)/gi)) out.push({ name: `${alter[1]}.${m[1]}`, kind: 'column', file });
    }
  }
  return out;
}

/** Uses of a name before the file that defines it: "<file> uses <kind> <name>, first defined in <later file>". */
export function forwardReferences(migrations: Migration[]): string[] {
  const first = new Map<string, Definition>();
  for (const d of definitions(migrations)) if (!first.has(d.name)) first.set(d.name, d);
  const order = new Map(migrations.map((m, i) => [m.file, i]));
  const found: string[] = [];
  migrations.forEach(({ file, code }, i) => {
    for (const d of first.values()) {
      if (order.get(d.file)! <= i) continue;
      // A column is used by its bare name (s.max_notes, j.estimated_cost_usd).
      const word = d.kind === 'column' ? d.name.split('.').pop()! : d.name;
      if (new RegExp(`(?<!\\w)${word.replace('.', '\\.')}(?!\\w)`, 'i').test(code)) {
        found.push(`${file} uses ${d.kind} ${d.name}, first defined in ${d.file}`);
      }
    }
  });
  return found;
}
