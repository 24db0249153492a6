// Every figure in the docs is printed by a command: the tables between `<!-- figures:NAME -->`
// markers in README.md and docs/*.md are exactly what `npm run docs:figures` renders from
// docs/figures/*.json (so nobody edits a figure by hand), every figure file is there, and every
// link between the docs lands on a file and a heading that exist.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyBlocks, check, docFiles, FIGURES_DIR, renderBlocks, SOURCES } from './docs-figures.ts';

const root = path.resolve(import.meta.dirname, '..');

describe('figures in the docs', () => {
  it('every embedded table is what docs/figures/*.json renders, and every block is embedded somewhere', () => {
    expect(check(), 'run npm run docs:figures (after measuring again with the commands in scripts/docs-figures.ts)').toEqual([]);
  });

  it('every figure file the docs render from is committed', () => {
    for (const command of Object.values(SOURCES)) {
      const file = /--json (\S+)/.exec(command)![1];
      expect(fs.existsSync(path.join(root, file)), `${file} (written by ${command})`).toBe(true);
    }
    expect(fs.readdirSync(FIGURES_DIR).sort(), 'no figure file that nothing renders')
      .toEqual(Object.values(SOURCES).map((c) => path.basename(/--json (\S+)/.exec(c)![1])).sort());
  });

  it('a figure edited by hand is caught', () => {
    const blocks = renderBlocks();
    const doc = `x\n<!-- figures:bench -->\n${blocks.bench}\n<!-- /figures:bench -->\ny\n`;
    expect(applyBlocks(doc, blocks).text, 'as rendered: unchanged').toBe(doc);
    const edited = doc.replace(/\| (PASS|MISS) \|/, '| PASS (edited) |');
    expect(edited, 'the edit changed the table').not.toBe(doc);
    expect(applyBlocks(edited, blocks).text, 'rendering again puts the measured figure back').toBe(doc);
  });
});

/** GitHub's heading anchors: lowercase, punctuation dropped (hyphens and underscores kept), spaces to hyphens. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

function anchorsOf(file: string): Set<string> {
  const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
}

describe('links between the docs', () => {
  it('every relative link names a file that exists and a heading it has', () => {
    const broken: string[] = [];
    for (const file of docFiles()) {
      const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const [to, anchor] = target.split('#');
        const dest = to ? path.resolve(path.dirname(file), to) : file;
        const where = `${path.relative(root, file)} → ${target}`;
        if (!fs.existsSync(dest)) broken.push(`${where}: no such file`);
        else if (anchor !== undefined && dest.endsWith('.md') && !anchorsOf(dest).has(anchor)) broken.push(`${where}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });
});
