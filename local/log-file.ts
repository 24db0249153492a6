// A local service's log, bounded on disk. The functions runtime logs one JSON line per request,
// so a bench run once wrote about 500 MB into .local/logs/runtime.log and tests that read the
// whole log broke. Its supervisor (local/runtime/workers.ts) is the only writer: past `maxBytes`
// the file is copied to `<file>.1` (the one older generation kept) and emptied, and
// `<file>.offset` records where the current file starts in the log's whole history. Offsets are
// therefore logical: `logicalSize` never goes down, and `readSince` reads across one rotation,
// so what tests read "from an offset" keeps working however much was logged in between.
// Local stack only: production logging is the platform's.
// Plain node:fs, so the Node side (local/processes.ts) and the Deno supervisor share it.
import fs from 'node:fs';

/** Default bound of the current file; LOCAL_LOG_MAX_BYTES overrides it (tests use a small one). */
export const LOG_MAX_BYTES_DEFAULT = 32 * 1024 * 1024;

/** Where the current file and the kept generation start, in bytes of the log's whole history. */
interface Offsets { base: number; prev: number }

const utf8 = new TextDecoder();
const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
};

// (Deno 2.1's node types do not see a Buffer as a Uint8Array, which it is.)
const readBytes = (file: string) => fs.readFileSync(file) as unknown as Uint8Array;

const offsetFile = (file: string) => `${file}.offset`;
export const rotatedFile = (file: string) => `${file}.1`;

function readOffsets(file: string): Offsets {
  try {
    const o = JSON.parse(fs.readFileSync(offsetFile(file), 'utf8')) as Partial<Offsets>;
    if (Number.isSafeInteger(o.base) && Number.isSafeInteger(o.prev)) return { base: o.base!, prev: o.prev! };
  } catch { /* none yet: the file starts the history */ }
  return { base: 0, prev: 0 };
}

function writeOffsets(file: string, o: Offsets): void {
  const tmp = `${offsetFile(file)}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(o));
  fs.renameSync(tmp, offsetFile(file));
}

/** The log's size over its whole history (what was logged later starts here), or null when
 *  the log cannot be read. */
export function logicalSize(file: string): number | null {
  for (let i = 0; i < 3; i++) {
    const before = readOffsets(file);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return null;
    }
    const after = readOffsets(file);
    if (before.base === after.base) return after.base + size;
  }
  return null;
}

/** What was logged from logical offset `from` on (everything still on disk when `from` is null
 *  or older than the kept generation), or null when the log cannot be read. */
export function readSince(file: string, from: number | null): string | null {
  for (let i = 0; i < 3; i++) {
    const before = readOffsets(file);
    let current: Uint8Array;
    try {
      current = readBytes(file);
    } catch {
      return null;
    }
    let older: Uint8Array = new Uint8Array(0);
    if (from === null || from < before.base) {
      try {
        older = readBytes(rotatedFile(file));
      } catch { /* never rotated */ }
    }
    const after = readOffsets(file);
    if (before.base !== after.base) continue; // rotated while reading: read again
    if (from !== null && from >= after.base) {
      // Past the end: the file was emptied by hand, or the offset is not this log's. Everything.
      const at = from - after.base;
      return utf8.decode(at <= current.byteLength ? current.subarray(at) : current);
    }
    const at = from === null ? 0 : Math.max(0, from - after.prev);
    return utf8.decode(concat(older.subarray(Math.min(at, older.byteLength)), current));
  }
  return null;
}

/**
 * The writer: appends whole lines to `file`, rotating past `maxBytes`. Only one process may
 * write through it (others may append to the file directly in O_APPEND mode, e.g. a crash
 * message on the supervisor's own stderr: they land in whichever generation is current).
 */
export class RotatingLog {
  readonly #file: string;
  readonly #maxBytes: number;
  #fd: number;
  #size: number;

  constructor(file: string, maxBytes = LOG_MAX_BYTES_DEFAULT) {
    if (!(maxBytes > 0)) throw new Error('maxBytes must be positive');
    this.#file = file;
    this.#maxBytes = maxBytes;
    this.#fd = fs.openSync(file, 'a');
    this.#size = fs.fstatSync(this.#fd).size;
  }

  /** Appends `text` (whole lines: callers buffer partial ones), then rotates if past the bound. */
  write(text: string | Uint8Array): void {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    if (bytes.byteLength === 0) return;
    fs.writeSync(this.#fd, bytes);
    this.#size += bytes.byteLength;
    if (this.#size >= this.#maxBytes) this.#rotate();
  }

  #rotate(): void {
    // What was appended by others is in the file too: its real size is the one to count.
    const size = fs.fstatSync(this.#fd).size;
    if (size < this.#maxBytes) {
      this.#size = size;
      return;
    }
    const o = readOffsets(this.#file);
    fs.copyFileSync(this.#file, rotatedFile(this.#file));
    // Emptied before the offsets move: a reader in between sees a smaller size with the old
    // base, so it reads a little more than it asked for (never less).
    fs.ftruncateSync(this.#fd, 0);
    writeOffsets(this.#file, { base: o.base + size, prev: o.base });
    this.#size = 0;
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

/** Splits a byte stream into whole lines for RotatingLog: `push` returns what is complete. */
export class LineBuffer {
  #rest = '';
  readonly #decoder = new TextDecoder();

  push(chunk: Uint8Array): string {
    const text = this.#rest + this.#decoder.decode(chunk, { stream: true });
    const end = text.lastIndexOf('\n');
    if (end < 0) {
      this.#rest = text;
      return '';
    }
    this.#rest = text.slice(end + 1);
    return text.slice(0, end + 1);
  }

  /** What is left at the end of the stream (a last line without its newline). */
  flush(): string {
    const rest = this.#rest + this.#decoder.decode();
    this.#rest = '';
    return rest ? `${rest}\n` : '';
  }
}
