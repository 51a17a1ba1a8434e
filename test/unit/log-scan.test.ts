/**
 * The suite-wide log scan (test/global-setup.ts): what it counts as an NHS number in a log line, and how it says
 * where a hit was without repeating the value.
 */
import { describe, expect, it } from 'vitest';
import { holdsNhsNumber, whereIn } from '../global-setup.js';

describe('log scan', () => {
  it('finds an NHS number as a number of its own, wherever a log line could carry it', () => {
    for (const line of [
      '{"msg":"x","value":"1000000001"}',
      '{"url":"/ers-api/STU3/v1/Patient/9912003888"}',
      '{"query":"identifier=https://fhir.nhs.uk/Id/nhs-number|9912003888&x=1"}',
      '{"n":9912003888}',
      'text 9912003888.',
      '9912003888',
    ]) {
      const n = line.includes('1000000001') ? '1000000001' : '9912003888';
      expect(holdsNhsNumber(line, n), line).toBe(true);
    }
  });

  it('does not take the digits of a float, a fraction or a longer number for one (the flaky CI failure)', () => {
    expect(holdsNhsNumber('{"responseTime":6.118251000000001}', '1000000001')).toBe(false);
    expect(holdsNhsNumber('{"ms":0.1000000001}', '1000000001')).toBe(false);
    expect(holdsNhsNumber('{"asid":"999912003888"}', '9912003888')).toBe(false);
    expect(holdsNhsNumber('{"id":"99120038881"}', '9912003888')).toBe(false);
    // a later, separate occurrence is still found after a longer one
    expect(holdsNhsNumber('{"a":"99120038881","b":"9912003888"}', '9912003888')).toBe(true);
  });

  it('says which field and message held a value, never the value', () => {
    const line = '{"msg":"legacy call","req":{"url":"/Patient/9912003888"},"asid":"200000000001"}';
    const said = whereIn(line, (t) => holdsNhsNumber(t, '9912003888'));
    expect(said).toBe('msg "legacy call"; in req.url');
    expect(said).not.toContain('9912003888');
    expect(whereIn('{"msg":"9912003888 seen"}', (t) => holdsNhsNumber(t, '9912003888'))).toBe('msg withheld; in msg');
    expect(whereIn('not json 9912003888', () => true)).toBe('(not a JSON line)');
  });
});
