/**
 * Hardening: the client for the object store A042 redirects to (src/apim/object-store.ts), against real servers on
 * loopback. TLS is verified (a trusted CA passes; a self-signed certificate is refused before any request is sent);
 * every stage is bounded (headers, the whole download); a refusal, a file over the limit (declared or not) and a
 * refused connection become typed errors naming only the host — never the link, whose query is the credential.
 * Then A006 through A042 in front of a fake APIM whose 307s point at misbehaving object stores: each fault is a
 * defined legacy answer, a file that stalls mid-stream ends the client's connection, and no link reaches a log.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ObjectStoreClient, ObjectStoreError } from '../../src/apim/object-store.js';
import { expectLegacyOutcome, type Harness, legacyCall, openSession, startHarness } from '../helpers/harness.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { answered, apimAt } from './support.js';

const TIMEOUTS = { connectMs: 1000, headersMs: 1000, bodyMs: 1000, totalMs: 3000 };
const SECRET = 'signature=5ecret-link-part';

let pki: TestPki;
const servers: Server[] = [];
const clients: ObjectStoreClient[] = [];
beforeAll(() => {
  pki = makeTestPki();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
async function serve(handler: Handler, tls?: { cert: string; key: string }): Promise<string> {
  const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
}

function client(options: Partial<ConstructorParameters<typeof ObjectStoreClient>[0]> = {}): ObjectStoreClient {
  const c = new ObjectStoreClient({ ...TIMEOUTS, ...options });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<ObjectStoreError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ObjectStoreError);
    expect((e as Error).message).not.toContain(SECRET);
    expect(JSON.stringify((e as ObjectStoreError).detail)).not.toContain(SECRET);
    return e as ObjectStoreError;
  }
  throw new Error('expected an ObjectStoreError');
}

async function bytesOf(body: Readable | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const file =
  (bytes: Buffer, extra: Record<string, string> = {}): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': String(bytes.length), ...extra });
    res.end(bytes);
  };

describe('the object-store client', () => {
  it('downloads over verified TLS from a server whose CA it was given; no credential or cookie is sent', async () => {
    let seen: IncomingMessage | undefined;
    const origin = await serve(
      (req, res) => {
        seen = req;
        file(Buffer.from('%PDF-1.4 test'))(req, res);
      },
      { cert: pki.serverCertPem, key: pki.serverKeyPem },
    );
    const got = await client({ ca: pki.caPem }).download(new URL(`${origin}/f/1?${SECRET}`), 1000);
    expect((await bytesOf(got.body)).toString()).toBe('%PDF-1.4 test');
    expect(got).toMatchObject({ contentType: 'application/pdf', length: 13 });
    expect(seen!.url).toBe(`/f/1?${SECRET}`);
    expect(seen!.headers.authorization).toBeUndefined();
    expect(seen!.headers.cookie).toBeUndefined();
    expect(seen!.headers['cache-control']).toBe('no-store');
  });

  it('refuses a certificate it cannot verify, and sends nothing', async () => {
    let requests = 0;
    const origin = await serve(
      (_req, res) => {
        requests++;
        res.end();
      },
      { cert: pki.selfSignedCertPem, key: pki.selfSignedKeyPem },
    );
    const e = await failure(client({ ca: pki.caPem }).download(new URL(`${origin}/f?${SECRET}`), 1000));
    expect(e.kind).toBe('tls-unverified');
    expect(e.detail.host).toBe('127.0.0.1');
    expect(requests).toBe(0);
  });

  it("a refusal (an expired link's 403) and a refused connection name only the host", async () => {
    const origin = await serve((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    });
    const refused = await failure(client().download(new URL(`${origin}/f?${SECRET}`), 1000));
    expect(refused).toMatchObject({ kind: 'status', detail: { host: '127.0.0.1', status: 403 } });
    const down = await failure(client().download(new URL(`http://127.0.0.1:9/f?${SECRET}`), 1000));
    expect(down).toMatchObject({ kind: 'unreachable', detail: { code: 'ECONNREFUSED' } });
  });

  it('a file declared over the limit is refused before its body is read; an undeclared one at the limit', async () => {
    const big = Buffer.alloc(2048, 1);
    const declared = await serve(file(big));
    const e = await failure(client().download(new URL(`${declared}/f?${SECRET}`), 1024));
    expect(e).toMatchObject({ kind: 'too-large', detail: { bytes: 2048, limit: 1024 } });

    const chunked = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/pdf' });
      Readable.from([big.subarray(0, 1000), big.subarray(1000)]).pipe(res);
    });
    const over = await failure(client().download(new URL(`${chunked}/f?${SECRET}`), 1024));
    expect(over).toMatchObject({ kind: 'too-large', detail: { limit: 1024 } });
    const fits = await client().download(new URL(`${chunked}/f?${SECRET}`), 4096);
    expect(Buffer.isBuffer(fits.body)).toBe(true);
    expect(fits.length).toBe(2048);
  });

  it('gives up on a store that does not answer in time, and on a download slower than the whole allowance', async () => {
    const silent = await serve(() => {
      /* never answers */
    });
    const started = Date.now();
    const slow = await failure(client({ headersMs: 300 }).download(new URL(`${silent}/f?${SECRET}`), 1000));
    expect(slow.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2500);

    const trickle = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': '100000' });
      const timer = setInterval(() => res.write(Buffer.alloc(10)), 100);
      res.on('close', () => clearInterval(timer));
    });
    const got = await client({ totalMs: 1000 }).download(new URL(`${trickle}/f?${SECRET}`), 200_000);
    await expect(bytesOf(got.body)).rejects.toThrow();
  });
});

