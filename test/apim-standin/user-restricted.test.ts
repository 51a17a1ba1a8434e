/**
 * User-restricted access on the APIM stand-in: CIS2 token exchange, refresh, A030 and the user-restricted header
 * rules of the e-RS gateway. ID tokens are signed here (jose SignJWT, or by hand for malformed ones) and their JWKS is
 * served by a loopback node:http server, as CIS2 would serve it.
 */
import { randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltApimStandIn,
  buildApimStandIn,
  GATEWAY_ERRORS,
  type StandInUser,
  TOKEN_ERRORS,
} from '../../src/apim-standin/index.js';
import { newApimApp, newSigningKey, type SigningKey } from '../helpers/apim-app.js';
import {
  clientAssertion,
  firstIssue,
  type HttpResult,
  http,
  issueUserToken,
  type Overrides,
  postToken,
} from './helpers.js';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'fixtures', 'ers-api', 'examples');
const USER_APP = 'ur-app';
const USER_APP_SECRET = 'ur-app-secret';
const APP_APP = 'ar-app';
/** As CIS2 INT writes it in tokens (with :443); the stand-in is configured without the port. */
const ISSUER_IN_TOKENS = 'https://cis2.example.test:443/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare';
const ISSUER_CONFIGURED = 'https://cis2.example.test/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare';
const CIS2_CLIENT_ID = '969567331415.apps.national';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
const USER = '555000000001';
const USER_ROLES: StandInUser = {
  roles: [
    { odsCode: 'R69', orgName: 'ROYAL EXAMPLE TRUST', businessFunctions: ['REFERRING_CLINICIAN', 'REFERRING_ADMIN'] },
    {
      odsCode: 'RCD',
      orgName: 'EXAMPLE PROVIDER NHS FT',
      businessFunctions: ['SERVICE_PROVIDER_CLINICIAN', 'SERVICE_PROVIDER_CLINICIAN_ADMIN'],
    },
  ],
};

interface Cis2Key {
  kid: string;
  key: SigningKey;
}

let standIn: BuiltApimStandIn;
let clientKey: SigningKey;
let cis2Key: Cis2Key;
let impostorKey: Cis2Key;
let rotatedKey: Cis2Key;
let jwksServer: Server;
let jwksUri: string;
let jwksHits = 0;
const servedKeys: object[] = [];
let clockOffsetMs = 0;

async function makeCis2Key(kid: string): Promise<Cis2Key> {
  return { kid, key: await newSigningKey(kid) };
}

beforeAll(async () => {
  [clientKey, cis2Key, impostorKey, rotatedKey] = await Promise.all([
    newSigningKey('client-1'),
    makeCis2Key('cis2-1'),
    makeCis2Key('cis2-1'),
    makeCis2Key('cis2-2'),
  ]);
  servedKeys.push(cis2Key.key.publicJwk);
  jwksServer = createServer((_req, res) => {
    jwksHits += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: servedKeys }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;

  standIn = await buildApimStandIn({
    apps: [
      {
        apiKey: USER_APP,
        asid: '999000000020',
        jwks: { keys: [clientKey.publicJwk] },
        accessMode: 'user-restricted',
        apiSecret: USER_APP_SECRET,
      },
      (await newApimApp({ apiKey: APP_APP, key: clientKey })).standInApp,
    ],
    cis2: { issuer: ISSUER_CONFIGURED, jwksUri },
    users: { [USER]: USER_ROLES },
    clock: () => Date.now() + clockOffsetMs,
  });
  await standIn.listen();
});

afterAll(async () => {
  await standIn?.close();
  await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()));
});

// ─── helpers ────────────────────────────────────────────────────────────────────────────────────────────────────

const nowSeconds = () => Math.floor((Date.now() + clockOffsetMs) / 1000);

function idTokenClaims(overrides: Overrides = {}): Record<string, unknown> {
  const now = nowSeconds();
  const claims: Record<string, unknown> = {
    sub: USER,
    iss: ISSUER_IN_TOKENS,
    aud: CIS2_CLIENT_ID,
    azp: CIS2_CLIENT_ID,
    iat: now,
    auth_time: now,
    exp: now + 300,
    acr: 'AAL3_ANY',
    amr: ['N3_SMARTCARD'],
    id_assurance_level: 3,
    authentication_assurance_level: 3,
    ...overrides,
  };
  for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete claims[k];
  return claims;
}

