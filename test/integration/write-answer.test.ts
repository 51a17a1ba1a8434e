/**
 * writeAnswer: the flow's answer written straight on the raw response (one writeHead with a flat header list, then
 * res.end(body)), the fastify reply hijacked. Seen on the wire through a real listener on loopback: undici for status,
 * headers and body, and a raw socket where the exact spelling of a header name or the bytes after the head matter.
 * The test app's onResponse hook shows fastify still sees each answer end, with the status written.
 */
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeAnswer } from '../../src/legacy/plugin.js';
import type { LegacyAnswer } from '../../src/pipeline/types.js';

const FHIR_BODY = Buffer.from('{"resourceType":"ReferralRequest","note":"café ✓"}', 'utf8');

/** The answer each path's handler writes; a function, as a stream can be read only once. */
const ANSWERS: Record<string, () => LegacyAnswer> = {
  fhir: () => ({
    status: 200,
    headers: {
      'content-type': 'application/fhir+json',
      X_ERS_TRANSACTION_ID: 'tx-0001',
      'x-correlation-id': 'corr-0001',
    },
    body: FHIR_BODY,
  }),
  untyped: () => ({ status: 200, headers: {}, body: Buffer.from([0, 1, 2, 255]) }),
  'no-content': () => ({
    status: 204,
    headers: { 'content-type': 'application/fhir+json', 'x-correlation-id': 'corr-0003' },
    body: Buffer.from('must not be sent'),
  }),
  empty: () => ({ status: 200, headers: { 'x-correlation-id': 'corr-0004' }, body: undefined }),
  'head-with-length': () => ({
    status: 200,
    headers: { 'content-type': 'application/fhir+json', 'content-length': '123' },
    body: undefined,
  }),
  'head-without-length': () => ({ status: 200, headers: { 'content-type': 'application/fhir+json' }, body: undefined }),
  'wrong-length': () => ({
    status: 200,
    headers: { 'content-type': 'text/plain', 'content-length': '999' },
    body: Buffer.from('hello'),
  }),
  'bad-header': () => ({
    status: 200,
    headers: { 'content-type': 'text/plain', 'x-bad': 'one\ntwo' },
    body: Buffer.from('never'),
  }),
  stream: () => ({
    status: 200,
    headers: { 'content-type': 'text/plain', X_ERS_TRANSACTION_ID: 'tx-0008' },
    body: Readable.from([Buffer.from('abc')]),
  }),
};

let app: FastifyInstance;
let base: string;
let port: number;
const agent = new Agent();
/** What onResponse saw, one entry per answer that ended. */
const responded: Array<{ method: string; url: string; status: number }> = [];
/** What writeAnswer threw, and the state of the reply when it did. */
const failures: Array<{ url: string; code: unknown; sent: boolean; headersSent: boolean }> = [];

