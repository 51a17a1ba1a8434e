/**
 * The docs stay true: every error reason ers-bridge can raise is explained in MIGRATION.md's troubleshooting table,
 * every CLI command in the README exists, and the README opens with the two set-up commands.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REASONS } from '../../src/legacy/errors.js';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('documentation', () => {
  it('MIGRATION.md explains every error reason with its status', () => {
    const migration = read('MIGRATION.md');
    for (const [reason, r] of Object.entries(REASONS)) {
      const row = migration.split('\n').find((l) => l.startsWith(`| \`${reason}\` |`));
      expect(row, `${reason} missing from MIGRATION.md troubleshooting`).toBeDefined();
      if (reason !== 'UPSTREAM_EMPTY_ERROR') expect(row).toContain(`| ${r.status} |`);
    }
  });

  it('README opens with the demo and test commands', () => {
    const readme = read('README.md');
    const firstBlock = readme.slice(readme.indexOf('```sh'), readme.indexOf('```', readme.indexOf('```sh') + 5));
    expect(firstBlock).toContain('npm ci && npm start');
    expect(firstBlock).toContain('npm test');
  });

  it('.ci/run runs npm ci and the README test command', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/npm ci/);
    expect(ci).toMatch(/^npm test$/m);
  });
});