/** An ID token signed by hand, exactly as given (RS256 unless the header says RS512). */
function rawIdToken(headerOverrides: Overrides = {}, claimOverrides: Overrides = {}, key: Cis2Key = cis2Key): string {
  const header: Record<string, unknown> = { alg: 'RS256', kid: key.kid, ...headerOverrides };
  for (const [k, v] of Object.entries(headerOverrides)) if (v === undefined) delete header[k];
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(idTokenClaims(claimOverrides))).toString('base64url');
  const hash = header.alg === 'RS512' ? 'sha512' : 'sha256';
  return `${h}.${p}.${sign(hash, Buffer.from(`${h}.${p}`), key.key.privateKey).toString('base64url')}`;
}

/** An ID token as a real OP signs it: jose SignJWT, `{alg: RS256, kid}` and no `typ` (like oidc-provider). */
async function joseIdToken(claimOverrides: Overrides = {}, key: Cis2Key = cis2Key): Promise<string> {
  return new SignJWT(idTokenClaims(claimOverrides))
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(key.key.privateKey);
}

function exchangeForm(subjectToken: string | undefined, overrides: Overrides = {}, apiKey = USER_APP): string {
  const fields: Record<string, unknown> = {
    grant_type: TOKEN_EXCHANGE,
    subject_token_type: ID_TOKEN_TYPE,
    subject_token: subjectToken,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: clientAssertion({ apiKey, tokenUrl: standIn.tokenUrl, key: clientKey }),
    ...overrides,
  };
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, String(v));
  return form.toString();
}

function exchange(subjectToken: string | undefined, overrides: Overrides = {}, apiKey = USER_APP) {
  return postToken(standIn.tokenUrl, exchangeForm(subjectToken, overrides, apiKey));
}

function refresh(refreshToken: string | undefined, overrides: Overrides = {}) {
  const fields: Record<string, unknown> = {
    grant_type: 'refresh_token',
    client_id: USER_APP,
    client_secret: USER_APP_SECRET,
    refresh_token: refreshToken,
    ...overrides,
  };
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, String(v));
  return postToken(standIn.tokenUrl, form.toString());
}

async function userToken(claimOverrides: Overrides = {}): Promise<Record<string, string>> {
  const res = await exchange(await joseIdToken(claimOverrides));
  expect(res.status, res.text).toBe(200);
  return res.json() as Record<string, string>;
}

function expectError(res: HttpResult, status: number, error: string, description: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description', 'message_id']);
  expect(body.error).toBe(error);
  expect(body.error_description).toBe(description);
}

const url = (path: string) => `${standIn.baseUrl}${path}`;
const bearer = (token: string, headers: Record<string, string> = {}) => ({
  authorization: `Bearer ${token}`,
  ...headers,
});
const example = (rel: string) => readFileSync(join(EXAMPLES, rel), 'utf8').replaceAll('_baseUrl_', standIn.baseUrl);

// ─── token exchange ─────────────────────────────────────────────────────────────────────────────────────────────

