import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The stack is shared; each test makes its own users and rows, so files run in parallel.
    pool: 'forks',
  },
});
