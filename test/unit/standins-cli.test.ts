/**
 * How the CLI sets up the stand-ins (src/cli/standins.ts), and the APIM stand-in's token exchange when it has no
 * CIS2 issuer, or finds the issuer's keys through discovery — in process (inject, a stubbed fetch), no socket.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { buildApimStandIn, type StandInCis2Options, TOKEN_ERRORS } from '../../src/apim-standin/index.js';
import { cis2OptionsFrom, cis2PortOf, StandInUsageError, standInLayoutFor } from '../../src/cli/standins.js';
import { clientAssertion } from '../apim-standin/helpers.js';
import { newApimApp, newSigningKey } from '../helpers/apim-app.js';
import { rulesFor } from '../helpers/rules.js';
import { makeTempDir } from './support.js';

const tmp = makeTempDir('ers-bridge-standins-');
afterAll(() => tmp.cleanup());
afterEach(() => {
  vi.unstubAllGlobals();
});

const ISSUER = 'http://127.0.0.1:9001/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare';

describe('emulate-apim: where it listens by default', () => {
  const layout = (baseUrl: string, tokenUrl?: string) =>
    standInLayoutFor(
      rulesFor({
        apim: tokenUrl ? { baseUrl, tokenUrl } : { baseUrl, auth: 'none' },
        asids: { '999000000001': tokenUrl ? {} : { apim: false } },
      }),
    );

  it('the port of the token URL, not of the base URL; the rules paths', () => {
    expect(layout('http://127.0.0.1:9100/referrals/FHIR', 'http://127.0.0.1:9200/oauth2/token')).toEqual({
      port: 9200,
      tokenUrlPath: '/oauth2/token',
      basePath: '/referrals/FHIR',
    });
    expect(
      layout('https://dep.example.nhs.uk:8443/referrals-dep/FHIR', 'https://dep.example.nhs.uk:8443/oauth2-dep/token'),
    ).toEqual({
      port: 8443,
      tokenUrlPath: '/oauth2-dep/token',
      basePath: '/referrals-dep/FHIR',
    });
  });

  it('a token URL without a port: 9000; no token URL (open access): the base URL port', () => {
    expect(
      layout('https://int.api.service.nhs.uk/referrals/FHIR', 'https://int.api.service.nhs.uk/oauth2/token').port,
    ).toBe(9000);
    expect(layout('http://127.0.0.1:9300/referrals/FHIR').port).toBe(9300);
  });

  it("the demo's CIS2 stand-in: the port of the rules' cis2.issuer, else 9001", () => {
    const apim = { baseUrl: 'http://127.0.0.1:9000/referrals/FHIR', tokenUrl: 'http://127.0.0.1:9000/oauth2/token' };
    const cis2 = {
      issuer: ISSUER.replace(':9001', ':9444'),
      clientId: 'c',
      clientAuth: { method: 'client_secret_post' as const, secret: 'env:S' },
      redirectUri: 'http://127.0.0.1:8080/login/callback',
    };
    expect(cis2PortOf(rulesFor({ apim, cis2, asids: { '999000000002': { accessMode: 'user-restricted' } } }))).toBe(
      9444,
    );
    expect(cis2PortOf(rulesFor({ apim, asids: { '999000000001': {} } }))).toBe(9001);
  });
});

describe('emulate-apim --cis2-issuer / --cis2-jwks', () => {
  it('neither: no token exchange', () => {
    expect(cis2OptionsFrom(undefined, undefined)).toBeUndefined();
  });

  it('--cis2-issuer alone: the keys through the issuer discovery document', () => {
    expect(cis2OptionsFrom(ISSUER, undefined)).toEqual({
      issuer: ISSUER,
      discoveryUri: `${ISSUER}/.well-known/openid-configuration`,
    });
    expect(cis2OptionsFrom(`${ISSUER}/`, undefined)?.discoveryUri).toBe(`${ISSUER}/.well-known/openid-configuration`);
  });

  it('--cis2-jwks <url> or <file>', () => {
    expect(cis2OptionsFrom(ISSUER, 'http://127.0.0.1:9001/jwks')).toEqual({
      issuer: ISSUER,
      jwksUri: 'http://127.0.0.1:9001/jwks',
    });
    const file = join(tmp.dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k1', n: 'AQAB', e: 'AQAB' }] }));
    expect(cis2OptionsFrom(ISSUER, file)).toEqual({
      issuer: ISSUER,
      jwks: { keys: [{ kty: 'RSA', kid: 'k1', n: 'AQAB', e: 'AQAB' }] },
    });
  });

  it('usage errors name the option', () => {
    const bad = join(tmp.dir, 'not-a-jwks.json');
    writeFileSync(bad, '{"keys": []}');
    for (const [issuer, jwks, text] of [
      [undefined, 'http://127.0.0.1/jwks', '--cis2-jwks needs --cis2-issuer'],
      ['not a url', undefined, '--cis2-issuer: expected an http(s) URL'],
      [ISSUER, join(tmp.dir, 'missing.json'), '--cis2-jwks: cannot read'],
      [ISSUER, bad, 'is not a JWKS'],
    ] as const) {
      expect(() => cis2OptionsFrom(issuer, jwks)).toThrow(StandInUsageError);
      expect(() => cis2OptionsFrom(issuer, jwks)).toThrow(text);
    }
  });
});

describe('APIM stand-in token exchange and its CIS2 issuer', () => {
  async function exchange(cis2: StandInCis2Options | undefined, subjectToken: string) {
    const app = await newApimApp({ asid: '999000000002', accessMode: 'user-restricted' });
    const standIn = await buildApimStandIn({ port: 9000, apps: [app.standInApp], ...(cis2 ? { cis2 } : {}) });
    try {
      const res = await standIn.app.inject({
        method: 'POST',
        url: '/oauth2/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
          subject_token: subjectToken,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: clientAssertion({ apiKey: app.apiKey, tokenUrl: standIn.tokenUrl, key: app.key }),
        }).toString(),
      });
      return { status: res.statusCode, body: res.json() };
    } finally {
      await standIn.close();
    }
  }

  async function idToken(iss = ISSUER) {
    const key = await newSigningKey('cis2-k1');
    const token = await new SignJWT({ sub: '555000000002', id_assurance_level: 3, authentication_assurance_level: 2 })
      .setProtectedHeader({ alg: 'RS256', kid: 'cis2-k1', typ: 'JWT' })
      .setIssuer(iss)
      .setAudience('ers-bridge-demo')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateKey);
    return { token, key };
  }

  it('without a CIS2 issuer: 400 invalid_request, in the APIM error shape, naming --cis2-issuer', async () => {
    const { status, body } = await exchange(undefined, (await idToken()).token);
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toBe(TOKEN_ERRORS.cis2NotConfigured);
    expect(body.error_description).toMatch(/^this APIM stand-in has no CIS2 issuer configured.*--cis2-issuer/);
    expect(typeof body.message_id).toBe('string');
  });

  it('with an issuer known by discovery: its jwks_uri gives the keys, and the exchange succeeds', async () => {
    const { token, key } = await idToken();
    const fetched: string[] = [];
    vi.stubGlobal('fetch', async (url: string) => {
      fetched.push(String(url));
      const body = String(url).endsWith('/.well-known/openid-configuration')
        ? { issuer: ISSUER, jwks_uri: `${ISSUER}/connect/jwk_uri` }
        : { keys: [key.publicJwk] };
      return new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
    });
    const { status, body } = await exchange(
      { issuer: ISSUER, discoveryUri: `${ISSUER}/.well-known/openid-configuration` },
      token,
    );
    expect(status, JSON.stringify(body)).toBe(200);
    expect(fetched).toEqual([`${ISSUER}/.well-known/openid-configuration`, `${ISSUER}/connect/jwk_uri`]);
  });

  it('a discovery document for another issuer is not trusted for keys (APIM: 500 unknown_error)', async () => {
    const { token, key } = await idToken();
    vi.stubGlobal('fetch', async (url: string) => {
      const body = String(url).endsWith('/.well-known/openid-configuration')
        ? { issuer: 'http://127.0.0.1:9999/other', jwks_uri: 'http://127.0.0.1:9999/jwks' }
        : { keys: [key.publicJwk] };
      return new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
    });
    const { status, body } = await exchange(
      { issuer: ISSUER, discoveryUri: `${ISSUER}/.well-known/openid-configuration` },
      token,
    );
    expect(status).toBe(500);
    expect(body.error).toBe('unknown_error');
  });
});
