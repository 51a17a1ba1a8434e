import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApimStandIn, startApimStandIn, TOKEN_ERRORS } from '../../src/apim-standin/index.js';
import { newApimApp, newSigningKey, type SigningKey } from '../helpers/apim-app.js';
import { clientAssertion, type Overrides, postToken, tokenForm } from './helpers.js';

const API_KEY = 'standin-api-key-1';
let standIn: ApimStandIn;
let key: SigningKey;
let otherKey: SigningKey;

beforeAll(async () => {
  const [app, other] = await Promise.all([newApimApp({ apiKey: API_KEY, kid: 'test-1' }), newSigningKey('other-1')]);
  key = app.key;
  otherKey = other;
  standIn = await startApimStandIn({
    apps: [
      app.standInApp,
      {
        apiKey: 'user-restricted-key',
        asid: '999000000002',
        jwks: { keys: [key.publicJwk] },
        accessMode: 'user-restricted',
        apiSecret: 'secret',
      },
      { apiKey: 'no-keys-app', asid: '999000000003', jwks: { keys: [] }, accessMode: 'application-restricted' },
    ],
  });
});

afterAll(async () => {
  await standIn?.close();
});

const opts = () => ({ apiKey: API_KEY, tokenUrl: standIn.tokenUrl, key });

/** Posts a client-credentials request with the given header/claim/form overrides. */
async function attempt(headers: Overrides = {}, claims: Overrides = {}, form: Overrides = {}) {
  return postToken(standIn.tokenUrl, tokenForm(clientAssertion(opts(), headers, claims), form));
}

async function expectError(
  res: Awaited<ReturnType<typeof postToken>>,
  status: number,
  error: string,
  description: string,
) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description', 'message_id']);
  expect(body.error).toBe(error);
  expect(body.error_description).toBe(description);
  expect(body.message_id).toMatch(/^rrt-/);
}

describe('token endpoint: success', () => {
  it('issues an opaque Bearer token with expires_in and issued_at as strings ("599")', async () => {
    const before = Date.now();
    const res = await attempt();
    expect(res.status).toBe(200);
    const body = res.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'issued_at', 'token_type']);
    expect(body.expires_in).toBe('599');
    expect(body.token_type).toBe('Bearer');
    expect(body.access_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(typeof body.issued_at).toBe('string');
    expect(Number(body.issued_at)).toBeGreaterThanOrEqual(before);
    expect(Number(body.issued_at)).toBeLessThanOrEqual(Date.now());
  });

  it('accepts an assertion signed by jose itself (alg RS512, kid, typ JWT)', async () => {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS512', kid: key.kid, typ: 'JWT' })
      .setIssuer(API_KEY)
      .setSubject(API_KEY)
      .setAudience(standIn.tokenUrl)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateKey);
    const res = await postToken(standIn.tokenUrl, tokenForm(assertion));
    expect(res.status).toBe(200);
  });

  it('accepts typ in any case, exp up to now+310 s and a client_id equal to the API key', async () => {
    const exp = Math.floor(Date.now() / 1000) + 305;
    const res = await attempt({ typ: 'jwt' }, { exp }, { client_id: API_KEY });
    expect(res.status).toBe(200);
  });

  it('honours _access_token_expiry_ms only to shorten the lifetime', async () => {
    const shorter = await attempt({}, {}, { _access_token_expiry_ms: '60000' });
    expect((shorter.json() as { expires_in: string }).expires_in).toBe('60');
    const longer = await attempt({}, {}, { _access_token_expiry_ms: '9000000' });
    expect((longer.json() as { expires_in: string }).expires_in).toBe('599');
  });

  it('records every token request, accepted or not', async () => {
    const before = standIn.tokenRequests.length;
    await attempt();
    await postToken(standIn.tokenUrl, 'grant_type=client_credentials', 'application/json');
    expect(standIn.tokenRequests.length).toBe(before + 2);
    const last = standIn.tokenRequests.at(-1)!;
    expect(last.method).toBe('POST');
    expect(last.url).toBe('/oauth2/token');
    expect(last.body.toString()).toBe('grant_type=client_credentials');
    expect(standIn.received.some((r) => r.url.startsWith('/oauth2/token'))).toBe(false);
  });
});

