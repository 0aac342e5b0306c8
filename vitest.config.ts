import { defineConfig } from 'vitest/config';

// Unit and integration tests. Files that need a DOM declare `// @vitest-environment happy-dom`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Real PostgreSQL for the store tests: one lazily started cluster per run (test/support/postgres.ts).
    globalSetup: ['test/support/postgres-setup.ts'],
  },
});
