import { defineConfig } from 'vitest/config';

/**
 * The unit tests alone, for StrykerJS (`npm run mutation`): no projects, no global setup, no integration tests
 * (they need Redis and Chromium and are far too slow to run once per mutant).
 */
export default defineConfig({
  test: {
    // scripts/mutation.mjs names the tests that pin the module being mutated (scripts/mutation-tests.mjs).
    include: process.env.ERS_MUTATION_TESTS?.split(',') ?? ['test/unit/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
