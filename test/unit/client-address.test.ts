/** The client address the per-address limits count: the TCP peer, or — only from a trusted proxy — its X-Forwarded-For. */
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../src/http/client-address.js';

function req(peer: string, xff?: string): FastifyRequest {
  return { ip: peer, socket: { remoteAddress: peer }, headers: xff ? { 'x-forwarded-for': xff } : {} } as never;
}
const trusted = (a: string) => a === '10.0.0.5' || a === '10.0.0.6';

describe('clientAddress', () => {
  it('is the TCP peer, and X-Forwarded-For from an untrusted peer is never read', () => {
    expect(clientAddress(req('192.0.2.7', '198.51.100.1'))).toBe('192.0.2.7');
    expect(clientAddress(req('192.0.2.7', '198.51.100.1'), trusted)).toBe('192.0.2.7');
  });

  it('from a trusted proxy: the nearest hop that is not itself a trusted proxy', () => {
    expect(clientAddress(req('10.0.0.5', '198.51.100.1'), trusted)).toBe('198.51.100.1');
    // a client's own (forged) entries sit to the left of what the proxies appended
    expect(clientAddress(req('10.0.0.5', '203.0.113.9, 198.51.100.1, 10.0.0.6'), trusted)).toBe('198.51.100.1');
    expect(clientAddress(req('10.0.0.5', 'not-an-ip'), trusted)).toBe('10.0.0.5');
    expect(clientAddress(req('10.0.0.5'), trusted)).toBe('10.0.0.5');
  });
});
