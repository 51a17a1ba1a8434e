/**
 * The APIM stand-in's catalogue and example fixtures, read from disk: every operation of endpoints.json has a
 * responder, every example request an example response. test/apim-standin/examples-coverage.test.ts sends each
 * example to a running stand-in.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCatalogue } from '../../../src/apim-standin/catalogue.js';
import { BODY_EXAMPLES, RESPONDERS } from '../../../src/apim-standin/examples.js';
import { ersFixturesDir, packageRoot } from '../../../src/apim-standin/fixtures.js';

const EXAMPLES = join(ersFixturesDir(), 'examples');

describe('fixtures and catalogue', () => {
  it('finds the package root and the fixtures from the module location', () => {
    expect(existsSync(join(packageRoot(), 'package.json'))).toBe(true);
    expect(existsSync(join(ersFixturesDir(), 'endpoints.json'))).toBe(true);
  });

  it('has a responder for every operation of endpoints.json', () => {
    const ops = loadCatalogue();
    expect(ops.length).toBe(40);
    expect(ops.filter((op) => RESPONDERS[op.code] === undefined).map((op) => op.code)).toEqual([]);
  });

  it('maps every example request to an existing example response', () => {
    for (const set of Object.values(BODY_EXAMPLES)) {
      const requests = readdirSync(join(EXAMPLES, set.dir, 'requests')).filter((n) => n.endsWith('.json'));
      expect(requests.length).toBeGreaterThan(0);
      for (const name of requests) {
        const base = name.replace(/\.json$/, '');
        const response = join(EXAMPLES, set.dir, 'responses', `${set.responses?.[base] ?? base}.json`);
        expect(existsSync(response), `${set.dir}/requests/${name} → ${response}`).toBe(true);
      }
    }
  });
});
