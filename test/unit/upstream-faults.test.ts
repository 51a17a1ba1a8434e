/**
 * How APIM transport failures become legacy answers, as a table: undici's errors (and the socket and TLS errors
 * under them) mapped by Upstream.transportError and faultFor to the status and `urn:ers-bridge:error` reason
 * MIGRATION.md documents. The same faults on real sockets are in test/hardening/upstream-faults.test.ts.
 */
import { errors as undiciErrors } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Upstream } from '../../src/apim/upstream.js';
import { LegacyError } from '../../src/legacy/errors.js';
import { faultFor } from '../../src/pipeline/faults.js';

describe('connect failures', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("undici's ConnectTimeoutError maps to 504 UPSTREAM_TIMEOUT (unit)", async () => {
    const upstream = new Upstream('http://127.0.0.1:1', {
      connections: 1,
      connectTimeoutMs: 100,
      headersTimeoutMs: 1_000,
      bodyTimeoutMs: 1_000,
    });
    cleanups.push(() => upstream.close());
    const mapped = faultFor(upstream.transportError(new undiciErrors.ConnectTimeoutError()));
    expect(mapped).toBeInstanceOf(LegacyError);
    expect(mapped.reason).toBe('UPSTREAM_TIMEOUT');
    expect(mapped.status).toBe(504);
    expect(mapped.diagnostics).toMatch(/did not accept a connection in time/);
    // and the rest of the table, as MIGRATION.md documents it
    const table: Array<[unknown, string, number]> = [
      [new undiciErrors.HeadersTimeoutError(), 'UPSTREAM_TIMEOUT', 504],
      [new undiciErrors.BodyTimeoutError(), 'UPSTREAM_TIMEOUT', 504],
      [new undiciErrors.SocketError('other side closed'), 'UPSTREAM_UNREACHABLE', 502],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'UPSTREAM_UNREACHABLE', 502],
      [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'UPSTREAM_UNREACHABLE', 502],
      [
        Object.assign(new Error('unable to verify'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }),
        'UPSTREAM_UNREACHABLE',
        502,
      ],
      [new undiciErrors.HTTPParserError('Response does not match the HTTP/1.1 protocol'), 'UPSTREAM_BAD_RESPONSE', 502],
    ];
    for (const [error, reason, status] of table) {
      const m = faultFor(upstream.transportError(error));
      expect([m.reason, m.status], String(error)).toEqual([reason, status]);
      expect(m.diagnostics).not.toMatch(/\n\s+at /);
    }
  });
});