describe('token endpoint: request rules', () => {
  it.each([
    ['application/x-www-form-urlencoded;charset=UTF-8'],
    ['application/x-www-form-urlencoded; charset=utf-8'],
    ['application/json'],
    ['text/plain'],
  ])('415 for Content-Type %s', async (contentType) => {
    const res = await postToken(standIn.tokenUrl, tokenForm(clientAssertion(opts())), contentType);
    await expectError(res, 415, 'invalid_request', TOKEN_ERRORS.contentType);
  });

  it('400 when grant_type is missing', async () => {
    await expectError(
      await attempt({}, {}, { grant_type: undefined }),
      400,
      'invalid_request',
      'grant_type is missing',
    );
  });

  it('400 unsupported_grant_type when grant_type is invalid', async () => {
    await expectError(
      await attempt({}, {}, { grant_type: 'password' }),
      400,
      'unsupported_grant_type',
      'grant_type is invalid',
    );
  });

  it('400 for a wrong or missing client_assertion_type', async () => {
    const description =
      "Missing or invalid client_assertion_type - must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'";
    await expectError(await attempt({}, {}, { client_assertion_type: 'invalid' }), 400, 'invalid_request', description);
    await expectError(await attempt({}, {}, { client_assertion_type: undefined }), 400, 'invalid_request', description);
  });

  it('400 for a missing client_assertion', async () => {
    await expectError(
      await attempt({}, {}, { client_assertion: undefined }),
      400,
      'invalid_request',
      'Missing client_assertion',
    );
  });

  it('400 for a malformed client_assertion', async () => {
    await expectError(
      await attempt({}, {}, { client_assertion: 'invalid' }),
      400,
      'invalid_request',
      'Malformed JWT in client_assertion',
    );
  });

  it('401 when client_id differs from the API key', async () => {
    await expectError(
      await attempt({}, {}, { client_id: 'someone-else' }),
      401,
      'invalid_client',
      TOKEN_ERRORS.clientIdMismatch,
    );
  });
});

