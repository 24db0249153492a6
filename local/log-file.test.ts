// The local runtime's log stays bounded on disk, and an offset taken before any amount of
// logging still finds what was logged after it (local/log-file.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LineBuffer, logicalSize, readSince, RotatingLog, rotatedFile } from './log-file.ts';

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-file-'));
  file = path.join(dir, 'runtime.log');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const line = (i: number) => `${JSON.stringify({ msg: 'request', i, pad: 'x'.repeat(80) })}\n`;

describe('RotatingLog', () => {
  it('keeps the current file and the one generation under twice the bound, however much is written', () => {
    const log = new RotatingLog(file, 10_000);
    for (let i = 0; i < 5_000; i++) log.write(line(i));
    log.close();
    const current = fs.statSync(file).size;
    const older = fs.statSync(rotatedFile(file)).size;
    expect(current, 'the current file is under the bound').toBeLessThan(10_000);
    expect(older, 'the kept generation is about one bound').toBeLessThan(10_000 + line(0).length);
    const written = Array.from({ length: 5_000 }, (_, i) => line(i).length).reduce((a, b) => a + b, 0);
    expect(logicalSize(file), 'the logical size counts everything ever written').toBe(written);
  });

  it('finds what was logged after an offset across a rotation, from the kept generation on', () => {
    const log = new RotatingLog(file, 10_000);
    for (let i = 0; i < 50; i++) log.write(line(i));
    const from = logicalSize(file);
    for (let i = 50; i < 150; i++) log.write(line(i)); // past the bound: rotates once
    expect(fs.existsSync(rotatedFile(file)), 'rotated').toBe(true);
    const since = readSince(file, from)!;
    const seen = since.trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    expect(seen, 'exactly the lines written after the offset, in order').toEqual(Array.from({ length: 100 }, (_, k) => 50 + k));
    log.close();
  });

  it('keeps offsets growing when a new writer opens the same log (a runtime restart)', () => {
    const first = new RotatingLog(file, 10_000);
    for (let i = 0; i < 120; i++) first.write(line(i));
    first.close();
    const from = logicalSize(file)!;
    const second = new RotatingLog(file, 10_000);
    second.write(line(999));
    second.close();
    expect(logicalSize(file), 'the size goes on from where it was').toBe(from + line(999).length);
    expect(readSince(file, from), 'only the new line').toBe(line(999));
  });

  it('answers null for a log that does not exist, and everything on disk for an offset past its end', () => {
    expect(logicalSize(file)).toBeNull();
    expect(readSince(file, 0)).toBeNull();
    const log = new RotatingLog(file, 10_000);
    log.write(line(1));
    log.close();
    expect(readSince(file, 1e9), 'an offset past the end (the file emptied by hand) reads all of it').toBe(line(1));
  });
});

describe('LineBuffer', () => {
  it('passes on whole lines only, joining those a chunk cut, and the last one without a newline at the end', () => {
    const b = new LineBuffer();
    const enc = new TextEncoder();
    expect(b.push(enc.encode('{"a":1}\n{"b":'))).toBe('{"a":1}\n');
    expect(b.push(enc.encode('2}\n'))).toBe('{"b":2}\n');
    // A multi-byte character split between two chunks is not mangled.
    const euro = enc.encode('€');
    expect(b.push(euro.subarray(0, 1))).toBe('');
    expect(b.push(euro.subarray(1))).toBe('');
    expect(b.flush()).toBe('€\n');
  });
});
