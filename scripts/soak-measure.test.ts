// What the soak counts as a success (no stack): a 429 never, an HTTP 200 carrying a JSON-RPC or
// tool error never; latency percentiles only from 100 samples; memory of this stack's own
// processes only.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classify, latencySummary, stackRss } from './soak-measure.ts';

describe('classify', () => {
  it('counts a 429 as limited on every traffic, never as a success', () => {
    expect(classify('regenerate', 429, ''), 'Regenerate\'s cooldown').toBe('limited');
    expect(classify('orchestrate', 429, '{"error":{"code":"rate_limited"}}'), 'orchestrate over its limit').toBe('limited');
    expect(classify('mcp', 429, '{"error":{"code":"rate_limited"}}'), 'MCP over its limit').toBe('limited');
    expect(classify('regenerate', 202, '{}'), 'queued').toBe('ok');
    expect(classify('orchestrate', 200, '{}'), 'served').toBe('ok');
    expect(classify('orchestrate', 500, ''), 'a 500').toBe('error');
  });

  it('counts an MCP answer as a success only when it is a JSON-RPC result that is no tool error', () => {
    const result = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [], structuredContent: {} } });
    expect(classify('mcp', 200, result), 'a result').toBe('ok');
    expect(classify('mcp', 200, `event: message\ndata: ${result}\n\n`), 'a result as SSE').toBe('ok');
    expect(classify('mcp', 200, JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'bad' } })), 'a JSON-RPC error in a 200').toBe('error');
    expect(classify('mcp', 200, JSON.stringify({ jsonrpc: '2.0', id: 1, result: { isError: true, content: [] } })), 'a tool error').toBe('error');
    expect(classify('mcp', 200, '<html>'), 'not JSON').toBe('error');
    expect(classify('mcp', 200, ''), 'empty').toBe('error');
  });
});

describe('latencySummary', () => {
  const l = { min: 1, p50: 5, p97_5: 9, p99: 10, max: 12 };
  it('prints percentiles from 100 samples, min / median / max below', () => {
    expect(latencySummary(100, l), '100 samples').toEqual({ samples: 100, kind: 'percentiles', text: 'p50 5 / p97.5 9 / p99 10' });
    expect(latencySummary(99, l), '99 samples').toEqual({ samples: 99, kind: 'spread', text: 'min 1 / median 5 / max 12' });
  });
});

describe('stackRss', () => {
  it('sums a process group and a parent with its children, nothing else', async () => {
    // A group of two (a shell and its child) stands in for the runtime, this process for a postmaster.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
    const group = spawn('sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore', cwd: dir });
    try {
      let got = stackRss(group.pid!, process.pid);
      for (let i = 0; i < 50 && got.processes.runtime < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
        got = stackRss(group.pid!, process.pid);
      }
      expect(got.processes.runtime, 'the shell and its sleep').toBe(2);
      expect(got.runtime, 'their memory').toBeGreaterThan(0);
      expect(got.processes.postgres, 'this process and its children (the group\'s shell among them)').toBeGreaterThanOrEqual(2);
      expect(stackRss(2 ** 22 + 7, 2 ** 22 + 7).processes, 'pids that do not exist: nothing').toEqual({ runtime: 0, postgres: 0 });
    } finally {
      process.kill(-group.pid!, 'SIGKILL');
    }
  });
});