describe('token endpoint: client assertion rules', () => {
  it.each(['RS256', 'PS512', 'HS512', 'none'])('400 for alg %s', async (alg) => {
    await expectError(
      await attempt({ alg }),
      400,
      'invalid_request',
      "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
    );
  });

  it('400 for a missing kid', async () => {
    await expectError(
      await attempt({ kid: undefined }),
      400,
      'invalid_request',
      "Missing 'kid' header in client_assertion JWT",
    );
  });

  it('401 for a kid that matches no registered key', async () => {
    await expectError(
      await attempt({ kid: 'invalid' }),
      401,
      'invalid_request',
      "Invalid 'kid' header in client_assertion JWT - no matching public key",
    );
  });

  it.each([['invalid'], [null], [undefined]])('400 for typ %s', async (typ) => {
    await expectError(
      await attempt({ typ }),
      400,
      'invalid_request',
      "Invalid 'typ' header in client_assertion JWT - must be 'JWT'",
    );
  });

  it('400 when iss differs from sub, or either is missing', async () => {
    const description = "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT";
    await expectError(await attempt({}, { sub: 'invalid' }), 400, 'invalid_request', description);
    await expectError(await attempt({}, { iss: 'invalid' }), 400, 'invalid_request', description);
    await expectError(await attempt({}, { sub: undefined }), 400, 'invalid_request', description);
    await expectError(await attempt({}, { iss: undefined }), 400, 'invalid_request', description);
  });

  it('401 for an unknown API key in iss/sub', async () => {
    await expectError(
      await attempt({}, { iss: 'invalid', sub: 'invalid' }),
      401,
      'invalid_request',
      "Invalid 'iss'/'sub' claims in client_assertion JWT",
    );
  });

  it('401 for a wrong or missing aud', async () => {
    const description = "Missing or invalid 'aud' claim in client_assertion JWT";
    await expectError(await attempt({}, { aud: 'invalid' }), 401, 'invalid_request', description);
    await expectError(await attempt({}, { aud: undefined }), 401, 'invalid_request', description);
    // The audience is the token URL actually served, not APIM's public one.
    await expectError(
      await attempt({}, { aud: 'https://int.api.service.nhs.uk/oauth2/token' }),
      401,
      'invalid_request',
      description,
    );
  });

  it('400 for a missing jti', async () => {
    await expectError(
      await attempt({}, { jti: undefined }),
      400,
      'invalid_request',
      "Missing 'jti' claim in client_assertion JWT",
    );
  });

  it('400 for a jti that is not a string', async () => {
    await expectError(
      await attempt({}, { jti: 1234567890 }),
      400,
      'invalid_request',
      "Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID",
    );
  });

  it('400 for a reused jti', async () => {
    const jti = randomUUID();
    expect((await attempt({}, { jti })).status).toBe(200);
    await expectError(
      await attempt({}, { jti }),
      400,
      'invalid_request',
      "Non-unique 'jti' claim in client_assertion JWT",
    );
  });

  it('400 for a missing exp', async () => {
    await expectError(
      await attempt({}, { exp: undefined }),
      400,
      'invalid_request',
      "Missing 'exp' claim in client_assertion JWT",
    );
  });

  it.each([[String(Math.floor(Date.now() / 1000) + 300)], [Math.floor(Date.now() / 1000) + 200.5]])(
    '400 for a non-integer exp %s',
    async (exp) => {
      await expectError(
        await attempt({}, { exp }),
        400,
        'invalid_request',
        "Invalid 'exp' claim in client_assertion JWT - must be an integer",
      );
    },
  );

  it('400 for an expired exp', async () => {
    await expectError(
      await attempt({}, { exp: Math.floor(Date.now() / 1000) - 20 }),
      400,
      'invalid_request',
      "Invalid 'exp' claim in client_assertion JWT - JWT has expired",
    );
  });

  it('400 for an exp more than 5 minutes (plus 10 s) ahead', async () => {
    await expectError(
      await attempt({}, { exp: Math.floor(Date.now() / 1000) + 360 }),
      400,
      'invalid_request',
      "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future",
    );
  });

  it('401 public_key error for a bad signature', async () => {
    const assertion = clientAssertion(opts(), {}, {}, otherKey.privateKey);
    await expectError(
      await postToken(standIn.tokenUrl, tokenForm(assertion)),
      401,
      'public_key error',
      'JWT signature verification failed',
    );
  });

  it('403 public_key error when the app has no public key registered', async () => {
    const assertion = clientAssertion({ apiKey: 'no-keys-app', tokenUrl: standIn.tokenUrl, key });
    await expectError(
      await postToken(standIn.tokenUrl, tokenForm(assertion)),
      403,
      'public_key error',
      TOKEN_ERRORS.noPublicKey,
    );
  });

  it('401 unauthorized_client for client_credentials on a user-restricted app', async () => {
    const assertion = clientAssertion({ apiKey: 'user-restricted-key', tokenUrl: standIn.tokenUrl, key });
    await expectError(
      await postToken(standIn.tokenUrl, tokenForm(assertion)),
      401,
      'unauthorized_client',
      'you have tried to request authorization but your application is not configured to use this authorization grant type',
    );
  });

  it('accepts a key registered later with addApp', async () => {
    standIn.addApp((await newApimApp({ apiKey: 'later-app', key: otherKey })).standInApp);
    const assertion = clientAssertion({ apiKey: 'later-app', tokenUrl: standIn.tokenUrl, key: otherKey });
    expect((await postToken(standIn.tokenUrl, tokenForm(assertion))).status).toBe(200);
  });
});