describe('token exchange: success', () => {
  it('issues access and refresh tokens, every value a string', async () => {
    const res = await exchange(await joseIdToken());
    expect(res.status, res.text).toBe(200);
    const body = res.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual([
      'access_token',
      'expires_in',
      'issued_token_type',
      'refresh_count',
      'refresh_token',
      'refresh_token_expires_in',
      'token_type',
    ]);
    for (const value of Object.values(body)) expect(typeof value).toBe('string');
    expect(body).toMatchObject({
      expires_in: '599',
      token_type: 'Bearer',
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      refresh_token_expires_in: '43200',
      refresh_count: '0',
    });
    expect(body.access_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(body.refresh_token).not.toBe(body.access_token);
    const record = standIn.state.tokens.lookup(String(body.access_token));
    expect(record).toMatchObject({
      apiKey: USER_APP,
      accessMode: 'user-restricted',
      user: { sub: USER, idAssuranceLevel: 3, authenticationAssuranceLevel: 3 },
      attributes: { 'id_token-subject': USER },
    });
    expect(standIn.state.tokens.lookupRefreshToken(String(body.refresh_token))).toMatchObject({
      apiKey: USER_APP,
      user: { sub: USER, idAssuranceLevel: 3, authenticationAssuranceLevel: 3 },
      count: 0,
      used: false,
    });
  });

  it.each<[string, Overrides, Overrides]>([
    ['typ JWT present', { typ: 'JWT' }, {}],
    ['RS512', { alg: 'RS512' }, {}],
    ['the issuer without :443', {}, { iss: ISSUER_CONFIGURED }],
    ['AAL 2 as a string and IAL as a string', {}, { authentication_assurance_level: '2', id_assurance_level: '3' }],
    ['aud as an array', {}, { aud: [CIS2_CLIENT_ID] }],
  ])('accepts %s', async (_name, header, claims) => {
    const res = await exchange(rawIdToken(header, claims));
    expect(res.status, res.text).toBe(200);
  });

  it('applies the client assertion rules of client credentials (a reused jti is refused)', async () => {
    const assertion = clientAssertion({ apiKey: USER_APP, tokenUrl: standIn.tokenUrl, key: clientKey });
    expect((await exchange(await joseIdToken(), { client_assertion: assertion })).status).toBe(200);
    expectError(
      await exchange(await joseIdToken(), { client_assertion: assertion }),
      400,
      'invalid_request',
      "Non-unique 'jti' claim in client_assertion JWT",
    );
    expectError(
      await exchange(await joseIdToken(), { client_assertion: undefined }),
      400,
      'invalid_request',
      'Missing client_assertion',
    );
  });
});

describe('token exchange: subject token rules', () => {
  it.each([[undefined], ['urn:ietf:params:oauth:token-type:access_token'], ['invalid']])(
    '400 for subject_token_type %s',
    async (subjectTokenType) => {
      expectError(
        await exchange(await joseIdToken(), { subject_token_type: subjectTokenType }),
        400,
        'invalid_request',
        "missing or invalid subject_token_type - must be 'urn:ietf:params:oauth:token-type:id_token'",
      );
    },
  );

  it('400 for a missing subject_token', async () => {
    expectError(await exchange(undefined), 400, 'invalid_request', 'Missing subject_token');
  });

  it.each([['invalid'], ['a.b.c'], ['eyJhbGciOiJSUzI1NiJ9.e30']])('400 for a malformed subject_token %s', async (t) => {
    expectError(await exchange(t), 400, 'invalid_request', 'Malformed JWT in subject_token');
  });

  it('400 for a missing kid', async () => {
    expectError(
      await exchange(rawIdToken({ kid: undefined })),
      400,
      'invalid_request',
      "Missing 'kid' header in subject_token JWT",
    );
  });

  it.each([['invalid'], ['at+jwt'], [null]])('400 for typ %s (an absent typ is accepted)', async (typ) => {
    expectError(
      await exchange(rawIdToken({ typ })),
      400,
      'invalid_request',
      "Invalid 'typ' header in subject_token JWT - must be 'JWT'",
    );
  });

  it('400 for a missing alg', async () => {
    expectError(
      await exchange(rawIdToken({ alg: undefined })),
      400,
      'invalid_request',
      "Missing 'alg' header in subject_token JWT",
    );
  });

  it('400 for a missing or non-integer exp', async () => {
    expectError(
      await exchange(rawIdToken({}, { exp: undefined })),
      400,
      'invalid_request',
      "Missing 'exp' claim in subject_token JWT",
    );
    for (const exp of [String(nowSeconds() + 300), nowSeconds() + 300.5]) {
      expectError(
        await exchange(rawIdToken({}, { exp })),
        400,
        'invalid_request',
        "Invalid 'exp' claim in subject_token JWT - must be an integer",
      );
    }
  });

  it('400 for an expired subject token', async () => {
    expectError(
      await exchange(rawIdToken({}, { exp: nowSeconds() - 5 })),
      400,
      'invalid_request',
      "Invalid 'exp' claim in subject_token JWT - JWT has expired",
    );
  });

  it('400 for a missing or foreign iss', async () => {
    expectError(
      await exchange(rawIdToken({}, { iss: undefined })),
      400,
      'invalid_request',
      "Missing 'iss' claim in subject_token JWT",
    );
    for (const iss of [
      'https://identity.ptl.api.platform.nhs.uk/realms/Cis2-mock-int',
      `${ISSUER_CONFIGURED}/`,
      'http://cis2.example.test/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare',
    ]) {
      expectError(
        await exchange(rawIdToken({}, { iss })),
        400,
        'invalid_request',
        "Missing or non-matching 'iss' claim in subject_token JWT",
      );
    }
  });

  it('401 for a missing aud', async () => {
    expectError(
      await exchange(rawIdToken({}, { aud: undefined })),
      401,
      'invalid_request',
      "Missing 'aud' claim in subject_token JWT",
    );
  });

  it('401 for a bad signature (right kid, other key) or an unaccepted alg', async () => {
    for (const token of [
      rawIdToken({}, {}, impostorKey),
      rawIdToken({ alg: 'PS256' }),
      `${rawIdToken().split('.').slice(0, 2).join('.')}.${Buffer.from('x').toString('base64url')}`,
    ]) {
      expectError(await exchange(token), 401, 'invalid_request', TOKEN_ERRORS.subjectSignature);
    }
  });

  it('refetches the JWKS once for an unknown kid, then 401', async () => {
    await exchange(await joseIdToken()); // the JWKS is cached from here on
    const before = jwksHits;
    expect((await exchange(await joseIdToken())).status).toBe(200);
    expect(jwksHits).toBe(before);
    expectError(
      await exchange(rawIdToken({ kid: 'unknown-kid' })),
      401,
      'invalid_request',
      "Invalid 'kid' header in subject_token JWT - no matching public key",
    );
    expect(jwksHits).toBe(before + 1);
  });

  it('picks up a rotated CIS2 key by refetching the JWKS', async () => {
    servedKeys.push(rotatedKey.key.publicJwk);
    const before = jwksHits;
    const res = await exchange(await joseIdToken({}, rotatedKey));
    expect(res.status, res.text).toBe(200);
    expect(jwksHits).toBe(before + 1);
  });

  it.each<[string, Overrides]>([
    ['AAL1', { authentication_assurance_level: 1 }],
    ['AAL "1"', { authentication_assurance_level: '1' }],
    ['no AAL', { authentication_assurance_level: undefined }],
  ])('401 unauthorized_client for %s', async (_name, claims) => {
    expectError(
      await exchange(await joseIdToken(claims)),
      401,
      'unauthorized_client',
      'you have tried to request authorization but your application is not configured to use this authorization grant type',
    );
  });

  it('401 unauthorized_client for an application-restricted app', async () => {
    expectError(
      await exchange(await joseIdToken(), {}, APP_APP),
      401,
      'unauthorized_client',
      'you have tried to request authorization but your application is not configured to use this authorization grant type',
    );
  });

  it('500 unknown_error when the CIS2 JWKS cannot be fetched', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const own = await buildApimStandIn({
      apps: [{ apiKey: USER_APP, asid: '1', jwks: { keys: [clientKey.publicJwk] }, accessMode: 'user-restricted' }],
      cis2: { issuer: ISSUER_CONFIGURED, jwksUri: `http://127.0.0.1:${port}/jwks` },
    });
    await own.listen();
    try {
      const form = new URLSearchParams({
        grant_type: TOKEN_EXCHANGE,
        subject_token_type: ID_TOKEN_TYPE,
        subject_token: await joseIdToken(),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion({ apiKey: USER_APP, tokenUrl: own.tokenUrl, key: clientKey }),
      });
      expectError(await postToken(own.tokenUrl, form.toString()), 500, 'unknown_error', TOKEN_ERRORS.jwksUnavailable);
    } finally {
      await own.close();
    }
  });

  it('verifies against configured keys without fetching (cis2.jwks)', async () => {
    const own = await buildApimStandIn({
      apps: [{ apiKey: USER_APP, asid: '1', jwks: { keys: [clientKey.publicJwk] }, accessMode: 'user-restricted' }],
      cis2: { issuer: ISSUER_IN_TOKENS, jwks: { keys: [cis2Key.key.publicJwk] } },
    });
    await own.listen();
    try {
      const form = (subjectToken: string) =>
        new URLSearchParams({
          grant_type: TOKEN_EXCHANGE,
          subject_token_type: ID_TOKEN_TYPE,
          subject_token: subjectToken,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: clientAssertion({ apiKey: USER_APP, tokenUrl: own.tokenUrl, key: clientKey }),
        }).toString();
      expect((await postToken(own.tokenUrl, form(await joseIdToken()))).status).toBe(200);
      expectError(
        await postToken(own.tokenUrl, form(await joseIdToken({}, rotatedKey))),
        401,
        'invalid_request',
        "Invalid 'kid' header in subject_token JWT - no matching public key",
      );
      expect(own.state.cis2?.fetchCount).toBe(0);
    } finally {
      await own.close();
    }
  });
});

