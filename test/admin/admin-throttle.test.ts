/**
 * Guessing the admin token is throttled per client address: more than 10 wrong tokens in a minute and the address
 * gets 429 with Retry-After — even with the right token — until the minute is over; other addresses are not
 * affected; a request without credentials is no guess; the refusal is logged once per window, without the token.
 * On real sockets, from several loopback source addresses (127.0.0.0/8 is all loopback on Linux), on a manual clock.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import { captureLogs, type Harness, harnessRules, startHarness } from '../helpers/harness.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { rulesFor } from '../helpers/rules.js';
import { basic, startAdminApp } from './fixture.js';

const agents = new Map<string, Agent>();
/** An undici dispatcher whose connections come from `address`. */
function from(address: string): Agent {
  let a = agents.get(address);
  if (!a) {
    a = new Agent({ localAddress: address });
    agents.set(address, a);
  }
  return a;
}
afterAll(async () => {
  for (const a of agents.values()) await a.close();
});

async function status(
  url: string,
  address: string,
  authorization?: string,
): Promise<{ status: number; retryAfter?: string; text: string }> {
  const res = await request(url, {
    dispatcher: from(address),
    headers: authorization === undefined ? {} : { authorization },
  });
  const text = await res.body.text();
  const retryAfter = res.headers['retry-after'];
  return { status: res.statusCode, ...(typeof retryAfter === 'string' ? { retryAfter } : {}), text };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('failed admin attempts, per client address', () => {
  it('more than 10 wrong tokens in a minute → 429 with Retry-After, even with the right token, until it ends', async () => {
    const token = randomBytes(32).toString('hex');
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const { logs, destination } = captureLogs();
    const app = await startAdminApp({ token, clock, logger: createLogger({ level: 'info', destination }) });
    cleanups.push(() => app.close());
    const url = `${app.url}/admin/compare`;
    const guesser = '127.0.0.21';
    const bystander = '127.0.0.22';

    for (let i = 0; i < 10; i++) {
      const wrong = i % 2 ? `Bearer ${randomBytes(32).toString('hex')}` : basic('admin', `guess-${i}`);
      expect((await status(url, guesser, wrong)).status, `guess ${i + 1}`).toBe(401);
      await clock.advance(1_000);
    }
    const eleventh = await status(url, guesser, `Bearer ${token}x`);
    expect(eleventh.status).toBe(429);
    expect(eleventh.retryAfter).toBe('50');
    const right = await status(url, guesser, `Bearer ${token}`);
    expect(right.status, 'the right token gains nothing while refused').toBe(429);
    expect(right.retryAfter).toBe('50');
    expect((await status(url, guesser)).status).toBe(429);
    expect((await status(url, guesser, basic('admin', token))).status).toBe(429);
    expect((await status(url, bystander, `Bearer ${token}`)).status, 'another address is not affected').toBe(200);

    await clock.advance(49_000);
    expect((await status(url, guesser, `Bearer ${token}`)).retryAfter).toBe('1');
    await clock.advance(1_000);
    expect((await status(url, guesser, `Bearer ${token}`)).status).toBe(200);
    expect((await status(url, guesser, `Bearer ${token}y`)).status, 'a new window').toBe(401);

    const warned = logs.filter((l) => l.includes('too many wrong tokens'));
    expect(warned).toHaveLength(1);
    expect(JSON.parse(warned[0]!)).toMatchObject({ level: 40, address: guesser, failures: 11 });
    for (const line of logs) {
      expect(line).not.toContain(token);
      expect(line).not.toContain('guess-');
    }
  });

  it('requests without credentials, for another user or malformed are no guesses: never throttled', async () => {
    const token = randomBytes(32).toString('hex');
    const app = await startAdminApp({ token, clock: new ManualClock(Date.parse('2025-03-01T08:00:00Z')) });
    cleanups.push(() => app.close());
    const url = `${app.url}/admin/compare`;
    for (let i = 0; i < 15; i++) {
      for (const authorization of [undefined, basic('root', `x${i}`), `Token ${token}`, 'Bearer']) {
        expect((await status(url, '127.0.0.23', authorization)).status).toBe(401);
      }
    }
    expect((await status(url, '127.0.0.23', `Bearer ${token}`)).status).toBe(200);
  });
});

describe('the server wires the runtime clock into the admin guard', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close();
  });

  it('a refused address is let in again when the runtime clock passes the window', async () => {
    const clock = new ManualClock(Date.now());
    h = await startHarness({ runtime: { clock } });
    const token = randomBytes(32).toString('hex');
    const rules = rulesFor({ ...harnessRules(h.standIn), admin: { token: 'env:ADMIN_TOKEN' } });
    h.holder.current = await buildRuntime('test.yaml', rules, {
      resolveSecret: secretResolver({ ...h.env, ADMIN_TOKEN: token }),
      previous: h.runtime,
    });
    const url = `${h.bridgeUrl}/admin`;
    expect((await status(url, '127.0.0.24', `Bearer ${token}`)).status).toBe(303); // in
    for (let i = 0; i < 11; i++) await status(url, '127.0.0.24', `Bearer wrong-${i}`);
    expect((await status(url, '127.0.0.24', `Bearer ${token}`)).status).toBe(429);
    await clock.advance(60_000);
    expect((await status(url, '127.0.0.24', `Bearer ${token}`)).status).toBe(303);
  });
});
