/**
 * Two real ers-bridge processes (`ers-bridge serve`) sharing sessions on Redis (127.0.0.1:6379, a key prefix of this
 * file's own, deleted afterwards), in front of the APIM stand-in and the CIS2 stand-in running in the test process:
 * a session made on one replica works and ends on the other; concurrent renewals on both replicas spend the
 * single-use refresh token exactly once; and what Redis holds is sealed, under hashed keys, with an idle TTL.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type BuiltApimStandIn, buildApimStandIn } from '../../src/apim-standin/index.js';
import { Keyring } from '../../src/sessions/crypto.js';
import { newApimApp } from '../helpers/apim-app.js';
import { type Cis2StandIn, startCis2 } from '../helpers/cis2.js';
import { expectLegacyOutcome } from '../helpers/harness.js';
import {
  A005_PATH,
  a001At,
  a001Body,
  type BridgeProcess,
  callBridge,
  connectTestRedisOrFail,
  deleteKeysUnder,
  expectStatus,
  keysUnder,
  SESSION_PATH,
  sleep,
  spawnBridge,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { rulesText } from '../helpers/rules.js';

const APP_ASID = '999000000001';
const USER_ASID = '999000000010';
const CLINICIAN = '555000000101';
// Long, unusual names: a short one could turn up in base64 ciphertext by chance.
const GIVEN_NAME = 'Philippa';
const FAMILY_NAME = 'Quartermaine';
const IDLE_TIMEOUT_S = 600;
const ACCESS_TOKEN_TTL_S = 33; // ers-bridge renews 30 s before expiry: renewal is due 3 s after issue
const PER_REPLICA = 15;

const CLAIMS = {
  sub: CLINICIAN,
  given_name: GIVEN_NAME,
  family_name: FAMILY_NAME,
  id_assurance_level: 3,
  authentication_assurance_level: 3,
};

let admin: Redis;
let prefix: string;
let standIn: BuiltApimStandIn | undefined;
let cis2: Cis2StandIn | undefined;
let dir: string | undefined;
let sessionKey1: string;
let replicas: BridgeProcess[] = [];
let p1: BridgeProcess;
let p2: BridgeProcess;
/** Every access and refresh token the stand-in issued (its token endpoint's answers, captured). */
const issuedTokens: Array<{ grant: string; access_token?: string; refresh_token?: string }> = [];
/** Every raw session key and CIS2 ID token this file created. */
const sessionKeys: string[] = [];
const idTokens: string[] = [];
/** The user session whose token the concurrency test renewed. */
let renewedKey: string | undefined;

function dumpOnFailure(): void {
  onTestFailed(() => {
    for (const p of replicas) console.error(`--- output of ers-bridge ${p.name} (${p.url}) ---\n${p.output()}`);
  });
}

