/**
 * The test helpers every other test builds on: rulesFor reads its options back through the real rules loader (so a
 * mistake fails loudly, naming the field), and newApimApp's env holds exactly the secrets its rules block refers to.
 */
import { describe, expect, it } from 'vitest';
import { RulesError } from '../../src/rules/load.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { newApimApp } from '../helpers/apim-app.js';
import { rulesFor, rulesText } from '../helpers/rules.js';

const APIM = { baseUrl: 'http://127.0.0.1:9000/referrals/FHIR', tokenUrl: 'http://127.0.0.1:9000/oauth2/token' };

describe('rulesFor', () => {
  it('fills in the test defaults: environment, legacy host, timeouts, an application-restricted ASID at R69', () => {
    const rules = rulesFor({ apim: APIM, asids: { '999000000001': {} } });
    expect(rules.environment).toBe('test');
    expect(rules.legacy.host).toBe('api.int1.ers.ncrs.nhs.uk');
    expect(rules.apim.timeouts).toEqual({ connectMs: 2000, headersMs: 5000, bodyMs: 5000 });
    expect(rules.asids['999000000001']).toEqual({
      accessMode: 'application-restricted',
      apim: { apiKey: 'env:TEST_API_KEY', keyId: 'test-1', privateKey: 'env:TEST_PRIVATE_KEY' },
      organisation: { odsCode: 'R69', name: 'TEST NHS TRUST' },
      businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
    });
  });

  it('fails with the loader’s message, naming the file and the field', () => {
    const bad = { apim: APIM, asids: { '999000000001': {} }, sessions: { stor: 'redis' } } as never;
    expect(() => rulesFor(bad)).toThrow(RulesError);
    expect(() => rulesFor(bad)).toThrow(/^test\.yaml: sessions: unknown field "stor"/);
    expect(() => rulesText({ ...(bad as object), file: 'x.yaml' } as never)).toThrow(/^x\.yaml: sessions: /);
    expect(() => rulesFor({ apim: APIM, asids: { '12': {} } })).toThrow(/ASID/);
  });

  it('rulesText is YAML the loader reads back to the same rules', () => {
    const options = { apim: APIM, asids: { '999000000001': { allowedCodes: ['A004', 'A005'] } } };
    expect(rulesFor(options)).toEqual(rulesFor(options));
    expect(rulesText(options)).toContain('allowedCodes:');
  });
});

describe('newApimApp', () => {
  it('an application-restricted app: its rules block refers to exactly the secrets in its env', async () => {
    const app = await newApimApp();
    const rules = rulesFor({ apim: APIM, asids: { [app.asid]: { apim: app.apim } } });
    const asid = rules.asids[app.asid]!;
    const resolve = secretResolver(app.env);
    expect(await resolve(asid.apim!.apiKey)).toBe(app.apiKey);
    expect(await resolve(asid.apim!.privateKey)).toBe(app.privateKeyPem);
    expect(app.standInApp).toMatchObject({ apiKey: app.apiKey, asid: '999000000001', odsCode: 'R69' });
    expect(app.standInApp.jwks.keys[0]).toMatchObject({ kid: 'test-1', kty: 'RSA', use: 'sig' });
    expect(app.apiSecret).toBeUndefined();
  });

  it('a user-restricted app has an API secret; kidAtStandIn and envPrefix change only what they name', async () => {
    const app = await newApimApp({ accessMode: 'user-restricted', envPrefix: 'USER', kidAtStandIn: 'other' });
    expect(app.apim).toEqual({
      apiKey: 'env:USER_API_KEY',
      keyId: 'user-1',
      privateKey: 'env:USER_PRIVATE_KEY',
      apiSecret: 'env:USER_API_SECRET',
    });
    expect(Object.keys(app.env).sort()).toEqual(['USER_API_KEY', 'USER_API_SECRET', 'USER_PRIVATE_KEY']);
    expect(app.env['USER_API_SECRET']).toBe(app.apiSecret);
    expect(app.standInApp.jwks.keys[0]!.kid).toBe('other');
    expect(app.standInApp.odsCode).toBeUndefined();
  });
});
