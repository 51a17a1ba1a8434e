import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { standInTlsFrom } from '../../src/cli/standins.js';
import { canaryBucket } from '../../src/pipeline/mode.js';
import { newSigningKey } from '../helpers/apim-app.js';
import { makeTempDir, projectPath } from './support.js';

const RULES_DIR = projectPath('rules');
const RULE_FILES = readdirSync(RULES_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => join(RULES_DIR, f));
const INT_RULES = join(RULES_DIR, 'int.yaml');

let logSpy: MockInstance<typeof console.log>;
let errSpy: MockInstance<typeof console.error>;

beforeEach(() => {
  logSpy = vi.spyOn(console, 'log').mockImplementation(() => {});
  errSpy = vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Everything printed to stdout / stderr, split in lines. */
function out(): string[] {
  return logSpy.mock.calls.flatMap((c) => c.map(String).join(' ').split('\n'));
}
function err(): string[] {
  return errSpy.mock.calls.flatMap((c) => c.map(String).join(' ').split('\n'));
}

const tmp = makeTempDir('ers-bridge-cli-');
afterAll(() => tmp.cleanup());

describe('ers-bridge rules check', () => {
  it('all shipped rules files → exit 0 and one "ok <file>" line each', async () => {
    const code = await main(['rules', 'check', ...RULE_FILES]);
    expect(code).toBe(0);
    expect(out()).toEqual(RULE_FILES.map((f) => `ok ${f}`));
    expect(err()).toEqual([]);
  });

  it('a broken file → exit 2 and exactly one stderr line "<file>: <path>: expected ..."', async () => {
    const broken = join(tmp.dir, 'broken.yaml');
    writeFileSync(broken, readFileSync(INT_RULES, 'utf8').replace('env:ERS_INT_API_KEY', 'literal-key-value'));
    const code = await main(['rules', 'check', broken]);
    expect(code).toBe(2);
    expect(err()).toHaveLength(1);
    expect(err()[0]).toMatch(/: expected /);
    expect(err()[0]!.startsWith(`${broken}: asids."200000000220".apim.apiKey: expected `)).toBe(true);
    expect(err()[0]).not.toContain('literal-key-value');
    expect(out()).toEqual([]);
  });

  it('good and bad files together: ok for the good one, one line for the bad one, exit 2', async () => {
    const broken = join(tmp.dir, 'broken-bf.yaml');
    writeFileSync(broken, readFileSync(INT_RULES, 'utf8').replace('SERVICE_PROVIDER_CLINICIAN', 'NOT_A_FUNCTION'));
    const code = await main(['rules', 'check', INT_RULES, broken]);
    expect(code).toBe(2);
    expect(out()).toEqual([`ok ${INT_RULES}`]);
    expect(err()).toHaveLength(1);
    expect(err()[0]).toMatch(
      new RegExp(
        `^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: asids\\."200000000220"\\.businessFunction: expected `,
      ),
    );
  });

  it('a missing file → exit 2 naming the file', async () => {
    const missing = join(tmp.dir, 'missing.yaml');
    expect(await main(['rules', 'check', missing])).toBe(2);
    expect(err()).toEqual([`${missing}: (top level): expected a readable rules file (ENOENT)`]);
  });

  it('no files → usage error, exit 2', async () => {
    expect(await main(['rules', 'check'])).toBe(2);
    expect(err().join('\n')).toMatch(/expected at least one rules file/);
  });

  it('an unknown option → exit 2', async () => {
    expect(await main(['rules', 'check', '--bogus', INT_RULES])).toBe(2);
    expect(err()).toHaveLength(1);
  });

  it('an unknown rules subcommand → exit 2', async () => {
    expect(await main(['rules', 'lint', INT_RULES])).toBe(2);
    expect(err().join('\n')).toMatch(/unknown subcommand "lint"/);
  });
});

describe('usage and help', () => {
  it('an unknown command → exit 2 with a hint', async () => {
    expect(await main(['frobnicate'])).toBe(2);
    expect(err()).toHaveLength(1);
    expect(err()[0]).toMatch(/unknown command "frobnicate"/);
    expect(err()[0]).toMatch(/--help/);
  });

  it.each([{ args: ['--help'] }, { args: ['-h'] }, { args: ['help'] }, { args: [] }])(
    '$args → exit 0 with the command list',
    async ({ args }) => {
      expect(await main(args)).toBe(0);
      const text = out().join('\n');
      expect(text).toMatch(/^Usage: ers-bridge <command>/m);
      for (const cmd of ['serve', 'demo', 'rules check', 'explain', 'emulate-apim']) expect(text).toContain(cmd);
      expect(text).toMatch(/Exit codes: 0 success, 1 run-time failure, 2 usage or configuration error/);
    },
  );

  it.each([
    [['serve', '--help'], /^Usage: ers-bridge serve --rules <file>/m],
    [['demo', '--help'], /^Usage: ers-bridge demo/m],
    [['rules', 'check', '--help'], /^Usage: ers-bridge rules check <file>\.\.\./m],
    [['rules', '--help'], /^Usage: ers-bridge rules check/m],
    [['explain', '--help'], /^Usage: ers-bridge explain <METHOD> <legacy-path> --rules <file>/m],
    [['explain', '-h'], /^Usage: ers-bridge explain/m],
    [['emulate-apim', '--help'], /^Usage: ers-bridge emulate-apim --rules <file>/m],
  ])('%j → exit 0 with its usage text', async (args, usage) => {
    expect(await main(args)).toBe(0);
    expect(out().join('\n')).toMatch(usage);
    expect(err()).toEqual([]);
  });

  it.each([['serve'], ['demo']])(
    '%s --help documents the ops port: --ops-port and OPS_PORT, like --port and PORT',
    async (cmd) => {
      expect(await main([cmd, '--help'])).toBe(0);
      const text = out().join('\n');
      expect(text).toMatch(new RegExp(`^Usage: ers-bridge ${cmd} .*\\[--ops-port <n>\\]`, 'm'));
      expect(text).toMatch(/^ {2}--ops-port <n> .*\/healthz, \/readyz, \/metrics \(default: \$OPS_PORT, else /m);
      expect(text).toMatch(/^ {2}--port <n> .*\(default: \$PORT, else /m);
    },
  );

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string };
    expect(await main(['--version'])).toBe(0);
    expect(out()).toEqual([pkg.version]);
  });
});

describe('ers-bridge explain', () => {
  const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';

  it('A005 for the int ASID → exit 0, APIM URL, masked Authorization, XAPI_ASID not forwarded', async () => {
    const code = await main(['explain', 'GET', A005, '--rules', INT_RULES, '--header', 'XAPI_ASID: 200000000220']);
    const text = out().join('\n');
    expect(code).toBe(0);
    expect(text).toMatch(/^A005 /m);
    expect(text).toContain('https://int.api.service.nhs.uk/referrals/FHIR/STU3/ReferralRequest/000000070000');
    const auth = out().find((l) => /^\s*authorization:/i.test(l));
    expect(auth).toBeDefined();
    expect(auth).toContain('env:ERS_INT_API_KEY');
    expect(auth).toMatch(/Bearer <[^>]+>/);
    const notForwarded = out().find((l) => /not forwarded/i.test(l));
    expect(notForwarded?.toLowerCase()).toContain('xapi_asid');
    // the ASID is never among the headers sent
    const sentBlock = text.slice(text.indexOf('headers sent to APIM'), text.indexOf('headers not forwarded'));
    expect(sentBlock.toLowerCase()).not.toContain('xapi_asid');
    expect(err()).toEqual([]);
  });

  it('never shows a real token even when the referenced variable is set', async () => {
    const real = 'REAL-API-KEY-9f8e7d6c5b4a';
    vi.stubEnv('ERS_INT_API_KEY', real);
    try {
      const code = await main(['explain', 'GET', A005, '--rules', INT_RULES, '--header', 'XAPI_ASID: 200000000220']);
      expect(code).toBe(0);
      expect(out().join('\n')).not.toContain(real);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('also lists other legacy-only headers as not forwarded', async () => {
    await main([
      'explain',
      'GET',
      A005,
      '--rules',
      INT_RULES,
      '--header',
      'XAPI_ASID: 200000000220',
      '--header',
      'HTTP_X_SESSION_KEY: pro-api-session:abc',
      '--header',
      'XAPI_FQDN: pas.trust.nhs.uk',
    ]);
    const line = out()
      .find((l) => /not forwarded/i.test(l))!
      .toLowerCase();
    for (const h of ['xapi_asid', 'http_x_session_key', 'xapi_fqdn']) expect(line).toContain(h);
    expect(out().join('\n')).not.toContain('pro-api-session:abc');
  });

  it('A011 for the application-restricted int ASID → exit 1 with a refusal line', async () => {
    const code = await main([
      'explain',
      'POST',
      '/ers-api/STU3/v1/ReferralRequest/$ers.createReferral',
      '--rules',
      INT_RULES,
      '--header',
      'XAPI_ASID: 200000000220',
    ]);
    expect(code).toBe(1);
    const refusal = out().find((l) => /refused/.test(l));
    expect(refusal).toBeDefined();
    expect(refusal).toContain('200000000220');
    expect(refusal).toMatch(/403/);
  });

  it('an A-code outside the ASID allowedCodes → exit 1', async () => {
    const code = await main([
      'explain',
      'GET',
      '/ers-api/R4/v1/HealthcareService/svc-1',
      '--rules',
      INT_RULES,
      '--header',
      'XAPI_ASID: 200000000220',
    ]);
    expect(code).toBe(1);
    expect(out().join('\n')).toMatch(/A033 is not in ASID 200000000220's allowedCodes/);
  });

  it('an unknown ASID → exit 1', async () => {
    const code = await main(['explain', 'GET', A005, '--rules', INT_RULES, '--header', 'XAPI_ASID: 111111111111']);
    expect(code).toBe(1);
    expect(out().join('\n')).toMatch(/ASID 111111111111 is not configured in int/);
  });

  it('a traversal path → exit 1, not translated', async () => {
    const code = await main([
      'explain',
      'GET',
      '/ers-api/STU3/v1/ReferralRequest/..%2f..%2fadmin',
      '--rules',
      INT_RULES,
    ]);
    expect(code).toBe(1);
    expect(out().join('\n')).toMatch(/^not translated: /m);
    expect(out().join('\n')).not.toMatch(/APIM:/);
  });

  it('the method is case-insensitive on the command line', async () => {
    expect(await main(['explain', 'get', A005, '--rules', INT_RULES])).toBe(0);
    expect(out().join('\n')).toMatch(
      /GET https:\/\/int\.api\.service\.nhs\.uk\/referrals\/FHIR\/STU3\/ReferralRequest\/000000070000/,
    );
  });

  /** int.yaml with a `modes` block. */
  function intWithModes(name: string, modes: string): string {
    const file = join(tmp.dir, `${name}.yaml`);
    const text = readFileSync(INT_RULES, 'utf8');
    if (!/^asids:/m.test(text)) throw new Error('test setup: int.yaml has no asids block');
    writeFileSync(file, text.replace(/^asids:/m, `modes:\n${modes}\nasids:`));
    return file;
  }

  it('--session: the canary side of that session; the key is never printed', async () => {
    const file = intWithModes('int-canary', '  default: canary\n  canary: { percent: 50 }');
    const key = 'pro-api-session:11111111-2222-4333-8444-555555555555';
    const side = canaryBucket(`session:${key}`) < 5000 ? 'APIM' : 'the legacy host';
    const args = ['explain', 'GET', A005, '--rules', file, '--header', 'XAPI_ASID: 200000000220'];
    expect(await main([...args, '--session', key])).toBe(0);
    const text = out().join('\n');
    expect(text).toMatch(
      /^mode: canary \(modes\.default\): 50% of sessions go to APIM, the others to the legacy host/m,
    );
    expect(text).toContain(`  this session goes to ${side} (canary bucket ${canaryBucket(`session:${key}`)} of 10000`);
    expect(text).not.toContain(key);
    logSpy.mockClear();
    expect(await main(args)).toBe(0);
    expect(out().join('\n')).toContain('  depends on the session: 50% of sessions go to APIM');
  });

  it('passthrough: the legacy host request with the headers as the client spells them', async () => {
    const file = intWithModes('int-passthrough', '  default: passthrough');
    const code = await main([
      'explain',
      'GET',
      A005,
      '--rules',
      file,
      '--header',
      'XAPI_ASID: 200000000220',
      '--header',
      'HTTP_X_SESSION_KEY: pro-api-session:abc',
    ]);
    expect(code).toBe(0);
    const text = out().join('\n');
    expect(text).toContain(
      'legacy host (answers): GET https://api.int1.ers.ncrs.nhs.uk/ers-api/STU3/v1/ReferralRequest/000000070000',
    );
    expect(text).toMatch(/^ {2}XAPI_ASID: 200000000220$/m);
    expect(text).toMatch(/^ {2}HTTP_X_SESSION_KEY: <the legacy host's own session key/m);
    expect(text).not.toContain('pro-api-session:abc');
    expect(text).not.toMatch(/^APIM/m);
  });

  it('a session call is answered by ers-bridge itself', async () => {
    expect(await main(['explain', 'POST', '/ers-api/v1/ProfessionalSession', '--rules', INT_RULES])).toBe(0);
    expect(out().join('\n')).toMatch(/^A001 .*nothing is sent to APIM/m);
  });

  it('missing arguments and bad --header → exit 2', async () => {
    expect(await main(['explain', 'GET', '--rules', INT_RULES])).toBe(2);
    expect(await main(['explain', 'GET', A005, '--rules', INT_RULES, '--header', 'no-colon'])).toBe(2);
    expect(err().join('\n')).toMatch(/--header expects 'Name: value'/);
  });

  it('a broken rules file → exit 2 with the one-line rules error', async () => {
    const broken = join(tmp.dir, 'explain-broken.yaml');
    writeFileSync(broken, readFileSync(INT_RULES, 'utf8').replace('baseUrl: https://', 'baseUrl: http://'));
    expect(await main(['explain', 'GET', A005, '--rules', broken])).toBe(2);
    expect(err()).toHaveLength(1);
    expect(err()[0]!.startsWith(`${broken}: apim.baseUrl: expected `)).toBe(true);
  });
});

describe('ers-bridge serve with unusable configuration', () => {
  it('a secret that cannot be resolved → exit 2, one line naming the file and field, no secret', async () => {
    const file = join(tmp.dir, 'int-missing-secret.yaml');
    writeFileSync(file, readFileSync(INT_RULES, 'utf8'));
    const saved = process.env['ERS_INT_API_KEY'];
    delete process.env['ERS_INT_API_KEY'];
    try {
      const code = await main(['serve', '--rules', file, '--port', '0']);
      expect(code).toBe(2);
      expect(err()).toEqual([
        `${file}: asids."200000000220".apim.apiKey: secret env:ERS_INT_API_KEY: environment variable ERS_INT_API_KEY is not set`,
      ]);
    } finally {
      if (saved !== undefined) process.env['ERS_INT_API_KEY'] = saved;
    }
  });

  it.each([
    {
      args: ['--port', '8090', '--ops-port', '8090'],
      env: undefined,
      error: /--ops-port: the ops surface needs a port of its own, not the legacy port 8090/,
    },
    { args: ['--ops-port', 'nine'], env: undefined, error: /--ops-port: expected a port number, got nine/ },
    { args: [], env: '70000', error: /OPS_PORT: expected a port number, got 70000/ },
  ])('serve $args (OPS_PORT=$env) → exit 2 before anything listens', async ({ args, env, error }) => {
    const saved = process.env['OPS_PORT'];
    if (env === undefined) delete process.env['OPS_PORT'];
    else process.env['OPS_PORT'] = env;
    try {
      expect(await main(['serve', '--rules', INT_RULES, ...args])).toBe(2);
      expect(err()).toHaveLength(1);
      expect(err()[0]).toMatch(error);
    } finally {
      if (saved === undefined) delete process.env['OPS_PORT'];
      else process.env['OPS_PORT'] = saved;
    }
  });

  it('serve without --rules or ERS_BRIDGE_RULES → exit 2', async () => {
    const saved = process.env['ERS_BRIDGE_RULES'];
    delete process.env['ERS_BRIDGE_RULES'];
    try {
      expect(await main(['serve'])).toBe(2);
      expect(err().join('\n')).toMatch(/--rules/);
    } finally {
      if (saved !== undefined) process.env['ERS_BRIDGE_RULES'] = saved;
    }
  });

  it('jwks prints a public JWKS for a private key and refuses a missing --kid', async () => {
    const { privateKeyPem: pem } = await newSigningKey('any');
    const file = join(tmp.dir, 'key.pem');
    writeFileSync(file, pem);
    expect(await main(['jwks', file, '--kid', 'int-1'])).toBe(0);
    const jwks = JSON.parse(out().join('\n'));
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', e: 'AQAB', kid: 'int-1', use: 'sig' });
    expect(jwks.keys[0].d).toBeUndefined(); // never the private part
    expect(await main(['jwks', file])).toBe(2);
  });
});

/** `text` with `from` replaced once; fails the test setup if `from` is not there. */
function replaced(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`test setup: ${String(from)} not found`);
  return out;
}

/** The 1-based line of the first line of `text` that starts with `prefix`. */
function lineOf(text: string, prefix: string): number {
  const i = text.split('\n').findIndex((l) => l.startsWith(prefix));
  if (i < 0) throw new Error(`test setup: no line starting ${prefix}`);
  return i + 1;
}

describe('ers-bridge rules check: every problem at once', () => {
  const INT = readFileSync(INT_RULES, 'utf8');

  it('three schema problems → exit 2 and three lines "<file>: <field>: expected …", in one run', async () => {
    const file = join(tmp.dir, 'three-problems.yaml');
    let text = replaced(INT, 'environment: int', 'environment: INT');
    text = replaced(text, 'odsCode: R69', 'odsCode: r69');
    text = replaced(text, 'businessFunction: SERVICE_PROVIDER_CLINICIAN', 'businessFunction: PORTER');
    writeFileSync(file, text);
    expect(await main(['rules', 'check', file])).toBe(2);
    expect(err()).toEqual([
      `${file}: environment: expected an environment name such as int or prod`,
      `${file}: asids."200000000220".organisation.odsCode: expected an ODS code such as R69 (3 to 10 capitals or digits)`,
      expect.stringMatching(
        new RegExp(`^${esc(file)}: asids\\."200000000220"\\.businessFunction: expected a business function: `),
      ),
    ]);
    expect(out()).toEqual([]);
  });

  it('an unknown field names the allowed one it was most likely meant to be', async () => {
    const file = join(tmp.dir, 'typos.yaml');
    let text = replaced(INT, '  tokenUrl:', '  tokenURL:');
    text = replaced(text, '    businessFunction:', '    bussinessFunction:');
    text = `${text}retries: 3\n`;
    writeFileSync(file, text);
    expect(await main(['rules', 'check', file])).toBe(2);
    const lines = err();
    const unknown = (path: string, what: string) =>
      `${file}: ${path}: unknown field ${what}: expected only the fields the schema defines (see schema/rules.schema.json)`;
    expect(lines).toContain(unknown('apim', '"tokenURL" (did you mean "tokenUrl"?)'));
    expect(lines).toContain(unknown('asids."200000000220"', '"bussinessFunction" (did you mean "businessFunction"?)'));
    // Nothing near "retries" among the top-level fields: no guess.
    expect(lines).toContain(unknown('(top level)', '"retries"'));
    // and the consequences are listed too (one line each)
    expect(lines).toContain(`${file}: apim.tokenUrl: expected tokenUrl when auth is signed-jwt`);
    for (const l of lines) expect(l.startsWith(`${file}: `)).toBe(true);
  });

  it('a key given twice names the key and both places', async () => {
    const file = join(tmp.dir, 'duplicates.yaml');
    const text = `${replaced(INT, 'environment: int\n', 'environment: int\nenvironment: dep\n')}  "200000000220":\n    accessMode: application-restricted\n`;
    writeFileSync(file, text);
    const env = lineOf(text, 'environment: ');
    const firstAsid = lineOf(text, '  "200000000220":');
    const lastAsid = text.split('\n').length - 2;
    expect(await main(['rules', 'check', file])).toBe(2);
    expect(err()).toEqual([
      `${file}: line ${env + 1}, column 1: expected valid YAML (DUPLICATE_KEY): environment is given twice, at line ${env}, column 1 and at line ${env + 1}, column 1; keep one`,
      `${file}: line ${lastAsid}, column 3: expected valid YAML (DUPLICATE_KEY): asids."200000000220" is given twice, at line ${firstAsid}, column 3 and at line ${lastAsid}, column 3; keep one`,
    ]);
  });

  it('every trust problem, once the schema passes', async () => {
    const file = join(tmp.dir, 'trust-problems.yaml');
    let text = replaced(INT, '  allowedHosts: [ers-bridge-int.example.nhs.uk]\n', '  host: 0.0.0.0\n');
    text = replaced(text, 'clientCertificates: required', 'clientCertificates: off');
    writeFileSync(file, text);
    expect(await main(['rules', 'check', file])).toBe(2);
    expect(err()).toEqual([
      `${file}: server.allowedHosts: expected allowedHosts (or legacy.publicBaseUrl) because ers-bridge listens on 0.0.0.0, not loopback: it answers only the Host names it is given`,
      `${file}: asids."200000000220".callerAuth.certificates: expected server.tls with clientCertificates required or optional, or server.trustedProxies: without either no client certificate ever arrives, so this ASID could never be used`,
    ]);
  });

  it('serve still stops at the first problem, with the same line rules check prints first', async () => {
    const file = join(tmp.dir, 'serve-first.yaml');
    writeFileSync(
      file,
      replaced(replaced(INT, 'environment: int', 'environment: INT'), 'odsCode: R69', 'odsCode: r69'),
    );
    expect(await main(['rules', 'check', file])).toBe(2);
    const first = err()[0];
    errSpy.mockClear();
    expect(await main(['serve', '--rules', file, '--port', '0'])).toBe(2);
    expect(err()).toEqual([first]);
  });

  it('--resolve-secrets lists every secret that cannot be resolved, one line each, exit 2', async () => {
    for (const name of ['ERS_INT_API_KEY', 'ERS_INT_USER_API_KEY', 'ERS_INT_USER_API_SECRET']) vi.stubEnv(name, '');
    try {
      expect(await main(['rules', 'check', '--resolve-secrets', INT_RULES])).toBe(2);
    } finally {
      vi.unstubAllEnvs();
    }
    const lines = err();
    const envLine = (path: string, name: string) =>
      `${INT_RULES}: ${path}: secret env:${name}: environment variable ${name} is not set`;
    expect(lines).toContain(envLine('asids."200000000220".apim.apiKey', 'ERS_INT_API_KEY'));
    expect(lines).toContain(envLine('asids."200000000230".apim.apiKey', 'ERS_INT_USER_API_KEY'));
    expect(lines).toContain(envLine('asids."200000000230".apim.apiSecret', 'ERS_INT_USER_API_SECRET'));
    for (const [path, ref] of [
      ['server.tls.certificate', '/run/secrets/ers-bridge-int-server.pem'],
      ['server.tls.privateKey', '/run/secrets/ers-bridge-int-server-key.pem'],
      ['server.tls.clientCa', '/run/secrets/spine-ca-int.pem'],
      ['cis2.clientAuth.privateKey', '/run/secrets/cis2-int-private-key.pem'],
      ['asids."200000000220".apim.privateKey', '/run/secrets/ers-int-private-key.pem'],
      ['asids."200000000230".apim.privateKey', '/run/secrets/ers-int-user-private-key.pem'],
    ]) {
      expect(lines).toContain(`${INT_RULES}: ${path}: secret file:${ref}: cannot read ${ref} (ENOENT)`);
    }
    expect(lines).toHaveLength(9);
    expect(out()).toEqual([]);
  });

  it('--resolve-secrets: once every secret resolves, a key serve could not use is refused (one line)', async () => {
    const local = join(RULES_DIR, 'local.yaml');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    const rsa = (await newSigningKey('any')).privateKeyPem;
    const secrets: Record<string, string> = {
      ERS_DEMO_CIS2_SECRET: 'cis2-secret-value-for-the-test',
      ERS_DEMO_API_KEY: 'demo-api-key',
      ERS_DEMO_PRIVATE_KEY: ec.toString(),
      ERS_DEMO_USER_API_KEY: 'demo-user-api-key',
      ERS_DEMO_USER_PRIVATE_KEY: rsa,
      ERS_DEMO_USER_API_SECRET: 'demo-user-api-secret',
    };
    for (const [k, v] of Object.entries(secrets)) vi.stubEnv(k, v);
    try {
      expect(await main(['rules', 'check', '--resolve-secrets', local])).toBe(2);
      expect(err()).toEqual([`${local}: asids."999000000001".apim.privateKey: expected an RSA private key, got ec`]);
      errSpy.mockClear();
      vi.stubEnv('ERS_DEMO_PRIVATE_KEY', rsa);
      expect(await main(['rules', 'check', '--resolve-secrets', local])).toBe(0);
      expect(out()).toEqual([`ok ${local}`]);
      expect(err()).toEqual([]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('--help says every problem is listed', async () => {
    expect(await main(['rules', 'check', '--help'])).toBe(0);
    expect(out().join('\n')).toMatch(/for every problem of each bad one/);
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('ers-bridge jwks', () => {
  const pemOf = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('an EC key → exit 2, one line naming the file, nothing printed', async () => {
    const file = join(tmp.dir, 'ec.pem');
    writeFileSync(file, pemOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    expect(await main(['jwks', file, '--kid', 'ec-1'])).toBe(2);
    expect(err()).toEqual([`ers-bridge: jwks: ${file}: expected an RSA private key, got ec`]);
    expect(out()).toEqual([]);
  });

  it('an Ed25519 key → exit 2', async () => {
    const file = join(tmp.dir, 'ed.pem');
    writeFileSync(file, pemOf(generateKeyPairSync('ed25519').privateKey));
    expect(await main(['jwks', file, '--kid', 'ed-1'])).toBe(2);
    expect(err()).toEqual([`ers-bridge: jwks: ${file}: expected an RSA private key, got ed25519`]);
  });

  it('an RSA key under 2048 bits → exit 2, naming its size', async () => {
    const file = join(tmp.dir, 'rsa-1024.pem');
    writeFileSync(file, pemOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey));
    expect(await main(['jwks', file, '--kid', 'small'])).toBe(2);
    expect(err()).toEqual([
      `ers-bridge: jwks: ${file}: expected an RSA key of at least 2048 bits (4096 recommended), got 1024`,
    ]);
    expect(out()).toEqual([]);
  });

  it('a public key, or no key at all → exit 2', async () => {
    const file = join(tmp.dir, 'public.pem');
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
    expect(await main(['jwks', file, '--kid', 'pub'])).toBe(2);
    expect(err()).toEqual([
      `ers-bridge: jwks: ${file}: expected a PEM RSA private key (PKCS#8 or PKCS#1); it could not be parsed`,
    ]);
  });

  it('several keys, each with its --kid → one JWKS with every public key, in order (rotation)', async () => {
    const a = join(tmp.dir, 'rot-a.pem');
    const b = join(tmp.dir, 'rot-b.pem');
    writeFileSync(a, (await newSigningKey('a')).privateKeyPem);
    writeFileSync(b, (await newSigningKey('b')).privateKeyPem);
    expect(await main(['jwks', a, '--kid', 'int-2025', b, '--kid', 'int-2026'])).toBe(0);
    const jwks = JSON.parse(out().join('\n'));
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual(['int-2025', 'int-2026']);
    for (const k of jwks.keys) {
      expect(k).toMatchObject({ kty: 'RSA', e: 'AQAB', use: 'sig', alg: 'RS512' });
      expect(k.d).toBeUndefined();
    }
    expect(jwks.keys[0].n).not.toBe(jwks.keys[1].n);
    expect(err()).toEqual([]);
  });

  it('a --kid missing for one of the keys, or a kid given twice → exit 2', async () => {
    const a = join(tmp.dir, 'rot-c.pem');
    writeFileSync(a, (await newSigningKey('c')).privateKeyPem);
    expect(await main(['jwks', a, '--kid', 'one', a])).toBe(2);
    expect(err()).toEqual([
      'ers-bridge: jwks: expected one --kid per key (the keyId in the rules file), got 2 keys and 1 --kid',
    ]);
    errSpy.mockClear();
    expect(await main(['jwks', a, '--kid', 'same', a, '--kid', 'same'])).toBe(2);
    expect(err()).toEqual(['ers-bridge: jwks: --kid same is given twice: each key needs a kid of its own']);
    expect(out()).toEqual([]);
  });

  it('--help documents several keys', async () => {
    expect(await main(['jwks', '--help'])).toBe(0);
    expect(out().join('\n')).toMatch(
      /^Usage: ers-bridge jwks <private-key\.pem> --kid <key id> \[<private-key\.pem> --kid <key id>\]\.\.\./m,
    );
  });
});

describe('ers-bridge compare report', () => {
  const RECORD = {
    at: '2026-01-05T10:00:00.000Z',
    aCode: 'A005',
    route: '/STU3/v1/ReferralRequest/{ubrn}',
    method: 'GET',
    asid: '999000000001',
    mode: 'shadow',
    primary: 'legacy',
    secondary: 'apim',
    result: {
      equal: false,
      statusEqual: true,
      primaryStatus: 200,
      secondaryStatus: 200,
      bodyKind: 'json',
      differences: [{ path: 'header:content-disposition', kind: 'only-primary', primary: 'inline;filename=f.txt' }],
      noise: [],
    },
    primaryMs: 12,
    secondaryMs: 30,
  };
  const CALLS = { at: '2026-01-05T10:00:01.000Z', calls: { '999000000001': { A005: 2, A004: 1 } } };
  const file = (name: string, text: string) => {
    const p = join(tmp.dir, name);
    writeFileSync(p, text);
    return p;
  };
  const good = () => `${JSON.stringify(RECORD)}\n${JSON.stringify(CALLS)}\n`;

  let writeSpy: MockInstance<typeof process.stdout.write>;
  let written: string[];
  beforeEach(() => {
    written = [];
    writeSpy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  });
  afterEach(() => writeSpy.mockRestore());

  it('a missing file → exit 1, one line naming it', async () => {
    const missing = join(tmp.dir, 'no-such-compare.jsonl');
    expect(await main(['compare', 'report', missing])).toBe(1);
    expect(err()).toEqual([`ers-bridge: compare report: ${missing}: cannot read it (ENOENT)`]);
    expect(out()).toEqual([]);
  });

  it('an unreadable file (a directory) → exit 1', async () => {
    const dir = join(tmp.dir, 'compare-dir.jsonl');
    mkdirSync(dir, { recursive: true });
    expect(await main(['compare', 'report', dir])).toBe(1);
    expect(err()).toEqual([
      `ers-bridge: compare report: ${dir}: is a directory, expected a comparison file (JSON lines)`,
    ]);
  });

  it.each([
    ['empty', ''],
    ['blank lines only', '\n\n  \n'],
  ])('an empty file (%s) → exit 1, not "0 comparisons"', async (_what, text) => {
    const p = file('empty-compare.jsonl', text);
    expect(await main(['compare', 'report', p])).toBe(1);
    expect(err()).toEqual([
      `ers-bridge: compare report: ${p}: is empty, expected comparison records (JSON lines, as comparison.file or replay --out write them)`,
    ]);
    expect(out()).toEqual([]);
  });

  it('a line that is not JSON → exit 1 naming the line', async () => {
    const p = file('garbage-compare.jsonl', `${JSON.stringify(RECORD)}\nnot json at all\n${JSON.stringify(CALLS)}\n`);
    expect(await main(['compare', 'report', p])).toBe(1);
    expect(err()).toEqual([`ers-bridge: compare report: ${p}: line 2 is not JSON`]);
  });

  it('JSON that is no comparison record (a recording, say) → exit 1', async () => {
    const p = file('recording-compare.jsonl', `${JSON.stringify({ at: RECORD.at, request: { method: 'GET' } })}\n`);
    expect(await main(['compare', 'report', p])).toBe(1);
    expect(err()).toEqual([
      `ers-bridge: compare report: ${p}: line 1 is not a comparison record (expected the JSON lines comparison.file or replay --out write; a recording is read by replay)`,
    ]);
  });

  it('a last line cut short by a writer stopped mid-write is left out; the rest is reported', async () => {
    const p = file('cut-compare.jsonl', `${good()}{"at":"2026-01-05T10:00:02.000Z","aCode":"A0`);
    expect(await main(['compare', 'report', p])).toBe(0);
    expect(out().join('\n')).toContain('1 comparison since 2026-01-05T10:00:00.000Z');
    expect(err()).toEqual([]);
  });

  it('a good file → exit 0 and the table', async () => {
    const p = file('good-compare.jsonl', good());
    expect(await main(['compare', 'report', p])).toBe(0);
    const text = out().join('\n');
    expect(text).toMatch(/^A005 .*header:content-disposition \(1\)$/m);
    expect(text).toMatch(/^999000000001\s+A004\s+1\s+yes\s+0\s+0\s+0\s+not compared yet$/m);
    expect(written).toEqual([]);
  });

  it('--csv → the summary as RFC 4180 CSV on stdout: operations, then readiness per ASID', async () => {
    const p = file('csv-compare.jsonl', good());
    expect(await main(['compare', 'report', p, '--csv'])).toBe(0);
    expect(out()).toEqual([]);
    const csv = written.join('');
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.split('\r\n')).toEqual([
      'section,a_code,operation,asid,compared,different,difference_rate,status_mismatches,secondary_errors,p50_primary_ms,p50_secondary_ms,top_fields,noise_fields,calls,app_restricted,failed_on_apim,verdict',
      'operation,A005,Retrieve referral request,,1,1,1,0,0,12,30,header:content-disposition (1),,,,,',
      'readiness,A004,,999000000001,0,0,,,,,,,,1,yes,0,not compared yet',
      'readiness,A005,,999000000001,1,1,,,,,,,,2,yes,0,answers differ',
      '',
    ]);
  });

  it('--help documents --csv', async () => {
    expect(await main(['compare', 'report', '--help'])).toBe(0);
    expect(out().join('\n')).toMatch(/^Usage: ers-bridge compare report <file\.jsonl> \[--csv\]/m);
  });
});

describe('serve: where the rules file is expected', () => {
  it('ERS_BRIDGE_RULES naming a missing file (the container default) → exit 2, one line naming the path to mount', async () => {
    const path = join(tmp.dir, 'etc-ers-bridge', 'rules.yaml');
    vi.stubEnv('ERS_BRIDGE_RULES', path);
    try {
      expect(await main(['serve'])).toBe(2);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(err()).toEqual([
      `ers-bridge: serve: no rules file at ${path} (the path ERS_BRIDGE_RULES names): mount the environment's rules file there (docker run -v <your rules.yaml>:${path}:ro …), set ERS_BRIDGE_RULES to another path, or give --rules <file>`,
    ]);
  });

  it('--rules naming a missing file → exit 2 with the rules error', async () => {
    const path = join(tmp.dir, 'missing-serve.yaml');
    expect(await main(['serve', '--rules', path])).toBe(2);
    expect(err()).toEqual([`${path}: (top level): expected a readable rules file (ENOENT)`]);
  });
});

describe('emulate-apim --cert/--key', () => {
  it('each is a file or env:NAME', () => {
    const cert = join(tmp.dir, 'standin-cert.pem');
    writeFileSync(cert, 'CERT PEM');
    expect(standInTlsFrom(cert, 'env:KEY_PEM', { KEY_PEM: 'KEY PEM' })).toEqual({ cert: 'CERT PEM', key: 'KEY PEM' });
    expect(standInTlsFrom(undefined, undefined)).toBeUndefined();
    expect(() => standInTlsFrom(join(tmp.dir, 'nope.pem'), 'env:KEY_PEM', { KEY_PEM: 'x' })).toThrow(
      /--cert: cannot read .*nope\.pem \(ENOENT\)/,
    );
  });

  it('one without the other → exit 2', async () => {
    expect(await main(['emulate-apim', '--rules', INT_RULES, '--cert', 'env:X'])).toBe(2);
    expect(err()).toEqual(['ers-bridge: emulate-apim: --cert and --key go together']);
  });

  it('env:NAME not set → exit 2 naming the variable', async () => {
    vi.stubEnv('ERS_TEST_NO_CERT', '');
    try {
      expect(
        await main(['emulate-apim', '--rules', INT_RULES, '--cert', 'env:ERS_TEST_NO_CERT', '--key', 'k.pem']),
      ).toBe(2);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(err()).toEqual([
      'ers-bridge: emulate-apim: --cert env:ERS_TEST_NO_CERT: environment variable ERS_TEST_NO_CERT is not set',
    ]);
  });
});
