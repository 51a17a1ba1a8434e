/**
 * `ers-bridge explain` under each migration mode: the mode chosen for the call and where it comes from, and each
 * side's request — APIM's as always, the legacy host's (its base, the client's headers but the session key and
 * hop-by-hop ones); for a shadow which side answers and which gets the copy, and whether a write is copied; for a
 * canary the side of a session or an ASID. And under rules without modes, the output the README shows, unchanged.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explain } from '../../src/cli/explain.js';
import { canaryBucket } from '../../src/pipeline/mode.js';
import { parseRules } from '../../src/rules/load.js';
import type { Rules } from '../../src/rules/schema.js';
import { type RulesOptions, rulesFor } from '../helpers/rules.js';
import { projectPath } from './support.js';

const ASID = '200000000001';
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A011 = '/ers-api/STU3/v1/ReferralRequest/$ers.createReferral';
const A013 = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.acceptReferral';
const LEGACY_BASE = 'https://api.int1.ers.ncrs.nhs.uk/ers-api';
const APIM_A005 = 'https://int.api.service.nhs.uk/referrals/FHIR/STU3/ReferralRequest/000000070000';

function rules(modes: RulesOptions['modes'], extra: Partial<RulesOptions> = {}): Rules {
  return rulesFor({
    apim: {
      baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
      tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
    },
    legacy: {
      host: 'api.int1.ers.ncrs.nhs.uk',
      tls: { certificate: 'env:LEGACY_CERT', privateKey: 'env:LEGACY_KEY' },
    },
    asids: { [ASID]: {} },
    ...(modes ? { modes } : {}),
    ...extra,
  });
}

/** The call as a client sends it: header names as spelt, and the same headers as explain's lower-case map. */
function call(rulesInForce: Rules, method: string, path: string, raw: Array<[string, string]>, sessionKey?: string) {
  const headers = Object.fromEntries(raw.map(([n, v]) => [n.toLowerCase(), v]));
  return explain(rulesInForce, method, path, headers, {
    rawHeaders: raw.flat(),
    ...(sessionKey ? { sessionKey } : {}),
  });
}

/** A session key whose canary bucket sends it to this side at this percentage. */
function keyOn(side: 'apim' | 'legacy', percent: number): string {
  for (let i = 0; ; i++) {
    const key = `pro-api-session:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    if (canaryBucket(`session:${key}`) < percent * 100 === (side === 'apim')) return key;
  }
}

const lines = (text: string) => text.split('\n');

describe('explain without modes', () => {
  it("prints exactly the README's example output for rules/int.yaml", () => {
    const readme = readFileSync(projectPath('README.md'), 'utf8');
    const at = readme.indexOf("--rules rules/int.yaml --header 'XAPI_ASID: 200000000220'");
    // The command's block ends, and the output's begins.
    const start = readme.indexOf('```\n', readme.indexOf('```\n', at) + 4) + 4;
    const shown = readme.slice(start, readme.indexOf('```', start)).trimEnd();
    const int = parseRules(readFileSync(projectPath('rules/int.yaml'), 'utf8'), 'int.yaml');
    const out = explain(int, 'GET', A005, { xapi_asid: '200000000220' });
    expect(out.ok).toBe(true);
    expect(out.text).toBe(shown);
    expect(out.text).not.toMatch(/^mode:/m);
  });
});

