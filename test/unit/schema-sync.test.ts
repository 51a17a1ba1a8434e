/**
 * The published JSON Schema (schema/rules.schema.json) is generated from the zod schema ers-bridge validates with;
 * this fails when someone changes one without regenerating the other (`npm run schema`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rulesJsonSchema } from '../../scripts/write-json-schema.js';

describe('schema/rules.schema.json', () => {
  it('matches the zod schema', () => {
    const committed = JSON.parse(readFileSync(new URL('../../schema/rules.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(rulesJsonSchema());
  });

  it('every rules file points editors at it', () => {
    for (const env of ['prod', 'int', 'dep', 'dev1', 'dev3', 'sandbox', 'local']) {
      const text = readFileSync(new URL(`../../rules/${env}.yaml`, import.meta.url), 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/rules.schema.json');
    }
  });
});
