/**
 * Shared helpers for the hardening tests: real loopback servers standing in for a misbehaving APIM, a guard that
 * turns a hung legacy call into a clear failure, and socket accounting.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { type Agent, getGlobalDispatcher } from 'undici';
import { expect, vi } from 'vitest';
import { APP_ASID, type Harness, type LegacyResponse, legacyCall } from '../helpers/harness.js';

export const A005 = (ubrn = '000000070000') => `/ers-api/STU3/v1/ReferralRequest/${ubrn}`;
export const A013 = (ubrn = '000000070000') => `/ers-api/STU3/v1/ReferralRequest/${ubrn}/$ers.acceptReferral`;

/** A request as a fake upstream saw it. */
export interface Hit {
  method: string;
  url: string;
  authorization: string | undefined;
  at: number;
}

/** A started loopback server plus what it saw; `close()` drops every connection it holds. */
export interface FakeServer<S extends Server | HttpsServer | NetServer = Server> {
  server: S;
  url: string;
  port: number;
  hits: Hit[];
  /** TCP connections accepted so far. */
  connections: number;
  /** Connections currently open at the server. */
  open: Set<Socket>;
  close(): Promise<void>;
}

function track<S extends Server | HttpsServer | NetServer>(server: S, scheme: string): Promise<FakeServer<S>> {
  const fake = {
    server,
    url: '',
    port: 0,
    hits: [] as Hit[],
    connections: 0,
    open: new Set<Socket>(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of fake.open) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    fake.connections++;
    fake.open.add(socket);
    socket.on('close', () => fake.open.delete(socket));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      fake.port = (server.address() as AddressInfo).port;
      fake.url = `${scheme}://127.0.0.1:${fake.port}`;
      resolve(fake);
    });
  });
}

function recording(fake: { hits: Hit[] }, handler: RequestListener): RequestListener {
  return (req, res) => {
    fake.hits.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      at: Date.now(),
    });
    handler(req, res);
  };
}

/** A fake APIM over plain HTTP on 127.0.0.1 that records every request before the handler answers it. */
export async function fakeHttp(handler: RequestListener): Promise<FakeServer<Server>> {
  const holder: { hits: Hit[] } = { hits: [] };
  const server = createServer(recording(holder, handler));
  const fake = await track(server, 'http');
  holder.hits = fake.hits;
  return fake;
}

/** The same over HTTPS. Counts handshakes that failed at the server (`tlsClientError`). */
export async function fakeHttps(
  tls: ServerOptions,
  handler: RequestListener,
): Promise<FakeServer<HttpsServer> & { tlsErrors: number; handshakes: number }> {
  const holder: { hits: Hit[] } = { hits: [] };
  const server = createHttpsServer(tls, recording(holder, handler));
  const fake = Object.assign(await track(server, 'https'), { tlsErrors: 0, handshakes: 0 });
  holder.hits = fake.hits;
  server.on('tlsClientError', () => fake.tlsErrors++);
  server.on('secureConnection', () => fake.handshakes++);
  return fake;
}

/** A raw TCP server: `onSocket` decides what (if anything) is written. */
export async function fakeTcp(onSocket: (socket: Socket) => void): Promise<FakeServer<NetServer>> {
  const server = createNetServer((socket) => {
    socket.on('error', () => {});
    onSocket(socket);
  });
  return track(server, 'http');
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Points the harness's APIM base URL at a fake upstream; the stand-in keeps issuing tokens. */
export const apimAt = (origin: string) => `${origin}/referrals/FHIR`;

/** Fails with a clear message instead of hanging when a legacy call is not answered in time. */
export async function answered<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the legacy client got no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A timed legacy data call with the session; fails if not answered within `ms`. */
export async function timedCall(
  h: Harness,
  key: string,
  method: string,
  path: string,
  extra: Record<string, string> = {},
  ms = 8_000,
): Promise<{ res: LegacyResponse; ms: number }> {
  const started = performance.now();
  const res = await answered(
    legacyCall(h, method, path, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, ...extra }),
    ms,
    `${method} ${path}`,
  );
  return { res, ms: performance.now() - started };
}

/** Nothing in a legacy answer that belongs to ers-bridge's insides or to its secrets. */
export function expectNothingLeaked(res: LegacyResponse, secrets: Array<string | undefined> = []): void {
  const text = res.body.toString('utf8');
  expect(text).not.toMatch(/\n\s+at \S+/); // a stack frame
  expect(text).not.toMatch(/node_modules|\.ts:\d+|\.js:\d+/);
  for (const s of secrets) if (s) expect(text).not.toContain(s);
}

/**
 * Closes the test client's idle keep-alive connections to ers-bridge (they are not ers-bridge's) and waits until
 * both ends are gone: the bridge's server holds no connection and the client's pool none to the bridge.
 */
export async function closeClientConnections(h: Harness): Promise<void> {
  h.bridge.server.closeIdleConnections();
  const origin = new URL(h.bridgeUrl).origin;
  await vi.waitFor(
    async () => {
      const atServer = await new Promise<number>((resolve, reject) =>
        h.bridge.server.getConnections((e, n) => (e ? reject(e) : resolve(n))),
      );
      const atClient = Number((getGlobalDispatcher() as Agent).stats[origin]?.connected ?? 0);
      if (atServer + atClient > 0) throw new Error(`${atServer} + ${atClient} client connections still open`);
    },
    { timeout: 5_000, interval: 10 },
  );
}

/** Open TCP socket handles of this process (both ends of in-process loopback connections count). */
export function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A minimal ReferralRequest answer body. */
export function referral(ubrn: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceType: 'ReferralRequest',
      id: ubrn,
      meta: { versionId: '5' },
      status: 'active',
      intent: 'plan',
    }),
  );
}
