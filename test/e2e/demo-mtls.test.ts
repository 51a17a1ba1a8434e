/**
 * `ers-bridge demo --mtls` as the README shows it, in a real child process: it makes a demo PKI in the folder given,
 * serves the legacy port over TLS requiring client certificates, and the three curl commands it prints behave as
 * promised — the demo system's certificate gets 201, no certificate fails the handshake, another system's 403.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepForScan } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const ASID = '999000000001';
const A001_BODY = JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: 'demo' });

describe('ers-bridge demo --mtls', () => {
  let child: ChildProcess;
  let base: string;
  let output = '';
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-demo-mtls-'));
  const pki = (f: string) => readFileSync(join(dir, f), 'utf8');
  const agents: Agent[] = [];
  const client = (cert?: string, key?: string) => {
    const agent = new Agent({
      connect: { ca: pki('ca.pem'), ...(cert && key ? { cert: pki(cert), key: pki(key) } : {}) },
    });
    agents.push(agent);
    return agent;
  };
  const a001 = (dispatcher: Agent) =>
    request(`${base}/ers-api/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
      body: A001_BODY,
      dispatcher,
    });

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [
        BIN,
        'demo',
        '--mtls',
        '--pki-dir',
        dir,
        '--port',
        '0',
        '--ops-port',
        '0',
        '--apim-port',
        '0',
        '--cis2-port',
        '0',
      ],
      { env: { ...process.env, LOG_LEVEL: 'warn', ERS_BRIDGE_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => {
      output += d.toString();
    });
    child.stderr!.on('data', (d) => {
      output += d.toString();
    });
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo --mtls did not start:\n${output}`)), 25_000);
      child.stdout!.on('data', () => {
        const m = /ers-bridge:\s+(https:\/\/127\.0\.0\.1:\d+)\/ers-api/.exec(output);
        if (m && output.includes('other-key.pem')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`demo --mtls exited with ${code}:\n${output}`)));
    });
  }, 40_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    keepForScan(output);
    await Promise.all(agents.map((a) => a.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the PKI the README names, private keys readable by the owner only', () => {
    for (const f of ['ca.pem', 'client.pem', 'client-key.pem', 'other.pem', 'other-key.pem', 'server.pem']) {
      expect(pki(f), f).toMatch(/-----BEGIN /);
    }
    expect(statSync(join(dir, 'client-key.pem')).mode & 0o077).toBe(0);
    expect(output).toContain(`--cert ${join(dir, 'client.pem')} --key ${join(dir, 'client-key.pem')}`);
  });

  it("with the demo system's certificate: A001 → 201, and the session works", async () => {
    const agent = client('client.pem', 'client-key.pem');
    const res = await a001(agent);
    expect(res.statusCode).toBe(201);
    const session = (await res.body.json()) as { id: string; user: { permissions: unknown[] } };
    const a002 = await request(`${base}/ers-api/v1/ProfessionalSession/${session.id}`, {
      method: 'PUT',
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...session, permission: session.user.permissions[0] }),
      dispatcher: agent,
    });
    expect(a002.statusCode).toBe(200);
    await a002.body.dump();
  });

  it('with no certificate, the TLS handshake fails', async () => {
    await expect(a001(client())).rejects.toThrow();
  });

  it("with another system's certificate: 403 CALLER_CERTIFICATE_REFUSED naming what was seen and what is expected", async () => {
    const res = await a001(client('other.pem', 'other-key.pem'));
    expect(res.statusCode).toBe(403);
    const body = (await res.body.json()) as {
      issue: Array<{ diagnostics: string; details: { coding: Array<{ code: string }> } }>;
    };
    expect(body.issue[0]!.details.coding.map((c) => c.code)).toContain('CALLER_CERTIFICATE_REFUSED');
    expect(body.issue[0]!.diagnostics).toContain('CN=other-system.example.nhs.uk');
    expect(body.issue[0]!.diagnostics).toContain('demo-pas.example.nhs.uk');
  });
});