beforeAll(async () => {
  app = Fastify({ logger: false });
  app.addHook('onResponse', (req, reply, done) => {
    responded.push({ method: req.method, url: req.url, status: reply.statusCode });
    done();
  });
  app.route<{ Params: { name: string } }>({
    method: ['GET', 'HEAD'],
    url: '/:name',
    handler: async (req, reply) => {
      const answer = ANSWERS[req.params.name];
      if (!answer) return reply.code(404).send('no such answer');
      try {
        return writeAnswer(reply, answer());
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        failures.push({ url: req.url, code, sent: reply.sent, headersSent: reply.raw.headersSent });
        return reply.code(500).send('fallback');
      }
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await agent.close();
  await app.close();
});

async function call(path: string, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(`${base}${path}`, { method, dispatcher: agent });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

/** The response exactly as it came off a raw socket: the head's lines (names as spelt) and the bytes after it. */
function rawCall(path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<{ lines: string[]; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no end of response for ${method} ${path}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const at = all.indexOf('\r\n\r\n');
      if (at < 0) return reject(new Error(`no complete head for ${method} ${path}`));
      resolve({ lines: all.subarray(0, at).toString('latin1').split('\r\n'), rest: all.subarray(at + 4) });
    });
  });
}

/** Waits for fastify's onResponse hook to have fired for each call to this path, with these statuses. */
async function expectResponded(method: string, url: string, statuses: number[]): Promise<void> {
  const seen = () => responded.filter((r) => r.method === method && r.url === url).map((r) => r.status);
  await vi.waitFor(() => expect(seen()).toEqual(statuses));
}

describe('writeAnswer', () => {
  it('200 with a Buffer body: status, exact bytes, real length, type and other headers kept; onResponse fires', async () => {
    const res = await call('/fhir');
    expect(res.status).toBe(200);
    expect(res.body.equals(FHIR_BODY)).toBe(true);
    expect(res.headers['content-length']).toBe(String(FHIR_BODY.length));
    expect(FHIR_BODY.length).toBeGreaterThan(FHIR_BODY.toString('utf8').length); // bytes, not characters
    expect(res.headers['content-type']).toBe('application/fhir+json');
    expect(res.headers['x-correlation-id']).toBe('corr-0001');
    expect(res.headers['x_ers_transaction_id']).toBe('tx-0001');
    await expectResponded('GET', '/fhir', [200]);
  });

  it('keeps the exact spelling X_ERS_TRANSACTION_ID on the wire', async () => {
    const { lines, rest } = await rawCall('/fhir');
    expect(lines[0]).toBe('HTTP/1.1 200 OK');
    expect(lines).toContain('X_ERS_TRANSACTION_ID: tx-0001');
    expect(lines).toContain('x-correlation-id: corr-0001');
    expect(rest.equals(FHIR_BODY)).toBe(true);
  });

  it('a Buffer body without a content-type is sent as application/octet-stream', async () => {
    const res = await call('/untyped');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-length']).toBe('4');
    expect([...res.body]).toEqual([0, 1, 2, 255]);
  });

  it('204 sends neither a content-type nor a content-length nor any body byte, even when given them', async () => {
    const res = await call('/no-content');
    expect(res.status).toBe(204);
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.headers['x-correlation-id']).toBe('corr-0003');
    expect(res.body.length).toBe(0);
    const raw = await rawCall('/no-content');
    expect(raw.lines[0]).toBe('HTTP/1.1 204 No Content');
    expect(raw.lines.some((l) => /^content-(type|length):/i.test(l))).toBe(false);
    expect(raw.rest.length).toBe(0);
    await expectResponded('GET', '/no-content', [204, 204]);
  });

  it('200 with no body on GET sends content-length: 0', async () => {
    const res = await call('/empty');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.body.length).toBe(0);
    await expectResponded('GET', '/empty', [200]);
  });

  it('HEAD keeps the content-length it was given and sends no body byte', async () => {
    const res = await call('/head-with-length', 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('123');
    expect(res.headers['content-type']).toBe('application/fhir+json');
    expect(res.body.length).toBe(0);
    const raw = await rawCall('/head-with-length', 'HEAD');
    expect(raw.lines).toContain('content-length: 123');
    expect(raw.rest.length).toBe(0);
    await expectResponded('HEAD', '/head-with-length', [200, 200]);
  });

  it('HEAD given no content-length sends none', async () => {
    const res = await call('/head-without-length', 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.body.length).toBe(0);
    const raw = await rawCall('/head-without-length', 'HEAD');
    expect(raw.lines.some((l) => /^content-length:/i.test(l))).toBe(false);
    expect(raw.rest.length).toBe(0);
  });

  it("a content-length in the answer's headers is ignored for a Buffer body: the real length is sent", async () => {
    const res = await call('/wrong-length');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('5');
    expect(res.body.toString()).toBe('hello');
    const raw = await rawCall('/wrong-length');
    expect(raw.lines.filter((l) => /^content-length:/i.test(l))).toEqual(['content-length: 5']);
  });

  it('a header value Node refuses throws before anything is sent; the reply can still answer', async () => {
    const res = await call('/bad-header');
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe('fallback');
    expect(res.headers['x-bad']).toBeUndefined();
    expect(failures).toEqual([{ url: '/bad-header', code: 'ERR_INVALID_CHAR', sent: false, headersSent: false }]);
    await expectResponded('GET', '/bad-header', [500]);
  });

  it('a Readable body is sent through fastify', async () => {
    const res = await call('/stream');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('abc');
    expect(res.headers['content-type']).toBe('text/plain');
    await expectResponded('GET', '/stream', [200]);
    const raw = await rawCall('/stream');
    expect(raw.lines).toContain('X_ERS_TRANSACTION_ID: tx-0008');
  });
});
