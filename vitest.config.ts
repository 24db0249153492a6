import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        // Pure modules, tested beside them: no stack, no fake, run first.
        test: {
          name: 'unit',
          include: [
            'dashboard/src/**/*.test.ts', 'shared/**/*.test.ts', 'supabase/functions/_shared/**/*.test.ts', 'scripts/**/*.test.ts', 'local/*.test.ts',
          ],
        },
      },
      {
        // Suites that rebuild or restart shared services; run alone, before the rest.
        test: {
          name: 'isolated', include: ['tests/isolated/**/*.test.ts'], fileParallelism: false, testTimeout: 120_000,
          globalSetup: ['tests/global-setup.ts'],
        },
      },
      {
        // Everything else shares the running stack; each test makes its own users and rows.
        test: {
          name: 'stack', include: ['tests/*.test.ts'], testTimeout: 30_000, hookTimeout: 60_000,
          globalSetup: ['tests/global-setup.ts'],
        },
      },
      {
        // Run by npm test after the chaos run, with the functions back on the default env.
        test: { name: 'after-chaos', include: ['tests/after-chaos/**/*.test.ts'], testTimeout: 90_000 },
      },
    ],
  },
});
