// StrykerJS over the pure modules of src/ (`npm run mutation`; one module: `npm run mutation -- --mutate src/legacy/errors.ts`).
// Per-module thresholds are checked afterwards by scripts/mutation-report.mjs (Stryker's own break is global).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: [
    'src/translation/request.ts',
    'src/translation/body.ts',
    'src/translation/response.ts',
    'src/legacy/identify.ts',
    'src/legacy/errors.ts',
    'src/apim/rate-limiter.ts',
    'src/comparison/diff.ts',
    'src/comparison/redact.ts',
    'src/comparison/paths.ts',
    'src/sessions/crypto.ts',
    'src/rules/secrets.ts',
  ],
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 95, low: 85, break: null },
  concurrency: 2,
  timeoutMS: 20_000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
