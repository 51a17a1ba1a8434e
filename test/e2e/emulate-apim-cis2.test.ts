/**
 * `ers-bridge emulate-apim` as a full stand-in, in real child processes beside `ers-bridge serve` with the same rules
 * file, and the product's CIS2 stand-in (src/cis2-standin) in this process:
 * - with `--cis2-issuer` the stand-in takes the issuer's keys from its discovery document and accepts the token
 *   exchange of an ID token from the CIS2 stand-in: A001 with it → 201, with the test user's roles (A030);
 * - without it, the A001 answer's diagnostics carry the stand-in's error_description naming --cis2-issuer;
 * - with neither --port, it listens on the port of the rules' token URL (not the base URL's).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cis2StandIn, DEMO_CIS2_USER, startCis2StandIn } from '../../src/cis2-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { freePort } from '../helpers/free-port.js';
import { keepForScan } from '../helpers/harness.js';
import { rulesText } from '../helpers/rules.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const USER_ASID = '999000000020';
const CLIENT_ID = 'ers-bridge-emulate-test';
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';

interface Child {
  process: ChildProcess;
  output: () => string;
  /** Resolves with the first match of `pattern` in the output (stdout and stderr). */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
}

function run(args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env, LOG_LEVEL: 'warn', ERS_BRIDGE_FROM_SOURCE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners: Array<() => void> = [];
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    process: child,
    output: () => output,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} from ${args[0]}:\n${output}`)), 20_000);
        const check = () => {
          const m = pattern.exec(output);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          }
        };
        listeners.push(check);
        child.on('exit', (code) => reject(new Error(`${args[0]} exited with ${code}:\n${output}`)));
        check();
      }),
  };
}

async function stop(child: Child | undefined): Promise<void> {
  // Gone already: exited (exitCode), or killed by a signal before it could handle it (signalCode).
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = new Promise((r) => child.process.once('exit', r));
  child.process.kill('SIGTERM');
  await exited;
  keepForScan(child.output());
}

describe('emulate-apim with CIS2 options, beside ers-bridge serve', () => {
  let dir: string;
  let cis2: Cis2StandIn;
  let env: Record<string, string>;
  const children: Child[] = [];

  /** A rules file for the user-restricted ASID with APIM at `apimPort` (token URL at `tokenPort`, default the same). */
  function rulesFile(name: string, apimPort: number, tokenPort = apimPort): string {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      rulesText({
        file,
        environment: name,
        apim: {
          baseUrl: `http://127.0.0.1:${apimPort}/referrals/FHIR`,
          tokenUrl: `http://127.0.0.1:${tokenPort}/oauth2/token`,
        },
        cis2: {
          issuer: cis2.issuer,
          clientId: CLIENT_ID,
          clientAuth: { method: 'client_secret_post', secret: 'env:CIS2_SECRET' },
          redirectUri: 'http://127.0.0.1:1/login/callback',
        },
        asids: { [USER_ASID]: { accessMode: 'user-restricted' } },
      }),
    );
    return file;
  }

  /** emulate-apim (with `flags`) and serve for one rules file; resolves with ers-bridge's address. */
  async function pair(name: string, flags: string[]): Promise<{ bridge: string; standIn: Child }> {
    const port = await freePort();
    const file = rulesFile(name, port);
    const standIn = run(['emulate-apim', '--rules', file, ...flags], env);
    children.push(standIn);
    await standIn.waitFor(new RegExp(`APIM stand-in on http://127\\.0\\.0\\.1:${port}:`));
    await standIn.waitFor(/CIS2 token exchange: /);
    const serve = run(['serve', '--rules', file, '--port', '0', '--ops-port', '0'], env);
    children.push(serve);
    const [, bridge] = await serve.waitFor(/ers-bridge serving environment \S+ on (http:\/\/127\.0\.0\.1:\d+)/);
    return { bridge: bridge!, standIn };
  }

  async function a001(bridge: string, token: string) {
    const res = await request(`${bridge}/ers-api/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      body: JSON.stringify({ typeInfo: TYPE_INFO, token }),
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }

  async function idToken(): Promise<string> {
    const res = await request(cis2.demoIdTokenUrl);
    expect(res.statusCode).toBe(200);
    return res.body.text();
  }

  let configured: { bridge: string; standIn: Child };
  let unconfigured: { bridge: string; standIn: Child };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ers-bridge-emulate-apim-'));
    const secret = randomBytes(16).toString('hex');
    cis2 = await startCis2StandIn({
      clients: [
        {
          clientId: CLIENT_ID,
          redirectUris: ['http://127.0.0.1:1/login/callback'],
          auth: { method: 'client_secret_post', secret },
        },
      ],
      users: [DEMO_CIS2_USER],
    });
    const app = await newApimApp({ asid: USER_ASID, accessMode: 'user-restricted' });
    env = { ...app.env, CIS2_SECRET: secret };
    [configured, unconfigured] = await Promise.all([
      pair('with-cis2', ['--cis2-issuer', cis2.issuer]),
      pair('without-cis2', []),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(children.map(stop));
    await cis2?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('with --cis2-issuer: A001 with an ID token from the CIS2 stand-in → 201 with the test user and its roles', async () => {
    expect(configured.standIn.output()).toContain(
      `CIS2 token exchange: ID tokens from ${cis2.issuer} (keys from ${cis2.issuer}/.well-known/openid-configuration)`,
    );
    const res = await a001(configured.bridge, await idToken());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.user).toMatchObject({ identifier: DEMO_CIS2_USER.sub, firstName: 'Demo', lastName: 'Clinician' });
    expect(res.body.user.permissions).toEqual([
      { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'D82106', orgName: 'DEMO GP PRACTICE' },
      { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'DEMO NHS TRUST' },
    ]);
  });

  it('without CIS2 options: A001 is refused, its diagnostics naming the setting the stand-in lacks', async () => {
    expect(unconfigured.standIn.output()).toContain(
      `CIS2 token exchange: off; start with --cis2-issuer <url> (the rules' cis2.issuer is ${cis2.issuer})`,
    );
    const res = await a001(unconfigured.bridge, await idToken());
    expect(res.status).toBe(403);
    const issue = res.body.issue[0];
    expect(issue.details.coding.map((c: { code: string }) => c.code)).toContain('TOKEN_EXCHANGE_REFUSED');
    expect(issue.diagnostics).toContain(
      'APIM refused to exchange the CIS2 sign-in for an e-RS token: this APIM stand-in has no CIS2 issuer configured',
    );
    expect(issue.diagnostics).toContain('start it with --cis2-issuer <the CIS2 issuer URL>');
    expect(issue.diagnostics).not.toContain("non-matching 'iss'");
  });

  it('with no --port, it listens on the port of the rules token URL, not of the base URL', async () => {
    const [basePort, tokenPort] = [await freePort(), await freePort()];
    const standIn = run(['emulate-apim', '--rules', rulesFile('ports', basePort, tokenPort)], env);
    children.push(standIn);
    const [, origin] = await standIn.waitFor(/APIM stand-in on (http:\/\/127\.0\.0\.1:\d+):/);
    expect(origin).toBe(`http://127.0.0.1:${tokenPort}`);
    await standIn.waitFor(/CIS2 token exchange: /); // started up: SIGTERM is handled from here on
    await stop(standIn);
  });

  it('--cis2-jwks without --cis2-issuer is a usage error (exit 2)', async () => {
    const child = run(['emulate-apim', '--rules', rulesFile('usage', 9), '--cis2-jwks', cis2.jwksUri], env);
    const code = await new Promise((r) => child.process.once('exit', r));
    expect(code).toBe(2);
    expect(child.output()).toContain('emulate-apim: --cis2-jwks needs --cis2-issuer');
  });
});