describe('A006 through A042 when the object store misbehaves', () => {
  const STORE_TIMEOUTS = { connectMs: 500, headersMs: 800, bodyMs: 800, totalMs: 3000 };
  let h: Harness;
  let key: string;
  let links: string[] = [];
  const fakes: Server[] = [];

  async function fake(handler: Handler, tls?: { cert: string; key: string }): Promise<string> {
    const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    fakes.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    const store = await fake((req, res) => {
      if (req.url?.startsWith('/expired')) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>');
      } else if (req.url?.startsWith('/silent')) {
        // never answers
      } else {
        res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': '4096' });
        res.write(Buffer.alloc(512, 0x25)); // then stalls
      }
    });
    const selfSigned = await fake((_req, res) => res.end('x'), {
      cert: pki.selfSignedCertPem,
      key: pki.selfSignedKeyPem,
    });
    const locations: Record<string, string | undefined> = {
      'att-stall': `${store}/stall?${SECRET}`,
      'att-expired': `${store}/expired?${SECRET}`,
      'att-silent': `${store}/silent?${SECRET}`,
      'att-selfsigned': `${selfSigned}/f?${SECRET}`,
      'att-plain': `http://object-store.example.org/f?${SECRET}`,
      'att-none': undefined,
    };
    links = Object.values(locations).filter((l): l is string => l !== undefined);
    const apim = await fake((req, res) => {
      const id = (req.url ?? '').split('/').pop()!;
      const location = locations[id];
      res.writeHead(307, { 'x-request-id': `tx-${id}-1`, ...(location ? { location } : {}) }).end();
    });
    h = await startHarness({
      rules: { apim: { baseUrl: apimAt(apim), successors: { attachments: { timeouts: STORE_TIMEOUTS } } } },
    });
    key = await openSession(h);
  });
  afterAll(async () => {
    await h?.close();
    for (const s of fakes) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  const a006 = (id: string) =>
    legacyCall(h, 'GET', `/ers-api/STU3/v1/Binary/${id}`, { XAPI_ASID: '999000000001', HTTP_X_SESSION_KEY: key });

  it.each([
    ['att-expired', 502, 'OBJECT_STORE_FAILED', /refused the download \(HTTP 403\)/],
    ['att-silent', 504, 'OBJECT_STORE_TIMEOUT', /did not deliver/],
    ['att-selfsigned', 502, 'OBJECT_STORE_FAILED', /could not be verified/],
    ['att-plain', 502, 'OBJECT_STORE_LINK_REFUSED', /not https/],
    ['att-none', 502, 'OBJECT_STORE_LINK_REFUSED', /no Location/],
  ])('%s → %i %s', async (id, status, reason, text) => {
    const res = await answered(a006(id), 5000, id);
    const issue = expectLegacyOutcome(res, status, reason);
    expect(issue.diagnostics).toMatch(text);
    const answer = `${JSON.stringify(res.headers)}${res.body.toString('utf8')}`;
    for (const link of links) expect(answer).not.toContain(link);
    expect(answer).not.toContain(SECRET);
    expect(res.headers.location).toBeUndefined();
  });

  it('a file that stalls mid-stream: the client connection is ended, never left hanging', async () => {
    const outcome = await answered(
      a006('att-stall').then(
        (r) => ({ ok: true as const, status: r.status }),
        (e: Error) => ({ ok: false as const, error: e }),
      ),
      STORE_TIMEOUTS.totalMs + 3000,
      'stalled A006 through A042',
    );
    expect(outcome.ok, 'a truncated file must not look complete').toBe(false);
  });

  it('no link, nor its signature, reaches a log line', () => {
    const logs = h.logs.join('\n');
    expect(logs).not.toContain(SECRET);
    for (const link of links) expect(logs).not.toContain(link);
  });
});
