/**
 * What a rules reload logs as changed (src/rules/changes.ts): ASIDs added, removed and changed; modes and limits with
 * their values; TLS, certificates and the admin token as "changed" only — never a value or a secret reference.
 */
import { describe, expect, it } from 'vitest';
import { rulesChanges } from '../../src/rules/changes.js';
import type { Rules } from '../../src/rules/schema.js';
import { type RulesOptions, rulesFor } from '../helpers/rules.js';

const APIM = {
  baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
  tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
};
const A = '200000000001';
const B = '200000000002';
const C = '200000000003';

function rules(extra: Partial<RulesOptions> = {}): Rules {
  return rulesFor({ apim: APIM, asids: { [A]: {}, [B]: { allowedCodes: ['A004', 'A005'] } }, ...extra });
}

const side = (r: Rules, resolved?: { adminToken?: string; serverTls?: string }) => ({
  rules: r,
  ...(resolved ? { resolved } : {}),
});

describe('rulesChanges', () => {
  it('the same rules: nothing changed', () => {
    expect(rulesChanges(side(rules()), side(rules()))).toEqual({});
    expect(
      rulesChanges(
        side(rules(), { adminToken: 'h1', serverTls: 't1' }),
        side(rules(), { adminToken: 'h1', serverTls: 't1' }),
      ),
    ).toEqual({});
  });

  it('ASIDs added, removed, and changed (by the names of their settings, never the values)', () => {
    const next = rulesFor({
      apim: APIM,
      asids: {
        [B]: {
          allowedCodes: ['A004', 'A005', 'A007'],
          apim: { apiKey: 'env:OTHER_KEY', keyId: 'k9', privateKey: 'env:OTHER_PEM' },
        },
        [C]: {},
      },
    });
    const changes = rulesChanges(side(rules()), side(next));
    expect(changes).toEqual({ asidsAdded: [C], asidsRemoved: [A], asidsChanged: [`${B}: allowedCodes, apim`] });
    expect(JSON.stringify(changes)).not.toMatch(/OTHER_KEY|OTHER_PEM|k9|A007/);
  });

  it('modes, with their old and new values', () => {
    const next = rules({
      modes: {
        default: 'shadow',
        shadow: { sampleRate: 0.5 },
        canary: { percent: 10, by: 'session' },
        routes: { A005: { mode: 'canary', canary: { percent: 25, by: 'asid' } }, A004: 'translate' },
      },
    });
    expect(rulesChanges(side(rules()), side(next)).modes).toEqual(
      expect.arrayContaining([
        'default: translate → shadow',
        'shadow.sampleRate: 1 → 0.5',
        'canary: (unset) → {"percent":10,"by":"session"}',
        'routes.A005: (unset) → {"mode":"canary","canary":{"percent":25,"by":"asid"}}',
        'routes.A004: (unset) → translate',
      ]),
    );
    const back = rulesChanges(side(next), side(rules({ modes: { ...next.modes, default: 'translate' } })));
    expect(back).toEqual({ modes: ['default: shadow → translate'] });
  });

  it('limits, with their values', () => {
    const next = rules({
      sessions: { maxPerAsid: 500, a001PerSecondPerAsid: { rate: 5, burst: 10 } },
      apim: { ...APIM, rateLimit: { requestsPerSecond: 50 } },
    });
    const changes = rulesChanges(side(rules()), side(next));
    expect(changes.limits).toEqual(
      expect.arrayContaining([
        'sessions.maxPerAsid: 20000 → 500',
        'sessions.a001PerSecondPerAsid.rate: 20 → 5',
        'sessions.a001PerSecondPerAsid.burst: 100 → 10',
        'apim.rateLimit.requestsPerSecond: (unset) → 50',
      ]),
    );
    expect(changes.other).toBeUndefined();
  });

  it('TLS and certificates: "changed", whether the references or the files behind them changed, never a value', () => {
    const tls = (certificate: string) =>
      rules({ server: { tls: { certificate, privateKey: 'file:/run/secrets/key.pem', clientCertificates: 'off' } } });
    const byReference = rulesChanges(side(tls('file:/run/secrets/old.pem')), side(tls('file:/run/secrets/new.pem')));
    expect(byReference).toEqual({ tls: ['server.tls: changed'] });
    expect(JSON.stringify(byReference)).not.toContain('/run/secrets');
    // The same reference, a new certificate in the file: seen by what it resolved to.
    const same = tls('file:/run/secrets/cert.pem');
    expect(rulesChanges(side(same, { serverTls: 'h1' }), side(same, { serverTls: 'h2' }))).toEqual({
      tls: ['server.tls: changed'],
    });
    const legacy = rules({
      legacy: {
        host: 'api.int1.ers.ncrs.nhs.uk',
        tls: { certificate: 'env:LEGACY_CERT', privateKey: 'env:LEGACY_KEY' },
      },
    });
    expect(rulesChanges(side(rules()), side(legacy))).toEqual({ tls: ['legacy.tls: changed'] });
  });

  it('the admin token: added, changed (its reference or its value) or removed — never the token or its reference', () => {
    const admin = (token: string) => rules({ admin: { token } });
    expect(rulesChanges(side(rules()), side(admin('env:ADMIN_ONE')))).toEqual({ adminToken: 'added' });
    const changed = rulesChanges(side(admin('env:ADMIN_ONE')), side(admin('env:ADMIN_TWO')));
    expect(changed).toEqual({ adminToken: 'changed' });
    expect(JSON.stringify(changed)).not.toContain('ADMIN_');
    expect(rulesChanges(side(admin('env:ADMIN_ONE')), side(rules()))).toEqual({ adminToken: 'removed' });
    const same = admin('file:/run/secrets/admin');
    expect(rulesChanges(side(same, { adminToken: 'h1' }), side(same, { adminToken: 'h2' }))).toEqual({
      adminToken: 'changed',
    });
  });

  it('anything else by name only, two levels deep at most', () => {
    const next = rules({
      apim: { ...APIM, baseUrl: 'https://dep.api.service.nhs.uk/referrals-dep/FHIR' },
      environment: 'dep',
    });
    const changes = rulesChanges(side(rules()), side(next));
    expect(changes.other).toEqual(expect.arrayContaining(['environment', 'apim.baseUrl']));
    expect(JSON.stringify(changes)).not.toContain('dep.api');
  });
});