describe('explain under each mode', () => {
  it('translate on a route while other routes use the legacy host: the mode and where it comes from; APIM only', () => {
    const r = rules({ default: 'passthrough', routes: { A005: 'translate' } });
    const out = call(r, 'GET', A005, [['XAPI_ASID', ASID]]);
    expect(out.ok).toBe(true);
    expect(out.text).toContain('mode: translate (modes.routes.A005): APIM answers; nothing is sent to the legacy host');
    expect(out.text).toContain(`APIM:   GET ${APIM_A005}`);
    expect(out.text).not.toContain('legacy host (');
  });

  it('passthrough: the legacy host request — its base, the headers as sent, the session key replaced, hop-by-hop dropped', () => {
    const r = rules({ default: 'passthrough' });
    const out = call(r, 'GET', `${A005}?_format=json`, [
      ['XAPI_ASID', ASID],
      ['HTTP_X_SESSION_KEY', 'pro-api-session:secret-session-key'],
      ['X-Custom-Header', 'kept'],
      ['Connection', 'keep-alive, X-Drop-Me'],
      ['X-Drop-Me', 'listed in Connection'],
      ['Transfer-Encoding', 'chunked'],
    ]);
    expect(out.ok).toBe(true);
    const text = lines(out.text);
    expect(text).toContain(
      'mode: passthrough (modes.default): the legacy host answers, the call unchanged but for the session key; nothing is sent to APIM',
    );
    expect(text).toContain(
      `legacy host (answers): GET ${LEGACY_BASE}/STU3/v1/ReferralRequest/000000070000?_format=json`,
    );
    expect(text).toContain('  mutual TLS with the client certificate env:LEGACY_CERT (legacy.tls)');
    const sent = out.text.slice(out.text.indexOf('headers sent to the legacy host'));
    expect(sent).toContain(`  XAPI_ASID: ${ASID}`);
    expect(sent).toContain('  X-Custom-Header: kept');
    expect(sent).toMatch(/^ {2}HTTP_X_SESSION_KEY: <the legacy host's own session key/m);
    expect(text).toContain('headers not forwarded to the legacy host: connection, x-drop-me, transfer-encoding');
    expect(out.text).not.toContain('secret-session-key');
    expect(out.text).not.toMatch(/^APIM/m);
    expect(out.text).not.toContain('headers sent to APIM');
  });

  it("passthrough: APIM's access rules do not apply (the legacy host answers), as on the live path", () => {
    const out = call(rules({ default: 'passthrough' }), 'POST', A011, [['XAPI_ASID', ASID]]);
    expect(out.ok).toBe(true);
    expect(out.text).toContain(`policy: allowed for ASID ${ASID}`);
  });

  it('shadow, legacy primary: the legacy host answers, APIM gets the copy of a read', () => {
    const r = rules({ default: 'shadow', shadow: { primary: 'legacy', sampleRate: 0.25, timeoutMs: 3000 } });
    const out = call(r, 'GET', A005, [['XAPI_ASID', ASID]]);
    expect(out.ok).toBe(true);
    const text = lines(out.text);
    expect(text).toContain(
      'mode: shadow (modes.default): the legacy host answers the client; a copy goes to APIM and the two answers are compared',
    );
    expect(text).toContain(
      '  copy: sent for 25% of calls (A005 only reads); at most 16 in flight, timed out after 3000 ms',
    );
    const answers = text.findIndex((l) => l.startsWith('legacy host (answers): GET '));
    const copy = text.indexOf(`APIM (the copy): GET ${APIM_A005}`);
    expect(answers).toBeGreaterThan(-1);
    expect(copy).toBeGreaterThan(answers);
    expect(text).toContain('headers sent to APIM:');
  });

  it('shadow: a write is never copied to a production side, and is to a declared stand-in', () => {
    const headers: Array<[string, string]> = [
      ['XAPI_ASID', ASID],
      ['If-Match', 'W/"5"'],
    ];
    const toProduction = call(rules({ default: 'shadow', shadow: { primary: 'apim' } }), 'POST', A013, headers);
    expect(toProduction.ok).toBe(true);
    expect(toProduction.text).toContain(
      'copy: never sent: A013 changes data and the shadow side is production: writes are never copied to production',
    );
    expect(toProduction.text).toContain('legacy host (the copy, not sent): POST ');
    expect(toProduction.text).toMatch(/^APIM \(answers\): POST https:\/\/int\.api\.service\.nhs\.uk\//m);

    const standIn = rules(
      { default: 'shadow', shadow: { primary: 'apim' } },
      { legacy: { host: 'api.int1.ers.ncrs.nhs.uk', baseUrl: 'http://127.0.0.1:9002/ers-api', production: false } },
    );
    const copied = call(standIn, 'POST', A013, headers);
    expect(copied.text).toContain(
      'copy: sent for 100% of calls (A013 changes data, and the legacy host is declared non-production (legacy.production: false))',
    );
    expect(copied.text).toContain(
      'legacy host (the copy): POST http://127.0.0.1:9002/ers-api/STU3/v1/ReferralRequest/',
    );
    expect(copied.text).toContain('  plain HTTP (legacy.baseUrl is http:): no TLS, no client certificate');
  });

  it('shadow, legacy primary: no copy of a call APIM would refuse, and the call itself is not refused', () => {
    // A015 (slots) only reads, and needs a CIS2 user at APIM.
    const out = call(rules({ default: 'shadow' }), 'GET', '/ers-api/STU3/v1/Slot?status=free', [['XAPI_ASID', ASID]]);
    expect(out.ok).toBe(true);
    expect(out.text).toContain('copy: not sent: APIM would refuse it (ENDPOINT_NOT_APP_RESTRICTED)');
  });

  it('canary by session, no session given: it depends on the session, and both sides are shown', () => {
    const r = rules({ default: 'canary', canary: { percent: 25, by: 'session' } });
    const out = call(r, 'GET', A005, [['XAPI_ASID', ASID]]);
    expect(out.ok).toBe(true);
    const text = lines(out.text);
    expect(text).toContain(
      'mode: canary (modes.default): 25% of sessions go to APIM, the others to the legacy host; a session stays on its side',
    );
    expect(text).toContain(
      "  depends on the session: 25% of sessions go to APIM (give --session <key> for one session's side)",
    );
    expect(text).toContain(`APIM (for the sessions that go to APIM): GET ${APIM_A005}`);
    expect(text.some((l) => l.startsWith('legacy host (for the others): GET '))).toBe(true);
  });

  it("canary by session: --session (or the call's session key) gives that session's side, never the key", () => {
    const r = rules({ default: 'canary', canary: { percent: 25, by: 'session' } });
    const onApim = keyOn('apim', 25);
    const onLegacy = keyOn('legacy', 25);
    const apim = call(r, 'GET', A005, [['XAPI_ASID', ASID]], onApim);
    expect(apim.text).toMatch(
      new RegExp(
        `^ {2}this session goes to APIM \\(canary bucket ${canaryBucket(`session:${onApim}`)} of 10000; buckets below 2500 go to APIM\\)$`,
        'm',
      ),
    );
    expect(apim.text).toContain(`APIM (answers): GET ${APIM_A005}`);
    expect(apim.text).not.toContain('legacy host (');
    const legacy = call(r, 'GET', A005, [
      ['XAPI_ASID', ASID],
      ['HTTP_X_SESSION_KEY', onLegacy],
    ]);
    expect(legacy.text).toMatch(/^ {2}this session goes to the legacy host \(canary bucket \d+ of 10000/m);
    expect(legacy.text).toContain('legacy host (answers): GET ');
    expect(legacy.text).not.toMatch(/^APIM/m);
    for (const out of [apim, legacy]) {
      expect(out.text).not.toContain(onApim);
      expect(out.text).not.toContain(onLegacy);
    }
  });

  it("canary: APIM's access rules apply to a session on APIM, or any when the session is not known; not on the legacy side", () => {
    const r = rules({ default: 'canary', canary: { percent: 25, by: 'session' } });
    expect(call(r, 'POST', A011, [['XAPI_ASID', ASID]], keyOn('legacy', 25)).ok).toBe(true);
    const onApim = call(r, 'POST', A011, [['XAPI_ASID', ASID]], keyOn('apim', 25));
    expect(onApim.ok).toBe(false);
    expect(onApim.text).toContain('(403 ENDPOINT_NOT_APP_RESTRICTED)');
    expect(call(r, 'POST', A011, [['XAPI_ASID', ASID]]).ok).toBe(false);
  });

  it("canary by ASID: the ASID's side, or that it depends on the ASID", () => {
    const r = rules({
      routes: { A005: { mode: 'canary', canary: { percent: 50, by: 'asid' } } },
      default: 'translate',
    });
    const side = canaryBucket(`asid:${ASID}`) < 5000 ? 'APIM' : 'the legacy host';
    const known = call(r, 'GET', A005, [['XAPI_ASID', ASID]]);
    expect(known.text).toContain(
      'mode: canary (modes.routes.A005): 50% of ASIDs go to APIM, the others to the legacy host; an ASID stays on its side',
    );
    expect(known.text).toMatch(
      new RegExp(
        `^ {2}ASID ${ASID} goes to ${side} \\(canary bucket \\d+ of 10000; buckets below 5000 go to APIM\\)$`,
        'm',
      ),
    );
    const unknown = call(r, 'GET', A005, []);
    expect(unknown.text).toContain(
      "  depends on the ASID: 50% of ASIDs go to APIM (give --header 'XAPI_ASID: <asid>' for one ASID's side)",
    );
  });
});
