import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
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
