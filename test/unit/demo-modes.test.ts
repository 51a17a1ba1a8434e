/**
 * `ers-bridge demo --mode …` and `ers-bridge emulate-legacy`, in-process: the demo rules' legacy side for each mode,
 * and the usage of both commands (the running commands are tested in test/e2e/demo-modes.test.ts and
 * test/legacy-standin/emulate-legacy.test.ts).
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { DEMO_CANARY, demoModeOf, pointDemoAtLegacy } from '../../src/cli/demo-legacy.js';
import { main } from '../../src/cli/main.js';
import { ALL_CODES } from '../../src/legacy/endpoints.js';
import { LEGACY_STANDIN_CODES } from '../../src/legacy-standin/index.js';
import { loadRulesFile } from '../../src/rules/load.js';
import { projectPath } from './support.js';

const LOCAL = projectPath('rules', 'local.yaml');
const LEGACY = 'http://127.0.0.1:9002/ers-api';

let logSpy: MockInstance<typeof console.log>;
let errSpy: MockInstance<typeof console.error>;
beforeEach(() => {
  logSpy = vi.spyOn(console, 'log').mockImplementation(() => {});
  errSpy = vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
});
const out = () => logSpy.mock.calls.map((c) => c.join(' ')).join('\n');
const err = () => errSpy.mock.calls.map((c) => c.join(' ')).join('\n');

describe('demo --mode: the demo rules point their legacy side at the legacy stand-in', () => {
  it.each(['shadow', 'canary', 'passthrough'] as const)('%s', async (mode) => {
    const rules = await loadRulesFile(LOCAL);
    rules.legacy.tls = { certificate: 'env:C', privateKey: 'env:K' };
    rules.modes.routes = { A005: 'translate' };
    pointDemoAtLegacy(rules, mode, `${LEGACY}/`);
    expect(rules.legacy).toMatchObject({ baseUrl: LEGACY, production: false, host: 'api.dev3.ers.ncrs.nhs.uk' });
    expect(rules.legacy.tls).toBeUndefined();
    expect(rules.apim.production).toBe(false);
    expect(rules.modes.default).toBe(mode);
    // What the legacy stand-in answers follows the mode; every other operation translates.
    for (const code of LEGACY_STANDIN_CODES) expect(rules.modes.routes[code]).toBeUndefined();
    expect(rules.modes.routes['A015']).toBe('translate');
    expect(Object.keys(rules.modes.routes).sort()).toEqual(
      ALL_CODES.filter((c) => !LEGACY_STANDIN_CODES.includes(c)).sort(),
    );
    if (mode === 'canary') expect(rules.modes.canary).toEqual({ percent: 50, by: 'session' });
    else expect(rules.modes.canary).toBeUndefined();
    // shadow keeps its settings: the legacy stand-in answers, APIM gets the copy
    expect(rules.modes.shadow.primary).toBe('legacy');
  });

  it('takes translate (the default: no legacy side) and the three legacy modes, nothing else', () => {
    expect(demoModeOf(undefined)).toBe('translate');
    for (const m of ['translate', 'shadow', 'canary', 'passthrough']) expect(demoModeOf(m)).toBe(m);
    expect(demoModeOf('record')).toBeUndefined();
    expect(DEMO_CANARY).toEqual({ percent: 50, by: 'session' });
  });
});

describe('usage', () => {
  it('demo --help documents --mode and --legacy-port', async () => {
    expect(await main(['demo', '--help'])).toBe(0);
    expect(out()).toMatch(/\[--mode shadow\|canary\|passthrough \[--legacy-port <n>\]\]/);
    expect(out()).toMatch(/^ {2}--mode <mode> .*legacy stand-in/m);
    expect(out()).toMatch(/\/admin\/compare\/ui/);
  });

  it('emulate-legacy --help documents its options and what it answers', async () => {
    expect(await main(['emulate-legacy', '--help'])).toBe(0);
    const text = out();
    expect(text).toMatch(/^Usage: ers-bridge emulate-legacy \[--host <addr>\] \[--port <n>\]/m);
    for (const flag of ['--cert <file>', '--key <file>', '--mtls-ca <file>', '--public-url <url>', '--asid <asid>']) {
      expect(text).toContain(flag);
    }
    expect(text).toMatch(/A001\/A002\/A003/);
    expect(err()).toBe('');
  });

  it('the command list names emulate-legacy', async () => {
    expect(await main(['--help'])).toBe(0);
    expect(out()).toMatch(/^ {2}emulate-legacy +Run the legacy HSCN e-RS API stand-in/m);
  });

  it.each([
    [['demo', '--mode', 'record'], /demo: --mode: expected one of translate, passthrough, shadow, canary, got record/],
    [['demo', '--legacy-port', '9100'], /demo: --legacy-port goes with --mode/],
    [['emulate-legacy', '--mtls-ca', 'ca.pem'], /--mtls-ca needs --cert and --key/],
    [['emulate-legacy', '--cert', 'server.pem'], /--cert and --key go together/],
    [['emulate-legacy', '--asid', 'abc'], /--asid: expected 6 to 15 digits, got abc/],
    [['emulate-legacy', '--port', '70000'], /--port: expected a port number/],
    [['emulate-legacy', '--public-url', 'not a url'], /--public-url: expected a URL/],
    [
      ['emulate-legacy', '--cert', join('no', 'such.pem'), '--key', 'k.pem'],
      /--cert: cannot read no\/such\.pem \(ENOENT\)/,
    ],
  ])('%j → exit 2, one line saying what is wrong', async (args, message) => {
    expect(await main(args)).toBe(2);
    expect(err()).toMatch(message);
  });
});