// ─── refresh ────────────────────────────────────────────────────────────────────────────────────────────────────

describe('refresh', () => {
  it('issues new tokens for the same user, counts refreshes, keeps the old access token until it expires', async () => {
    const first = await userToken();
    const res = await refresh(first.refresh_token);
    expect(res.status, res.text).toBe(200);
    const second = res.json() as Record<string, unknown>;
    expect(Object.keys(second).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_count',
      'refresh_token',
      'refresh_token_expires_in',
      'token_type',
    ]);
    for (const value of Object.values(second)) expect(typeof value).toBe('string');
    expect(second).toMatchObject({ expires_in: '599', token_type: 'Bearer', refresh_count: '1' });
    expect(Number(second.refresh_token_expires_in)).toBeGreaterThan(43_190);
    expect(Number(second.refresh_token_expires_in)).toBeLessThanOrEqual(43_200);
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(standIn.state.tokens.lookup(String(second.access_token))?.user?.sub).toBe(USER);

    const third = (await refresh(String(second.refresh_token))).json() as Record<string, string>;
    expect(third.refresh_count).toBe('2');

    for (const token of [first.access_token!, String(second.access_token), third.access_token!]) {
      expect((await http(url('/R4/PractitionerRole'), { headers: bearer(token) })).status).toBe(200);
    }
    clockOffsetMs = 600_000;
    try {
      const expired = await http(url('/R4/PractitionerRole'), { headers: bearer(first.access_token!) });
      expect(expired.status).toBe(401);
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('401 invalid_grant when a refresh token is used twice', async () => {
    const first = await userToken();
    expect((await refresh(first.refresh_token)).status).toBe(200);
    expectError(await refresh(first.refresh_token), 401, 'invalid_grant', 'refresh_token is invalid');
    expectError(await refresh('not-a-refresh-token'), 401, 'invalid_grant', 'refresh_token is invalid');
  });

  it('counts the window from the token exchange, then 401 invalid_grant once it is over', async () => {
    const first = await userToken();
    try {
      clockOffsetMs = 100_000;
      const second = (await refresh(first.refresh_token)).json() as Record<string, string>;
      // Seconds left in the window that opened at the token exchange, not a fresh 43200.
      expect(['43099', '43100']).toContain(second.refresh_token_expires_in);
      clockOffsetMs = 43_200_000;
      expectError(
        await refresh(second.refresh_token),
        401,
        'invalid_grant',
        'refresh token refresh period has expired',
      );
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('honours refreshWindowSeconds', async () => {
    let offset = 0;
    const own = await buildApimStandIn({
      apps: [
        {
          apiKey: USER_APP,
          asid: '1',
          jwks: { keys: [clientKey.publicJwk] },
          accessMode: 'user-restricted',
          apiSecret: 's',
        },
      ],
      cis2: { issuer: ISSUER_CONFIGURED, jwks: { keys: [cis2Key.key.publicJwk] } },
      refreshWindowSeconds: 1,
      clock: () => Date.now() + offset,
    });
    await own.listen();
    try {
      const exchanged = await postToken(
        own.tokenUrl,
        new URLSearchParams({
          grant_type: TOKEN_EXCHANGE,
          subject_token_type: ID_TOKEN_TYPE,
          subject_token: await joseIdToken(),
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: clientAssertion({ apiKey: USER_APP, tokenUrl: own.tokenUrl, key: clientKey }),
        }).toString(),
      );
      const body = exchanged.json() as Record<string, string>;
      expect(body.refresh_token_expires_in).toBe('1');
      offset = 1100;
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: USER_APP,
        client_secret: 's',
        refresh_token: body.refresh_token!,
      });
      expectError(
        await postToken(own.tokenUrl, form.toString()),
        401,
        'invalid_grant',
        'refresh token refresh period has expired',
      );
    } finally {
      await own.close();
    }
  });

  it('authenticates the client with client_id and client_secret (client_secret_post)', async () => {
    const first = await userToken();
    expectError(
      await refresh(first.refresh_token, { client_secret: 'wrong' }),
      401,
      'invalid_client',
      'client_id or client_secret is invalid',
    );
    expectError(
      await refresh(first.refresh_token, { client_id: 'unknown-app' }),
      401,
      'invalid_client',
      'client_id or client_secret is invalid',
    );
    expectError(
      await refresh(first.refresh_token, { client_secret: undefined }),
      401,
      'invalid_request',
      'client_secret is missing',
    );
    expectError(
      await refresh(first.refresh_token, { client_id: undefined }),
      401,
      'invalid_request',
      'client_id is missing',
    );
    // An app without an API secret cannot refresh; nor can another app redeem this app's refresh token.
    standIn.addApp((await newApimApp({ apiKey: 'other-app', key: clientKey, apiSecret: 'other-secret' })).standInApp);
    expectError(
      await refresh(first.refresh_token, { client_id: APP_APP, client_secret: '' }),
      401,
      'invalid_client',
      'client_id or client_secret is invalid',
    );
    expectError(
      await refresh(first.refresh_token, { client_id: 'other-app', client_secret: 'other-secret' }),
      401,
      'invalid_grant',
      'refresh_token is invalid',
    );
    expectError(await refresh(undefined), 400, 'invalid_request', 'refresh_token is missing');
    // None of the failures spent the refresh token.
    expect((await refresh(first.refresh_token)).status).toBe(200);
  });
});

// ─── A030 ───────────────────────────────────────────────────────────────────────────────────────────────────────

describe('A030 retrieve business functions', () => {
  it("returns one PractitionerRole per organisation of the token's user", async () => {
    const { access_token } = await userToken();
    const res = await http(url('/R4/PractitionerRole'), { headers: bearer(access_token!) });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/fhir+json');
    const bundle = res.json() as any;
    expect(bundle).toMatchObject({
      resourceType: 'Bundle',
      type: 'searchset',
      total: 2,
      link: [{ relation: 'self', url: `${standIn.baseUrl}/R4/PractitionerRole` }],
    });
    expect(bundle.entry).toEqual([
      {
        fullUrl: `${standIn.baseUrl}/R4/PractitionerRole/PractitionerRole-R69-${USER}`,
        resource: {
          id: `PractitionerRole-R69-${USER}`,
          meta: { lastUpdated: expect.any(String) },
          resourceType: 'PractitionerRole',
          practitioner: { identifier: { system: 'https://fhir.nhs.uk/Id/sds-user-id', value: USER } },
          organization: {
            identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'R69' },
            display: 'ROYAL EXAMPLE TRUST',
          },
          code: [
            {
              coding: [
                { system: 'https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1', code: 'REFERRING_CLINICIAN' },
              ],
            },
            { coding: [{ system: 'https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1', code: 'REFERRING_ADMIN' }] },
          ],
        },
        search: { mode: 'match' },
      },
      {
        fullUrl: `${standIn.baseUrl}/R4/PractitionerRole/PractitionerRole-RCD-${USER}`,
        resource: {
          id: `PractitionerRole-RCD-${USER}`,
          meta: { lastUpdated: expect.any(String) },
          resourceType: 'PractitionerRole',
          practitioner: { identifier: { system: 'https://fhir.nhs.uk/Id/sds-user-id', value: USER } },
          organization: {
            identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RCD' },
            display: 'EXAMPLE PROVIDER NHS FT',
          },
          code: [
            {
              coding: [
                { system: 'https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1', code: 'SERVICE_PROVIDER_CLINICIAN' },
              ],
            },
            {
              coding: [
                {
                  system: 'https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1',
                  code: 'SERVICE_PROVIDER_CLINICIAN_ADMIN',
                },
              ],
            },
          ],
        },
        search: { mode: 'match' },
      },
    ]);
  });

  it('returns an empty searchset for a user the stand-in does not know, and follows addUser', async () => {
    const stranger = `55500${randomUUID().replace(/\D/g, '').slice(0, 7)}`;
    const { access_token } = await userToken({ sub: stranger });
    const empty = (await http(url('/R4/PractitionerRole'), { headers: bearer(access_token!) })).json() as any;
    expect(empty).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 0 });
    expect(empty.entry).toBeUndefined();
    standIn.addUser(stranger, {
      roles: [{ odsCode: 'R68', orgName: 'R68', businessFunctions: ['REFERRING_CLINICIAN'] }],
    });
    const known = (await http(url('/R4/PractitionerRole'), { headers: bearer(access_token!) })).json() as any;
    expect(known.total).toBe(1);
  });

  it('403 for an application-restricted token', async () => {
    const assertion = clientAssertion({ apiKey: APP_APP, tokenUrl: standIn.tokenUrl, key: clientKey });
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    const appToken = ((await postToken(standIn.tokenUrl, form.toString())).json() as Record<string, string>)
      .access_token!;
    const res = await http(url('/R4/PractitionerRole'), { headers: bearer(appToken) });
    expect(res.status).toBe(403);
    expect(firstIssue(res.json())).toMatchObject({ code: 'forbidden', errorCode: 'ACCESS_DENIED' });
  });
});

