/**
 * The admin token's strength, checked when a runtime is built: under 128 bits (estimated from length and character
 * classes), patterned, or the example placeholder → a RulesError naming admin.token and saying how to make a good
 * one, never showing the token.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { estimateTokenBits, tokenStrengthProblem } from '../../src/admin/token-strength.js';
import { RulesError } from '../../src/rules/load.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, closeRuntime } from '../../src/runtime/runtime.js';
import { rulesFor } from '../helpers/rules.js';

/** A 22-character base64url token that uses every class (the base64url minimum). */
const B64URL_22 = 'q3Z-8_kV0xWmB7nRt2LpYc';

describe('tokenStrengthProblem', () => {
  it('accepts what openssl and other random generators give, from the minimum lengths up', () => {
    for (let i = 0; i < 500; i++) {
      for (const token of [
        randomBytes(32).toString('hex'), // openssl rand -hex 32
        randomBytes(16).toString('hex'), // 32 hex: the hex minimum
        randomBytes(16).toString('hex').toUpperCase(),
        randomBytes(32).toString('base64'), // openssl rand -base64 32
        randomBytes(24).toString('base64url'), // the admin tests' tokens
      ]) {
        expect(tokenStrengthProblem(token), `${token.length} characters`).toBeUndefined();
      }
    }
    expect(tokenStrengthProblem(B64URL_22)).toBeUndefined();
    expect(estimateTokenBits('0123456789abcdef'.repeat(2))).toBe(128);
    expect(estimateTokenBits(B64URL_22)).toBeCloseTo(132, 0);
  });

  it('refuses short, one-character, word-like and patterned tokens', () => {
    const weak = [
      '',
      'a',
      'x'.repeat(64),
      '1'.repeat(100),
      'password',
      'Password1!',
      'correcthorsebatterystaple',
      'correcthorsebatterystapleadminerstokenbridge', // letters only: counted as words
      randomBytes(16).toString('hex').slice(0, 31), // one hex character short
      B64URL_22.slice(0, 21), // one base64url character short
      'abc'.repeat(30),
      '0123456789abcdef'.repeat(2),
      'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ',
      `${'a'.repeat(60)}Q7-x`,
      'ab12'.repeat(20),
      '550e8400-e29b-41d4-a716-446655440000', // a UUID: 122 random bits
    ];
    for (const token of weak) {
      const problem = tokenStrengthProblem(token);
      expect(problem, JSON.stringify(token)).toBeDefined();
      expect(problem).toContain('openssl rand -hex 32');
      if (token.length >= 4) expect(problem).not.toContain(token);
    }
  });

  it('refuses the example placeholder, alone or with anything after it', () => {
    for (const token of [
      'REPLACE-ME-openssl-rand-hex-32',
      `REPLACE-ME-${randomBytes(32).toString('hex')}`,
      `replace-me${randomBytes(32).toString('hex')}`,
    ]) {
      expect(tokenStrengthProblem(token)).toMatch(/placeholder \(REPLACE-ME…\).*openssl rand -hex 32/);
    }
  });
});

describe('buildRuntime and admin.token', () => {
  const rules = () =>
    rulesFor({
      apim: { baseUrl: 'http://127.0.0.1:9/referrals/FHIR', auth: 'none' },
      asids: { '999000000001': { apim: false } },
      admin: { token: 'env:ADMIN_TOKEN' },
    });

  it('refuses a weak token or the placeholder as a RulesError naming admin.token, without the token', async () => {
    for (const token of ['x', 'hunter2', 'REPLACE-ME-openssl-rand-hex-32', 'a'.repeat(80)]) {
      const built = buildRuntime('rules.yaml', rules(), { resolveSecret: secretResolver({ ADMIN_TOKEN: token }) });
      const e = await built.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e, token).toBeInstanceOf(RulesError);
      expect((e as RulesError).fieldPath).toBe('admin.token');
      expect((e as RulesError).message).toContain('rules.yaml: admin.token: expected');
      expect((e as RulesError).message).toContain('openssl rand -hex 32');
      if (token.length > 1) expect((e as RulesError).message).not.toContain(token);
    }
  });

  it('accepts a strong token', async () => {
    const token = randomBytes(32).toString('hex');
    const rt = await buildRuntime('rules.yaml', rules(), { resolveSecret: secretResolver({ ADMIN_TOKEN: token }) });
    try {
      expect(rt.adminToken).toBe(token);
    } finally {
      await closeRuntime(rt);
    }
  });
});