function grants(grantType: string): URLSearchParams[] {
  return standIn!.tokenRequests
    .map((r) => new URLSearchParams(r.body.toString('utf8')))
    .filter((f) => f.get('grant_type') === grantType);
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

function sha256url(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

beforeAll(async () => {
  admin = await connectTestRedisOrFail();
  prefix = uniqueKeyPrefix();
  cis2 = await startCis2({
    [CLINICIAN]: {
      given_name: GIVEN_NAME,
      family_name: FAMILY_NAME,
      id_assurance_level: 3,
      authentication_assurance_level: 3,
    },
  });
  const [app, userApp] = await Promise.all([
    newApimApp({ asid: APP_ASID }),
    newApimApp({ asid: USER_ASID, accessMode: 'user-restricted', envPrefix: 'USER' }),
  ]);
  standIn = await buildApimStandIn({
    apps: [app.standInApp, userApp.standInApp],
    cis2: { issuer: cis2.issuer, jwks: cis2.jwks as never },
    users: {
      [CLINICIAN]: {
        roles: [{ odsCode: 'R69', orgName: 'PROVIDER TRUST', businessFunctions: ['SERVICE_PROVIDER_CLINICIAN'] }],
      },
    },
    accessTokenTtlSeconds: ACCESS_TOKEN_TTL_S,
  });
  // Keep what the token endpoint answers, so the test knows every token that exists and can look for it in Redis.
  standIn.app.addHook('onSend', async (req, _reply, payload) => {
    if (req.url.split('?', 1)[0] === '/oauth2/token') {
      const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : typeof payload === 'string' ? payload : '';
      try {
        const body = JSON.parse(text) as { access_token?: string; refresh_token?: string };
        const form = new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
        if (body.access_token) issuedTokens.push({ grant: form.get('grant_type') ?? '?', ...body });
      } catch {
        // not JSON: an error answer
      }
    }
    return payload;
  });
  await standIn.listen();

  dir = mkdtempSync(join(tmpdir(), 'ers-bridge-replicas-'));
  const rulesFile = join(dir, 'replicas.yaml');
  writeFileSync(
    rulesFile,
    rulesText({
      file: 'replicas.yaml',
      environment: 'test-replicas',
      apim: { baseUrl: standIn.baseUrl, tokenUrl: standIn.tokenUrl },
      cis2: {
        issuer: cis2.issuer,
        clientId: cis2.clientId,
        clientAuth: { method: 'client_secret_post', secret: 'env:CIS2_SECRET' },
        redirectUri: 'http://127.0.0.1:1/login/callback',
        organisationNames: { R69: 'PROVIDER TRUST' },
      },
      sessions: {
        store: 'redis',
        redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
        encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
        idleTimeoutSeconds: IDLE_TIMEOUT_S,
        absoluteTimeoutSeconds: 3600,
      },
      asids: {
        [APP_ASID]: { apim: app.apim },
        [USER_ASID]: { accessMode: 'user-restricted', apim: userApp.apim },
      },
    }),
  );
  sessionKey1 = randomBytes(32).toString('base64');
  const env = { SESSION_KEY_1: sessionKey1, ...app.env, ...userApp.env, CIS2_SECRET: cis2.clientSecret };
  const started = await Promise.allSettled([
    spawnBridge('replica-1', rulesFile, env),
    spawnBridge('replica-2', rulesFile, env),
  ]);
  replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  [p1, p2] = replicas as [BridgeProcess, BridgeProcess];
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop()));
  await standIn?.close();
  await cis2?.close();
  if (admin) {
    await deleteKeysUnder(admin, prefix);
    admin.disconnect();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('two ers-bridge replicas sharing Redis', () => {
  it('a session made on replica 1 gets its role, data and deletion across both replicas', async () => {
    dumpOnFailure();
    const a001 = expectStatus(await a001At(p1.url, APP_ASID), 201, 'A001 on replica 1');
    const session = a001.json();
    const key = session.id as string;
    sessionKeys.push(key);
    expect(key).toMatch(/^pro-api-session:/);

    const a002 = expectStatus(
      await callBridge(
        p2.url,
        'PUT',
        `${SESSION_PATH}/${key}`,
        { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
        JSON.stringify({ ...session, permission: session.user.permissions[0] }),
      ),
      200,
      'A002 on replica 2',
    );
    expect(a002.json().permission).toMatchObject({
      businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
      orgIdentifier: 'R69',
    });

    const headers = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
    const a005 = expectStatus(await callBridge(p2.url, 'GET', A005_PATH, headers), 200, 'A005 on replica 2');
    expect(a005.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });

    const a003 = expectStatus(
      await callBridge(p1.url, 'DELETE', `${SESSION_PATH}/${key}`, headers),
      204,
      'A003 on replica 1',
    );
    expect(a003.body.length).toBe(0);
    expect(await admin.exists(`${prefix}session:${sha256url(key)}`)).toBe(0);

    for (const p of [p2, p1]) {
      const after = await callBridge(p.url, 'GET', A005_PATH, headers);
      const issue = expectLegacyOutcome(after, 403, 'SESSION_UNKNOWN');
      expect(issue.details.coding).toContainEqual({ system: 'urn:ers-bridge:error', code: 'SESSION_UNKNOWN' });
    }
  });

  it('concurrent renewals on both replicas send exactly one refresh to APIM, never a refresh token twice', async () => {
    dumpOnFailure();
    const idToken = await cis2!.mintIdToken(CLAIMS);
    idTokens.push(idToken);
    const a001 = expectStatus(
      await callBridge(
        p1.url,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
        a001Body(idToken),
      ),
      201,
      'A001 (CIS2 ID token) on replica 1',
    );
    const signedIn = Date.now(); // the access token was issued before this: renewal is due by signedIn + 3 s
    const key = a001.json().id as string;
    sessionKeys.push(key);
    renewedKey = key;
    expect(a001.json().user).toMatchObject({ identifier: CLINICIAN, firstName: GIVEN_NAME, lastName: FAMILY_NAME });
    expect(grants(TOKEN_EXCHANGE)).toHaveLength(1);
    // The exchanged token lives 33 s; the renewed one gets APIM's usual 599 s, so that however slow the machine,
    // the burst below can only ever need one renewal.
    (standIn!.state as { accessTokenTtlSeconds: number }).accessTokenTtlSeconds = 599;

    expectStatus(
      await callBridge(
        p2.url,
        'PUT',
        `${SESSION_PATH}/${key}`,
        { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
        JSON.stringify({
          token: 't',
          permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
        }),
      ),
      200,
      'A002 on replica 2',
    );
    const headers = { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key };
    expectStatus(await callBridge(p2.url, 'GET', A005_PATH, headers), 200, 'A005 with a fresh token');
    expect(grants('refresh_token')).toHaveLength(0);

    // Let the token enter the 30 s renewal margin (real time: the replicas run on the real clock).
    await sleep(Math.max(0, signedIn + 3_500 - Date.now()));
    const burst = [p1, p2].flatMap((p) =>
      Array.from({ length: PER_REPLICA }, () => callBridge(p.url, 'GET', A005_PATH, headers)),
    );
    const results = await Promise.all(burst);
    const statuses = results.map((r) => r.status);
    const refused = results.find((r) => r.status !== 200);
    expect(statuses, refused ? refused.body.toString('utf8') : '').toEqual(Array(2 * PER_REPLICA).fill(200));

    const refreshes = grants('refresh_token');
    expect(refreshes).toHaveLength(1);
    const exchanged = issuedTokens.find((t) => t.grant === TOKEN_EXCHANGE)!;
    expect(refreshes[0]!.get('refresh_token')).toBe(exchanged.refresh_token);
    const sent = grants('refresh_token').map((f) => f.get('refresh_token'));
    expect(new Set(sent).size).toBe(sent.length);

    // Both replicas now use a renewed token, not the one from the token exchange.
    for (const p of [p1, p2]) {
      expectStatus(await callBridge(p.url, 'GET', A005_PATH, headers), 200, `A005 on ${p.name} after renewal`);
      expect(standIn!.received.at(-1)!.headers['authorization']).not.toBe(`Bearer ${exchanged.access_token}`);
    }
    const again = grants('refresh_token').map((f) => f.get('refresh_token'));
    expect(new Set(again).size).toBe(again.length);
  });

  it('Redis holds sealed records under hashed keys: no token, ID token, session key or name; TTL ≤ idle timeout', async () => {
    dumpOnFailure();
    // One more live session of each kind, so there is always something to look at.
    const idToken = await cis2!.mintIdToken(CLAIMS);
    idTokens.push(idToken);
    const user = expectStatus(
      await callBridge(
        p2.url,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
        a001Body(idToken),
      ),
      201,
      'A001 (CIS2 ID token) on replica 2',
    );
    const app = expectStatus(
      await callBridge(
        p1.url,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
        a001Body('legacy-ticket'),
      ),
      201,
      'A001 on replica 1',
    );
    const live = [user.json().id as string, app.json().id as string];
    sessionKeys.push(...live);

    const keys = await keysUnder(admin, prefix);
    const sessionRecords = keys.filter((k) => k.startsWith(`${prefix}session:`));
    for (const k of live) expect(sessionRecords).toContain(`${prefix}session:${sha256url(k)}`);

    const secrets = [
      ...issuedTokens.flatMap((t) => [t.access_token, t.refresh_token]).filter((t): t is string => !!t),
      ...idTokens,
      ...sessionKeys,
      ...sessionKeys.map((k) => k.replace(/^pro-api-session:/, '')),
      GIVEN_NAME,
      FAMILY_NAME,
      'pro-api-session:',
      sessionKey1,
    ];
    expect(issuedTokens.filter((t) => t.refresh_token).length).toBeGreaterThanOrEqual(3);
    for (const k of keys) {
      for (const s of secrets) expect(k, `Redis key name ${k}`).not.toContain(s);
      if ((await admin.type(k)) !== 'string') continue;
      const value = await admin.get(k);
      if (value === null) continue; // a lock that expired meanwhile
      for (const s of secrets) expect(value.includes(s), `value of ${k} contains a secret`).toBe(false);
    }

    const keyring = new Keyring({ k1: sessionKey1 }, 'k1');
    for (const k of sessionRecords) {
      const value = await admin.get(k);
      if (value === null) continue;
      const record = JSON.parse(value);
      expect(Object.keys(record).sort()).toEqual(['ct', 'iv', 'kid', 'tag', 'v']);
      expect(record).toMatchObject({ v: 1, kid: 'k1' });
      const pttl = await admin.pttl(k);
      expect(pttl, `PTTL of ${k}`).toBeGreaterThan(0);
      expect(pttl, `PTTL of ${k}`).toBeLessThanOrEqual(IDLE_TIMEOUT_S * 1000);
      // And it is the session, sealed for exactly this key name.
      const opened = JSON.parse(keyring.open(record, k));
      expect(opened).toHaveProperty('asid');
    }

    // The renewed session from the previous test holds the newest refresh token, sealed.
    if (renewedKey) {
      const id = `${prefix}session:${sha256url(renewedKey)}`;
      const renewedRecord = await admin.get(id);
      expect(renewedRecord, 'the renewed session is still in Redis').not.toBeNull();
      const opened = JSON.parse(keyring.open(JSON.parse(renewedRecord!), id));
      const lastRefresh = issuedTokens.filter((t) => t.grant === 'refresh_token').at(-1);
      expect(opened.apim.refreshToken).toBe(lastRefresh?.refresh_token);
    }
  });
});