// ─── user-restricted header rules ───────────────────────────────────────────────────────────────────────────────

describe('user-restricted header rules', () => {
  let token: string;
  const ods = 'nhsd-end-user-organisation-ods';
  const bf = 'nhsd-ers-business-function';
  const obo = 'nhsd-ers-on-behalf-of-user-id';

  beforeAll(async () => {
    token = (await userToken()).access_token!;
  });

  it('400 MISSING_HEADER when the ODS header is missing or empty', async () => {
    const cases: Array<Record<string, string>> = [
      { [bf]: 'REFERRING_CLINICIAN' },
      { [ods]: ' ', [bf]: 'REFERRING_CLINICIAN' },
    ];
    for (const headers of cases) {
      const res = await http(url('/STU3/ReferralRequest/000000070000'), { headers: bearer(token, headers) });
      expect(res.status).toBe(400);
      expect(firstIssue(res.json())).toEqual({
        code: 'required',
        errorCode: 'MISSING_HEADER',
        system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
        diagnostics: 'Missing or Empty NHSD-End-User-Organisation-ODS header.',
      });
    }
  });

  it('400 MISSING_HEADER when the business function header is missing', async () => {
    const res = await http(url('/STU3/ReferralRequest/000000070000'), { headers: bearer(token, { [ods]: 'R69' }) });
    expect(res.status).toBe(400);
    expect(firstIssue(res.json()).diagnostics).toBe('Missing or Empty NHSD-eRS-Business-Function header.');
  });

  it.each([
    ['R69', 'SERVICE_PROVIDER_CLINICIAN'],
    ['RCD', 'REFERRING_CLINICIAN'],
    ['R68', 'REFERRING_CLINICIAN'],
  ])('403 when the user does not hold (%s, %s)', async (odsCode, businessFunction) => {
    const res = await http(url('/STU3/ReferralRequest/000000070000'), {
      headers: bearer(token, { [ods]: odsCode, [bf]: businessFunction }),
    });
    expect(res.status).toBe(403);
    expect(firstIssue(res.json())).toEqual({
      code: 'forbidden',
      errorCode: 'NO_ACCESS',
      system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
      diagnostics: 'User does not have the required Business Function at the specified Organisation.',
    });
  });

  it.each(['PROVIDER_AUTHORISED_APPLICATION', 'REFERRER_AUTHORISED_APPLICATION', 'AUTHORISED_APPLICATION'])(
    '403 for business function %s, before the IAL and ODS checks',
    async (value) => {
      const lowIal = (await userToken({ id_assurance_level: 2 })).access_token!;
      for (const t of [token, lowIal]) {
        const res = await http(url('/R4/HealthcareService/1'), { headers: bearer(t, { [bf]: value }) });
        expect(res.status).toBe(403);
        expect(firstIssue(res.json())).toMatchObject({
          code: 'forbidden',
          errorCode: 'ACCESS_DENIED',
          diagnostics: GATEWAY_ERRORS.noBusinessFunction,
        });
      }
    },
  );

  it('401 for a token whose ID token had IAL 2, before the ODS check, on STU3 and R4', async () => {
    const lowIal = (await userToken({ id_assurance_level: 2 })).access_token!;
    const stu3 = await http(url('/STU3/ReferralRequest/000000070000'), { headers: bearer(lowIal) });
    expect(stu3.status).toBe(401);
    expect(firstIssue(stu3.json())).toEqual({
      code: 'forbidden',
      errorCode: 'NO_ACCESS',
      system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
      diagnostics:
        "We couldn't verify your identity. Contact your local Registration Authority or IT department for help.",
    });
    const r4 = await http(url('/R4/PractitionerRole'), { headers: bearer(lowIal) });
    expect(r4.status).toBe(401);
    expect(firstIssue(r4.json())).toMatchObject({ code: 'forbidden', errorCode: 'ACCESS_DENIED' });
    // A user-restricted token without a user (not from token exchange) is refused the same way.
    const bare = standIn.state.tokens.issue({
      apiKey: USER_APP,
      accessMode: 'user-restricted',
      grantType: 'test',
      ttlSeconds: 60,
    }).accessToken;
    expect((await http(url('/R4/PractitionerRole'), { headers: bearer(bare) })).status).toBe(401);
    expect(
      (await http(url('/R4/PractitionerRole'), { headers: bearer(issueUserToken(standIn.state, USER_APP, USER)) }))
        .status,
    ).toBe(200);
  });

  it('requires on-behalf-of with SERVICE_PROVIDER_CLINICIAN_ADMIN and refuses it otherwise', async () => {
    const path = url('/STU3/ReferralRequest/000000070000');
    const spca = { [ods]: 'RCD', [bf]: 'SERVICE_PROVIDER_CLINICIAN_ADMIN' };
    const missing = await http(path, { headers: bearer(token, spca) });
    expect(missing.status).toBe(400);
    expect(firstIssue(missing.json())).toMatchObject({
      errorCode: 'MISSING_HEADER',
      diagnostics: 'Missing or Empty NHSD-eRS-On-Behalf-Of-User-ID header.',
    });
    expect((await http(path, { headers: bearer(token, { ...spca, [obo]: '021600556514' }) })).status).toBe(200);
    // Also where the catalogue marks OBO "supply only when SPCA" (A038).
    expect((await http(url('/STU3/Appointment/70000'), { headers: bearer(token, spca) })).status).toBe(400);

    const spc = await http(path, {
      headers: bearer(token, { [ods]: 'RCD', [bf]: 'SERVICE_PROVIDER_CLINICIAN', [obo]: '021600556514' }),
    });
    expect(spc.status).toBe(403);
    expect(firstIssue(spc.json()).diagnostics).toContain('SERVICE_PROVIDER_CLINICIAN_ADMIN');
    const rc = await http(url('/STU3/ReferralRequest/$ers.createReferral'), {
      method: 'POST',
      headers: bearer(token, {
        [ods]: 'R69',
        [bf]: 'REFERRING_CLINICIAN',
        [obo]: '021600556514',
        'content-type': 'application/fhir+json',
      }),
      body: example('stu3/createReferral/requests/MinimalRequest.json'),
    });
    expect(rc.status).toBe(403);
  });

  it('A011 createReferral with an exchanged token and the right headers: 201 with the example response', async () => {
    const res = await http(url('/STU3/ReferralRequest/$ers.createReferral'), {
      method: 'POST',
      headers: bearer(token, { [ods]: 'R69', [bf]: 'REFERRING_CLINICIAN', 'content-type': 'application/fhir+json' }),
      body: example('stu3/createReferral/requests/MinimalRequest.json'),
    });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.etag).toBe('W/"3"');
    expect(res.text).toBe(example('stu3/createReferral/responses/ReferralRequest.json'));
  });
});
