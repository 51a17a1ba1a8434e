/**
 * The CIS2 stand-in (src/cis2-standin), in process through fastify's inject (no socket): the address checks of
 * `/demo/id-token`, discovery, the authorization-code flow with PKCE/state/nonce, client authentication as
 * registered, single-use codes, and the ID tokens' claims.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createLocalJWKSet, type JWK, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltCis2StandIn,
  buildCis2StandIn,
  CIS2_REALM_PATH,
  DEMO_CIS2_USER,
  isLoopbackAddress,
  isLoopbackHostHeader,
} from '../../src/cis2-standin/index.js';
import { newSigningKey, type SigningKey } from '../helpers/apim-app.js';

const REDIRECT = 'http://127.0.0.1:8080/login/callback';
const SECRET = 'post-secret';

describe('isLoopbackAddress (who may GET /demo/id-token)', () => {
  it.each(['127.0.0.1', '127.5.6.7', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1', '::FFFF:127.0.0.9'])(
    '%s is this machine',
    (a) => expect(isLoopbackAddress(a)).toBe(true),
  );
  it.each([
    '10.0.0.5',
    '192.168.1.2',
    '128.0.0.1',
    '::ffff:10.0.0.5',
    '::',
    'fe80::1',
    '2001:db8::1',
    '0.0.0.0',
    '',
    'localhost',
    '127.0.0.1.example',
  ])('%j is not', (a) => expect(isLoopbackAddress(a)).toBe(false));
  it('nothing (a socket already gone) is not', () => expect(isLoopbackAddress(undefined)).toBe(false));
});

describe('isLoopbackHostHeader (no DNS rebinding)', () => {
  it.each(['127.0.0.1:9001', '127.0.0.1', 'localhost:9001', 'LOCALHOST', '[::1]:9001'])('%s', (h) =>
    expect(isLoopbackHostHeader(h)).toBe(true),
  );
  it.each(['rebind.example:9001', 'evil@127.0.0.1', '127.0.0.1.nip.io', '127.0.0.1/x', '', '[::2]:1'])('%j', (h) =>
    expect(isLoopbackHostHeader(h)).toBe(false),
  );
  it('no Host header', () => expect(isLoopbackHostHeader(undefined)).toBe(false));
});

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

describe('the CIS2 stand-in', () => {
  let op: BuiltCis2StandIn;
  let jwtClientKey: SigningKey;
  const path = (p: string) => `${CIS2_REALM_PATH}${p}`;
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const FORM = { 'content-type': 'application/x-www-form-urlencoded', host: '127.0.0.1:9001' };

  beforeAll(async () => {
    jwtClientKey = await newSigningKey('jwt-client-1');
    op = await buildCis2StandIn({
      port: 9001,
      clients: [
        { clientId: 'post-client', redirectUris: [REDIRECT], auth: { method: 'client_secret_post', secret: SECRET } },
        { clientId: 'basic-client', redirectUris: [REDIRECT], auth: { method: 'client_secret_basic', secret: 'b:s+' } },
        {
          clientId: 'jwt-client',
          redirectUris: [REDIRECT],
          auth: { method: 'private_key_jwt', jwks: { keys: [{ ...jwtClientKey.publicJwk, alg: 'RS512' }] } },
        },
      ],
      users: [DEMO_CIS2_USER],
    });
  });
  afterAll(async () => {
    await op.close();
  });

  async function verify(idToken: string, audience = 'post-client') {
    return (await jwtVerify(idToken, createLocalJWKSet(op.jwks as { keys: JWK[] }), { issuer: op.issuer, audience }))
      .payload;
  }

  /** /authorize → the sign-in page → the user's choice: the redirect back, as a URL. */
  async function signIn(
    query: Record<string, string>,
    choice: Record<string, string> = { user: DEMO_CIS2_USER.sub },
  ): Promise<URL> {
    const page = await op.app.inject({ url: `${path('/authorize')}?${new URLSearchParams(query)}` });
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers['content-security-policy']).toContain("form-action 'self' http://127.0.0.1:8080;");
    const interaction = /name="interaction" value="([^"]+)"/.exec(page.body)![1]!;
    const res = await op.app.inject({
      method: 'POST',
      url: path('/sign-in'),
      headers: FORM,
      payload: form({ interaction, ...choice }),
    });
    expect(res.statusCode).toBe(303);
    return new URL(String(res.headers['location']));
  }

  function authorizeQuery(challenge: string, clientId = 'post-client'): Record<string, string> {
    return {
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'openid profile',
      state: 'the-state',
      nonce: 'the-nonce',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      acr_values: 'AAL2_OR_AAL3_ANY',
      max_age: '300',
    };
  }

  const token = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    op.app.inject({
      method: 'POST',
      url: path('/access_token'),
      headers: { ...FORM, ...headers },
      payload: form(fields),
    });

  it('publishes discovery: its issuer, endpoints under it, PKCE S256, the client authentication methods', async () => {
    const res = await op.app.inject({ url: path('/.well-known/openid-configuration') });
    const doc = res.json();
    expect(doc.issuer).toBe(`http://127.0.0.1:9001${CIS2_REALM_PATH}`);
    expect(doc.jwks_uri).toBe(`${doc.issuer}/connect/jwk_uri`);
    expect(doc.token_endpoint).toBe(`${doc.issuer}/access_token`);
    expect(doc.code_challenge_methods_supported).toEqual(['S256']);
    expect(doc.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_post', 'client_secret_basic', 'private_key_jwt']),
    );
    const jwks = (await op.app.inject({ url: path('/connect/jwk_uri') })).json();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwks.keys[0].d).toBeUndefined();
  });

  it('code flow: state and iss come back, the code gives an ID token with nonce, assurance levels and names', async () => {
    const { verifier, challenge } = pkce();
    const back = await signIn(authorizeQuery(challenge));
    expect(back.origin + back.pathname).toBe(REDIRECT);
    expect(back.searchParams.get('state')).toBe('the-state');
    expect(back.searchParams.get('iss')).toBe(op.issuer);
    const code = back.searchParams.get('code')!;
    const res = await token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: 'post-client',
      client_secret: SECRET,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body.token_type).toBe('Bearer');
    const claims = await verify(body.id_token);
    expect(claims).toMatchObject({
      sub: '555000000002',
      aud: 'post-client',
      azp: 'post-client',
      nonce: 'the-nonce',
      acr: 'AAL2_OR_AAL3_ANY',
      amr: ['TOTP'],
      id_assurance_level: 3,
      authentication_assurance_level: 2,
      given_name: 'Demo',
      family_name: 'Clinician',
    });
    expect(typeof claims.auth_time).toBe('number');
    expect(claims.exp! - claims.iat!).toBe(300);
    const header = JSON.parse(Buffer.from(body.id_token.split('.')[0], 'base64url').toString());
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });

    const userinfo = await op.app.inject({
      url: path('/userinfo'),
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(userinfo.json()).toMatchObject({
      sub: '555000000002',
      family_name: 'Clinician',
      nhsid_user_orgs: [
        { org_code: 'D82106', org_name: 'DEMO GP PRACTICE' },
        { org_code: 'R69', org_name: 'DEMO NHS TRUST' },
      ],
    });

    // Single use: the same code again is refused.
    const again = await token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: 'post-client',
      client_secret: SECRET,
    });
    expect(again.statusCode).toBe(400);
    expect(again.json().error).toBe('invalid_grant');
  });

  it('a wrong PKCE verifier or redirect_uri is invalid_grant, and spends the code', async () => {
    const { verifier, challenge } = pkce();
    const code = (await signIn(authorizeQuery(challenge))).searchParams.get('code')!;
    const base = { grant_type: 'authorization_code', code, client_id: 'post-client', client_secret: SECRET };
    const wrong = await token({ ...base, redirect_uri: REDIRECT, code_verifier: pkce().verifier });
    expect(wrong.json()).toMatchObject({ error: 'invalid_grant' });
    const right = await token({ ...base, redirect_uri: REDIRECT, code_verifier: verifier });
    expect(right.json()).toMatchObject({ error: 'invalid_grant' });

    const other = pkce();
    const code2 = (await signIn(authorizeQuery(other.challenge))).searchParams.get('code')!;
    const res = await token({
      ...base,
      code: code2,
      redirect_uri: 'http://127.0.0.1:8080/elsewhere',
      code_verifier: other.verifier,
    });
    expect(res.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('client authentication is the registered method only, with the right secret', async () => {
    const { verifier, challenge } = pkce();
    const code = (await signIn(authorizeQuery(challenge))).searchParams.get('code')!;
    const base = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    const basicHeader = { authorization: `Basic ${Buffer.from(`post-client:${SECRET}`).toString('base64')}` };
    for (const [fields, headers] of [
      [{ ...base, client_id: 'post-client', client_secret: 'wrong' }, {}],
      [base, basicHeader],
      [base, {}],
      [{ ...base, client_id: 'nobody', client_secret: SECRET }, {}],
      [base, { authorization: `Basic ${Buffer.from('basic-client:%zz').toString('base64')}` }],
      [base, { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` }],
    ] as const) {
      const res = await token(fields, headers);
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_client');
    }
  });

  it('client_secret_basic: form-encoded id and secret in the Basic header', async () => {
    const { verifier, challenge } = pkce();
    const code = (await signIn(authorizeQuery(challenge, 'basic-client'))).searchParams.get('code')!;
    const encoded = `basic-client:${encodeURIComponent('b:s+')}`;
    const res = await token(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      { authorization: `Basic ${Buffer.from(encoded).toString('base64')}` },
    );
    expect(res.statusCode, res.body).toBe(200);
    expect((await verify(res.json().id_token, 'basic-client')).sub).toBe('555000000002');
  });

  it('private_key_jwt: a signed assertion to the issuer or token endpoint, each jti once', async () => {
    const assertion = (jti: string) =>
      new SignJWT({ jti })
        .setProtectedHeader({ alg: 'RS512', kid: jwtClientKey.kid })
        .setIssuer('jwt-client')
        .setSubject('jwt-client')
        .setAudience(op.issuer)
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(jwtClientKey.privateKey);
    const jti = randomUUID();
    const exchange = async (clientAssertion: string) => {
      const { verifier, challenge } = pkce();
      const code = (await signIn(authorizeQuery(challenge, 'jwt-client'))).searchParams.get('code')!;
      return token({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
      });
    };
    const first = await exchange(await assertion(jti));
    expect(first.statusCode, first.body).toBe(200);
    const replayed = await exchange(await assertion(jti));
    expect(replayed.statusCode).toBe(401);
    expect(replayed.json().error).toBe('invalid_client');
  });

  it('an unknown client or unregistered redirect_uri gets an error page, never a redirect', async () => {
    const { challenge } = pkce();
    for (const q of [
      { ...authorizeQuery(challenge), client_id: 'nobody' },
      { ...authorizeQuery(challenge), redirect_uri: 'https://evil.example/cb' },
      { ...authorizeQuery(challenge), redirect_uri: `${REDIRECT}?x=1` },
    ]) {
      const res = await op.app.inject({ url: `${path('/authorize')}?${new URLSearchParams(q)}` });
      expect(res.statusCode).toBe(400);
      expect(res.headers['location']).toBeUndefined();
      expect(res.body).not.toContain('evil.example/cb"');
    }
  });

  it('PKCE is required (S256): without it the browser goes back with invalid_request', async () => {
    const { challenge } = pkce();
    for (const q of [
      { ...authorizeQuery(challenge), code_challenge: '' },
      { ...authorizeQuery(challenge), code_challenge_method: 'plain' },
    ]) {
      const res = await op.app.inject({ url: `${path('/authorize')}?${new URLSearchParams(q)}` });
      expect(res.statusCode).toBe(303);
      const back = new URL(String(res.headers['location']));
      expect(back.searchParams.get('error')).toBe('invalid_request');
      expect(back.searchParams.get('state')).toBe('the-state');
    }
  });

  it('cancel sends access_denied back; a used sign-in form is not accepted again', async () => {
    const page = await op.app.inject({
      url: `${path('/authorize')}?${new URLSearchParams(authorizeQuery(pkce().challenge))}`,
    });
    const interaction = /name="interaction" value="([^"]+)"/.exec(page.body)![1]!;
    const post = () =>
      op.app.inject({
        method: 'POST',
        url: path('/sign-in'),
        headers: FORM,
        payload: form({ interaction, cancel: '1' }),
      });
    const back = new URL(String((await post()).headers['location']));
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
    expect((await post()).statusCode).toBe(400);
  });

  describe('GET /demo/id-token', () => {
    it('from a loopback peer with a loopback Host: a fresh ID token for the test user, as plain text', async () => {
      const res = await op.app.inject({
        url: '/demo/id-token',
        remoteAddress: '127.0.0.1',
        headers: { host: '127.0.0.1:9001' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-store');
      const claims = await verify(res.body);
      expect(claims).toMatchObject({ sub: '555000000002', id_assurance_level: 3, authentication_assurance_level: 2 });
      expect(claims.nonce).toBeUndefined();
    });

    it.each(['10.0.0.5', '192.168.1.20', '::ffff:172.17.0.2', '2001:db8::7'])('refused from %s (403)', async (peer) => {
      const res = await op.app.inject({
        url: '/demo/id-token',
        remoteAddress: peer,
        headers: { host: '127.0.0.1:9001' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('only on this machine');
      expect(res.body).not.toMatch(/eyJ/);
    });

    it('refused for a Host that is not loopback (a rebound DNS name), even from loopback', async () => {
      const res = await op.app.inject({
        url: '/demo/id-token',
        remoteAddress: '127.0.0.1',
        headers: { host: 'rebind.example:9001' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.body).not.toMatch(/eyJ/);
    });
  });
});
