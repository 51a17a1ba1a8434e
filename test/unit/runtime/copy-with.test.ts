import { describe, expect, it } from 'vitest';
import { copyWith } from '../../../src/runtime/copy-with.js';

describe('copyWith', () => {
  it('is the source with one more field, and leaves the source as it was', () => {
    const seen = { aCode: 'A005', route: '/v1/ReferralRequest/{ubrn}', correlationId: 'c-1' };
    const record = copyWith(seen, 'reason', 'SESSION_UNKNOWN');
    expect(record).toStrictEqual({ ...seen, reason: 'SESSION_UNKNOWN' });
    expect(Object.keys(record)).toEqual(['aCode', 'route', 'correlationId', 'reason']);
    expect(seen).not.toHaveProperty('reason');
    expect(record).not.toBe(seen);
  });

  it('replaces a field the source has, and keeps an undefined one', () => {
    const headers: Record<string, string | undefined> = {
      accept: 'application/fhir+json',
      authorization: 'Bearer old',
    };
    expect(copyWith(headers, 'authorization', 'Bearer new')).toStrictEqual({
      accept: 'application/fhir+json',
      authorization: 'Bearer new',
    });
    expect(headers['authorization']).toBe('Bearer old');
    expect(copyWith({ a: undefined }, 'b', 1)).toStrictEqual({ a: undefined, b: 1 });
  });
});
