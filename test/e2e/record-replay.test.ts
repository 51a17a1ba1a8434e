/**
 * Record and replay: legacy traffic recorded (redacted) by a running ers-bridge, then `ers-bridge replay` sends it
 * again through the translation and compares the answers with the recorded ones; `compare report` summarises.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import {
  APP_ASID,
  FIXTURES,
  fixtureBytes,
  type Harness,
  harnessRules,
  legacyCall,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { rulesText } from '../helpers/rules.js';

const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-replay-'));
const recording = join(dir, 'traffic.jsonl');

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => err.push(a.join(' ')));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err.push(String(s));
    return true;
  });
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('') };
  } finally {
    process.env = saved;
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

describe('record and replay', () => {
  let h: Harness;
  let rulesFile: string;
  let sessionKey: string;

  beforeAll(async () => {
    h = await startHarness({ rules: { record: { file: recording, maxBytes: 10 * 1024 * 1024, maxFiles: 2 } } });
    // Recording is set up when the runtime is built; the harness built it with the record block above.
    sessionKey = await openSession(h);
    const hdr = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: sessionKey };
    expect((await legacyCall(h, 'GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY', hdr)).status).toBe(200);
    expect((await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', hdr)).status).toBe(200);
    expect(
      (
        await legacyCall(
          h,
          'POST',
          '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist',
          { ...hdr, 'Content-Type': 'application/fhir+json' },
          fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'),
        )
      ).status,
    ).toBe(200);
    expect(
      (await legacyCall(h, 'POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI', hdr)).status,
    ).toBe(200);
    await h.runtime.recorder!.flush();
    rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, rulesText(harnessRules(h.standIn)));
  }, 30_000);
  afterAll(async () => {
    await h?.close();
  });

  const env = () => h.env;

  it('records one redacted line per data call: no NHS number, session key or token', () => {
    const text = readFileSync(recording, 'utf8');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.aCode)).toEqual(['A004', 'A005', 'A008', 'A007']);
    expect(lines[3].answer.body).toMatchObject({ kind: 'binary', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const fixture = readFileSync(new URL('stu3/retrieveReferralRequest/responses/Unbooked.json', FIXTURES), 'utf8');
    const nhsNumbers = [...fixture.matchAll(/"value":\s*"(\d{10})"/g)].map((m) => m[1]!);
    expect(nhsNumbers.length).toBeGreaterThan(0);
    for (const n of nhsNumbers) expect(text).not.toContain(n);
    expect(text).not.toContain(sessionKey);
    expect(text).not.toMatch(/authorization|Bearer /i);
    for (const r of h.standIn.received) {
      const token = String(r.headers['authorization'] ?? '').replace(/^Bearer /, '');
      if (token) expect(text).not.toContain(token);
    }
  });

  it('replays the recording through the translation: every answer matches', async () => {
    const out = join(dir, 'compare.jsonl');
    const r = await cli(['replay', recording, '--rules', rulesFile, '--out', out, '--fail-on-difference'], env());
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain('replayed 4 of 4 recorded calls');
    for (const code of ['A004', 'A005', 'A007', 'A008']) expect(r.out).toContain(code);
    expect(r.err).toMatch(/\[#+\] 4\/4 100%/); // the progress bar reached the end
    const report = await cli(['compare', 'report', out], {});
    expect(report.code).toBe(0);
    expect(report.out).toContain('A005');
    expect(report.out).toMatch(/0(\.0)?%/);
  });

  it('reports a difference when the target answers differently from the recording', async () => {
    const tampered = join(dir, 'tampered.jsonl');
    const lines = readFileSync(recording, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    lines[1].answer.body.json.status = 'cancelled'; // A005 recorded as cancelled; APIM says otherwise
    writeFileSync(tampered, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const out = join(dir, 'compare-tampered.jsonl');
    const r = await cli(['replay', tampered, '--rules', rulesFile, '--out', out, '--fail-on-difference'], env());
    expect(r.code).toBe(1);
    const report = await cli(['compare', 'report', out], {});
    expect(report.out).toContain('status');
    expect(report.out).toMatch(/A005[^\n]*\b1\b/);
  });

  it('a missing recording or rules file is a usage error (exit 2)', async () => {
    expect((await cli(['replay', join(dir, 'nope.jsonl'), '--rules', rulesFile], env())).code).toBe(2);
    expect((await cli(['replay', recording], {})).code).toBe(2);
  });

  it('compare report of a missing comparison file fails (exit 1), one line naming it', async () => {
    const missing = join(dir, 'nope.jsonl');
    const r = await cli(['compare', 'report', missing], {});
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`ers-bridge: compare report: ${missing}: cannot read it (ENOENT)`);
    expect(r.out).toBe('');
  });
});
