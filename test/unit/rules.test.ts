import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRulesFile, parseRules, RulesError, validateRules } from '../../src/rules/load.js';
import { allowedKeysAt, closestKey, editDistance, secretReferences } from '../../src/rules/schema-walk.js';
import { maskSecret, SecretError, secretResolver } from '../../src/rules/secrets.js';
import { makeTempDir, projectPath } from './support.js';

const RULES_DIR = projectPath('rules');
const RULE_FILES = readdirSync(RULES_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const INT = readFileSync(join(RULES_DIR, 'int.yaml'), 'utf8');
const ASID = '200000000220';

const tmp = makeTempDir('ers-bridge-rules-');
afterAll(() => tmp.cleanup());

function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`test setup: ${String(from)} not found in int.yaml`);
  return out;
}

async function loadError(name: string, text: string): Promise<{ file: string; err: RulesError }> {
  const file = join(tmp.dir, `${name}.yaml`);
  writeFileSync(file, text);
  try {
    await loadRulesFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(RulesError);
    return { file, err: e as RulesError };
  }
  throw new Error(`${name}: expected a RulesError, the file was accepted`);
}

describe('the shipped rules files', () => {
  it('there are rules files for the documented environments', () => {
    for (const env of ['prod', 'int', 'dep', 'dev1', 'dev3', 'sandbox', 'local'])
      expect(RULE_FILES).toContain(`${env}.yaml`);
  });

  it.each(RULE_FILES)('%s parses and names its own environment', async (f) => {
    const rules = await loadRulesFile(join(RULES_DIR, f));
    expect(rules.environment).toBe(basename(f, '.yaml'));
    expect(Object.keys(rules.asids).length).toBeGreaterThan(0);
    expect(rules.apim.baseUrl).toMatch(/\/FHIR$/);
    if (rules.apim.auth === 'signed-jwt') {
      expect(rules.apim.tokenUrl).toBeDefined();
      for (const cfg of Object.values(rules.asids)) {
        expect(cfg.apim?.apiKey).toMatch(/^(env|file):/);
        expect(cfg.apim?.privateKey).toMatch(/^(env|file):/);
      }
    }
  });

  it('int.yaml: values and defaults', () => {
    const r = parseRules(INT, 'int.yaml');
    expect(r.apim.baseUrl).toBe('https://int.api.service.nhs.uk/referrals/FHIR');
    expect(r.apim.tokenUrl).toBe('https://int.api.service.nhs.uk/oauth2/token');
    expect(r.apim.auth).toBe('signed-jwt');
    expect(r.legacy.host).toBe('api.int1.ers.ncrs.nhs.uk');
    expect(r.asids[ASID]?.apim?.apiKey).toBe('env:ERS_INT_API_KEY');
    expect(r.asids[ASID]?.allowedCodes).toContain('A005');
    expect(r.asids[ASID]?.allowedCodes).not.toContain('A011');
    expect(r.server.host).toBe('127.0.0.1');
    expect(r.sessions.store).toBe('memory');
    expect(r.sessions.idleTimeoutSeconds).toBeGreaterThanOrEqual(30);
    expect(r.apim.timeouts.connectMs).toBeGreaterThanOrEqual(100);
  });

  it('trailing slashes of URLs are removed', () => {
    const r = parseRules(INT.replace('/referrals/FHIR', '/referrals/FHIR/'), 'int.yaml');
    expect(r.apim.baseUrl).toBe('https://int.api.service.nhs.uk/referrals/FHIR');
  });

  it.each([
    'http://127.0.0.1:9000/referrals/FHIR',
    'http://localhost:9000/referrals/FHIR',
    'http://[::1]:9000/referrals/FHIR',
  ])('plain http is allowed for loopback %s', (url) => {
    const r = parseRules(INT.replace('https://int.api.service.nhs.uk/referrals/FHIR', url), 'int.yaml');
    expect(r.apim.baseUrl).toBe(url);
  });
});

interface Broken {
  name: string;
  text: string;
  /** The field path the message must name (exactly, as RulesError.fieldPath). */
  path: string | RegExp;
  /** What the message must say was expected. */
  expected: RegExp;
  /** Text that must not appear in the message (e.g. a literal secret). */
  secret?: string;
}

const BROKEN: Broken[] = [
  {
    name: 'literal-api-key',
    text: replaceOnce(INT, 'env:ERS_INT_API_KEY', 'Zx8kq2mN4vLp7RtY'),
    path: `asids."${ASID}".apim.apiKey`,
    expected: /expected a secret reference "env:NAME" or "file:\/path"/,
    secret: 'Zx8kq2mN4vLp7RtY',
  },
  {
    name: 'literal-private-key',
    text: replaceOnce(
      INT,
      'file:/run/secrets/ers-int-private-key.pem',
      '"-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkq"',
    ),
    path: `asids."${ASID}".apim.privateKey`,
    expected: /expected a secret reference/,
    secret: 'MIIEvQIBADANBgkq',
  },
  {
    name: 'unknown-field-top',
    text: `${INT}retries: 3\n`,
    path: '',
    expected: /unknown field "retries": expected only the fields the schema defines/,
  },
  {
    name: 'unknown-field-asid',
    text: replaceOnce(INT, '    businessFunction:', '    colour: red\n    businessFunction:'),
    path: `asids."${ASID}"`,
    expected: /unknown field "colour"/,
  },
  {
    name: 'unknown-field-apim',
    text: replaceOnce(INT, '  tokenUrl:', '  retries: 3\n  tokenUrl:'),
    path: 'apim',
    expected: /unknown field "retries"/,
  },
  {
    name: 'bad-asid-letters',
    text: replaceOnce(INT, `"${ASID}":`, '"20000000022x":'),
    path: 'asids."20000000022x"',
    expected: /expected an ASID: 6 to 15 digits/,
  },
  {
    name: 'bad-asid-short',
    text: replaceOnce(INT, `"${ASID}":`, '"12345":'),
    path: 'asids."12345"',
    expected: /expected an ASID: 6 to 15 digits/,
  },
  {
    name: 'bad-business-function',
    text: replaceOnce(INT, 'businessFunction: SERVICE_PROVIDER_CLINICIAN', 'businessFunction: PORTER'),
    path: `asids."${ASID}".businessFunction`,
    expected: /expected a business function: .*SERVICE_PROVIDER_CLINICIAN/,
  },
  {
    name: 'http-base-url',
    text: replaceOnce(INT, 'baseUrl: https://', 'baseUrl: http://'),
    path: 'apim.baseUrl',
    expected: /expected the APIM e-RS base URL .*https:\/\/.*127\.0\.0\.1/,
  },
  {
    name: 'http-token-url',
    text: replaceOnce(INT, 'tokenUrl: https://', 'tokenUrl: http://'),
    path: 'apim.tokenUrl',
    expected: /expected the APIM token URL .*https:\/\//,
  },
  {
    name: 'http-lookalike-loopback',
    text: replaceOnce(INT, 'baseUrl: https://int.api.service.nhs.uk', 'baseUrl: http://localhost.attacker.example'),
    path: 'apim.baseUrl',
    expected: /https:\/\//,
  },
  {
    name: 'http-public-base-url',
    text: replaceOnce(
      INT,
      '  host: api.int1.ers.ncrs.nhs.uk\n',
      '  host: api.int1.ers.ncrs.nhs.uk\n  publicBaseUrl: http://bridge.trust.nhs.uk/ers-api\n',
    ),
    path: 'legacy.publicBaseUrl',
    expected: /https:\/\//,
  },
  {
    name: 'missing-token-url',
    text: replaceOnce(INT, / {2}tokenUrl: .*\n/, ''),
    path: 'apim.tokenUrl',
    expected: /expected tokenUrl when auth is signed-jwt/,
  },
  {
    name: 'missing-apim-application',
    text: replaceOnce(INT, / {4}apim:\n( {6}.*\n){3}/, ''),
    path: `asids."${ASID}".apim`,
    expected: /expected the APIM application \(apiKey, keyId, privateKey\)/,
  },
  {
    name: 'bad-yaml',
    text: replaceOnce(INT, 'legacy:\n', 'legacy: [\n'),
    path: /^line \d+, column \d+$/,
    expected: /expected valid YAML/,
  },
  {
    name: 'duplicate-keys',
    text: replaceOnce(INT, 'environment: int\n', 'environment: int\nenvironment: dep\n'),
    path: /^line \d+, column \d+$/,
    expected: /expected valid YAML \(DUPLICATE_KEY\)/,
  },
  {
    name: 'duplicate-asid',
    text: `${INT}  "${ASID}":\n    accessMode: application-restricted\n`,
    path: /^line \d+, column \d+$/,
    expected: /expected valid YAML \(DUPLICATE_KEY\)/,
  },
  {
    name: 'bad-allowed-code',
    text: replaceOnce(INT, '[A004, A005,', '[A004, A999,'),
    path: `asids."${ASID}".allowedCodes[1]`,
    expected: /expected an A-code ers-bridge knows: A004, A005/,
  },
  {
    name: 'bad-ods-code',
    text: replaceOnce(INT, 'odsCode: R69', 'odsCode: r69'),
    path: `asids."${ASID}".organisation.odsCode`,
    expected: /expected an ODS code/,
  },
  {
    name: 'bad-access-mode',
    text: replaceOnce(INT, 'accessMode: application-restricted', 'accessMode: anything-goes'),
    path: `asids."${ASID}".accessMode`,
    expected: /expected accessMode: application-restricted/,
  },
  {
    name: 'missing-environment',
    text: replaceOnce(INT, 'environment: int\n', ''),
    path: 'environment',
    expected: /missing: expected string/,
  },
  {
    name: 'no-asids',
    text: replaceOnce(INT, /asids:[\s\S]*/, 'asids: {}\n'),
    path: 'asids',
    expected: /expected at least one ASID/,
  },
];

describe('broken variants of int.yaml', () => {
  it.each(BROKEN)('$name → one RulesError line naming the file, the field and what was expected', async (c) => {
    const { file, err } = await loadError(c.name, c.text);
    expect(err.message).not.toContain('\n');
    expect(err.message).not.toContain('\r');
    expect(err.message.startsWith(`${file}: `)).toBe(true);
    expect(err.file).toBe(file);
    if (typeof c.path === 'string') {
      expect(err.fieldPath).toBe(c.path);
      expect(err.message.startsWith(`${file}: ${c.path || '(top level)'}: `)).toBe(true);
    } else {
      expect(err.fieldPath).toMatch(c.path);
      expect(err.message).toContain(`${file}: ${err.fieldPath}: `);
    }
    expect(err.message).toMatch(c.expected);
    expect(err.expected).toMatch(c.expected);
    if (c.secret) expect(err.message).not.toContain(c.secret);
  });

  it('a type error reads "expected <type>", not a doubled "expected Invalid input"', async () => {
    const { err } = await loadError('port-as-string', INT.replace('server:\n', 'server:\n  port: "8080"\n'));
    expect(err.fieldPath).toBe('server.port');
    expect(err.message).toMatch(/server\.port: expected .*number/);
    expect(err.message).not.toMatch(/expected Invalid input/);
  });

  it('an unreadable file is a RulesError naming the file', async () => {
    const missing = join(tmp.dir, 'does-not-exist.yaml');
    await expect(loadRulesFile(missing)).rejects.toThrow(RulesError);
    await expect(loadRulesFile(missing)).rejects.toThrow(
      `${missing}: (top level): expected a readable rules file (ENOENT)`,
    );
  });

  it('parseRules uses the file name it is given', () => {
    expect(() => parseRules('environment: 1', 'some/where.yaml')).toThrow(/^some\/where\.yaml: /);
  });
});

describe('secret references', () => {
  const files = makeTempDir('ers-bridge-secrets-');
  afterAll(() => files.cleanup());
  const env = { ERS_TEST_KEY: 'the-api-key-value', OTHER_SECRET: 'other-secret-value', EMPTY: '' };

  it('env:NAME resolves from the given environment', async () => {
    await expect(secretResolver(env, files.dir)('env:ERS_TEST_KEY')).resolves.toBe('the-api-key-value');
  });

  it('file:/abs resolves the file contents, trimmed', async () => {
    const p = join(files.dir, 'key.txt');
    writeFileSync(p, '  file-secret-value\n');
    await expect(secretResolver(env, files.dir)(`file:${p}`)).resolves.toBe('file-secret-value');
  });

  it('file:relative resolves against the base directory', async () => {
    mkdirSync(join(files.dir, 'sub'), { recursive: true });
    writeFileSync(join(files.dir, 'sub', 'k.pem'), 'pem-value');
    await expect(secretResolver(env, files.dir)('file:sub/k.pem')).resolves.toBe('pem-value');
  });

  async function secretError(ref: string): Promise<SecretError> {
    try {
      await secretResolver(env, files.dir)(ref);
    } catch (e) {
      expect(e).toBeInstanceOf(SecretError);
      return e as SecretError;
    }
    throw new Error(`${ref} resolved`);
  }

  it('a missing env var: the error names the reference and the variable, and holds no secret', async () => {
    const err = await secretError('env:ERS_NOT_SET');
    expect(err.ref).toBe('env:ERS_NOT_SET');
    expect(err.message).toContain('env:ERS_NOT_SET');
    expect(err.message).toMatch(/not set/);
    for (const v of Object.values(env)) if (v) expect(err.message).not.toContain(v);
  });

  it('an empty env var counts as missing', async () => {
    const err = await secretError('env:EMPTY');
    expect(err.message).toContain('env:EMPTY');
  });

  it('a missing file: the error names the reference and the code', async () => {
    const ref = `file:${join(files.dir, 'nope.pem')}`;
    const err = await secretError(ref);
    expect(err.ref).toBe(ref);
    expect(err.message).toContain(ref);
    expect(err.message).toContain('ENOENT');
  });

  it('an unreadable file (a directory): the error names the reference and holds no secret', async () => {
    writeFileSync(join(files.dir, 'real.pem'), 'real-secret-contents');
    const ref = `file:${files.dir}`;
    const err = await secretError(ref);
    expect(err.message).toContain(ref);
    expect(err.message).toContain('EISDIR');
    expect(err.message).not.toContain('real-secret-contents');
    for (const v of Object.values(env)) if (v) expect(err.message).not.toContain(v);
  });

  it('a reference of another kind is refused', async () => {
    const err = await secretError('vault:secret/x');
    expect(err).toBeInstanceOf(SecretError);
    expect(err.message).toMatch(/must be env:NAME or file:\/path/);
    // The value is not echoed: it may be a secret pasted where a reference belongs.
    expect(err.message).not.toContain('vault:secret/x');
    expect(err.ref).not.toContain('vault:secret/x');
    expect(err.ref).toBe('(not a reference)');
  });

  it('a SecretError is named as one (what logs and the CLI print before its message)', async () => {
    const err = await secretError('env:ERS_NOT_SET');
    expect(err.name).toBe('SecretError');
    expect(String(err)).toBe('SecretError: secret env:ERS_NOT_SET: environment variable ERS_NOT_SET is not set');
  });

  it('maskSecret never shows more than two characters of the value', () => {
    expect(maskSecret('abcd')).toBe('****');
    expect(maskSecret('')).toBe('****');
    const masked = maskSecret('supersecretvalue');
    expect(masked).not.toContain('supersecretvalue');
    expect(masked).not.toContain('per');
    expect(masked).toContain('16');
  });
});

describe('validateRules: every problem at once (rules check), parseRules the first (serve, reload)', () => {
  it('lists every schema issue, one RulesError each; parseRules throws the first of them', () => {
    let text = replaceOnce(INT, 'environment: int', 'environment: INT');
    text = replaceOnce(text, 'odsCode: R69', 'odsCode: r69');
    text = replaceOnce(text, 'tokenUrl: https://', 'tokenUrl: http://');
    const { rules, errors } = validateRules(text, 'int.yaml');
    expect(rules).toBeUndefined();
    expect(errors.map((e) => e.fieldPath)).toEqual([
      'environment',
      'apim.tokenUrl',
      `asids."${ASID}".organisation.odsCode`,
    ]);
    for (const e of errors) {
      expect(e).toBeInstanceOf(RulesError);
      expect(e.message).not.toContain('\n');
    }
    expect(() => parseRules(text, 'int.yaml')).toThrow(errors[0]!.message);
  });

  it('good rules: the rules and no errors', () => {
    const { rules, errors } = validateRules(INT, 'int.yaml');
    expect(errors).toEqual([]);
    expect(rules?.environment).toBe('int');
  });

  it('every YAML error, and nothing else, when the text is not valid YAML', () => {
    const text = `${replaceOnce(INT, 'environment: int\n', 'environment: int\nenvironment: dep\n')}description: again\n`;
    const { errors } = validateRules(text, 'int.yaml');
    expect(errors).toHaveLength(2);
    expect(errors[0]!.expected).toMatch(
      /^expected valid YAML \(DUPLICATE_KEY\): environment is given twice, at line 3, column 1 and at line 4, column 1; keep one$/,
    );
    expect(errors[1]!.expected).toMatch(
      /^expected valid YAML \(DUPLICATE_KEY\): description is given twice, at line 5, column 1 and at line \d+, column 1; keep one$/,
    );
  });

  it('a duplicate deep in the file is named by its whole path', () => {
    const text = replaceOnce(INT, '      keyId: int-1\n', '      keyId: int-1\n      keyId: int-2\n');
    const [e] = validateRules(text, 'int.yaml').errors;
    expect(e!.expected).toMatch(
      /: asids\."200000000220"\.apim\.keyId is given twice, at line \d+, column 7 and at line \d+, column 7; keep one$/,
    );
  });
});

describe('unknown fields: "did you mean …?" from the fields the schema allows there', () => {
  const LOCAL = readFileSync(join(RULES_DIR, 'local.yaml'), 'utf8');
  const messageFor = (text: string) => validateRules(text, 'x.yaml').errors.map((e) => e.message);

  it.each([
    ['a case slip', replaceOnce(INT, '  tokenUrl:', '  tokenURL:'), 'apim', 'tokenURL', 'tokenUrl'],
    ['snake case', replaceOnce(INT, '  tokenUrl:', '  token_url:'), 'apim', 'token_url', 'tokenUrl'],
    ['a transposition', replaceOnce(INT, '  rateLimit:', '  rateLimti:'), 'apim', 'rateLimti', 'rateLimit'],
    ['a missing letter, top level', replaceOnce(INT, 'server:\n', 'sever:\n'), '(top level)', 'sever', 'server'],
    [
      "in an application-restricted ASID (the accessMode's fields)",
      replaceOnce(INT, '    businessFunction:', '    bussinessFunction:'),
      `asids."${ASID}"`,
      'bussinessFunction',
      'businessFunction',
    ],
    [
      'in a user-restricted ASID: testUsers, which only that access mode has',
      replaceOnce(LOCAL, '    accessMode: user-restricted\n', '    accessMode: user-restricted\n    testUser: {}\n'),
      'asids."999000000002"',
      'testUser',
      'testUsers',
    ],
    [
      "in cis2.clientAuth: the method's fields",
      replaceOnce(LOCAL, '    secret: env:ERS_DEMO_CIS2_SECRET', '    secrets: env:ERS_DEMO_CIS2_SECRET'),
      'cis2.clientAuth',
      'secrets',
      'secret',
    ],
  ])('%s', (_what, text, path, unknown, meant) => {
    expect(messageFor(text)).toContain(
      `x.yaml: ${path}: unknown field "${unknown}" (did you mean "${meant}"?): expected only the fields the schema defines (see schema/rules.schema.json)`,
    );
  });

  it('no guess when nothing allowed is near', () => {
    const [m] = messageFor(replaceOnce(INT, '    businessFunction:', '    colour: red\n    businessFunction:'));
    expect(m).toBe(
      `x.yaml: asids."${ASID}": unknown field "colour": expected only the fields the schema defines (see schema/rules.schema.json)`,
    );
  });

  it('allowedKeysAt follows the data through unions and records', () => {
    const data = { asids: { [ASID]: { accessMode: 'application-restricted' } } };
    expect(allowedKeysAt(['asids', ASID], data)).toContain('organisation');
    expect(allowedKeysAt(['asids', ASID], data)).not.toContain('testUsers');
    expect(allowedKeysAt(['apim', 'timeouts'], {}).sort()).toEqual(['bodyMs', 'connectMs', 'headersMs']);
    expect(allowedKeysAt(['environment'], {})).toEqual([]);
  });

  it('closestKey and editDistance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(closestKey('hots', ['host', 'port'])).toBe('host');
    expect(closestKey('retries', ['baseUrl', 'timeouts', 'auth'])).toBeUndefined();
    expect(closestKey('ca', ['auth', 'ca'])).toBe('ca');
    expect(closestKey('x', ['y'])).toBeUndefined();
  });
});

describe('secretReferences: every secret reference a rules file holds, where it is', () => {
  it('int.yaml: the TLS files, the CIS2 key and every APIM application secret', () => {
    const refs = secretReferences(parseRules(INT, 'int.yaml')).map((r) => `${r.path.join('.')}=${r.ref}`);
    expect(refs).toEqual([
      'server.tls.certificate=file:/run/secrets/ers-bridge-int-server.pem',
      'server.tls.privateKey=file:/run/secrets/ers-bridge-int-server-key.pem',
      'server.tls.clientCa=file:/run/secrets/spine-ca-int.pem',
      'cis2.clientAuth.privateKey=file:/run/secrets/cis2-int-private-key.pem',
      `asids.${ASID}.apim.apiKey=env:ERS_INT_API_KEY`,
      `asids.${ASID}.apim.privateKey=file:/run/secrets/ers-int-private-key.pem`,
      'asids.200000000230.apim.apiKey=env:ERS_INT_USER_API_KEY',
      'asids.200000000230.apim.privateKey=file:/run/secrets/ers-int-user-private-key.pem',
      'asids.200000000230.apim.apiSecret=env:ERS_INT_USER_API_SECRET',
    ]);
  });

  it('a Redis URL only when it is a reference; free text that looks like one is no secret', () => {
    const redis = (url: string) =>
      `${replaceOnce(INT, 'server:\n', `sessions:\n  store: redis\n  redis: { url: "${url}" }\n  encryption: { current: k1, keys: { k1: env:SESSION_KEY_1 } }\nserver:\n`)}`;
    const pathsOf = (text: string) => secretReferences(parseRules(text, 'int.yaml')).map((r) => r.path.join('.'));
    expect(pathsOf(redis('env:ERS_REDIS_URL'))).toContain('sessions.redis.url');
    expect(pathsOf(redis('redis://redis:6379'))).not.toContain('sessions.redis.url');
    expect(pathsOf(redis('redis://redis:6379'))).toContain('sessions.encryption.keys.k1');
    const described = replaceOnce(INT, /^description: .*$/m, 'description: env:NOT_A_SECRET');
    expect(parseRules(described, 'int.yaml').description).toBe('env:NOT_A_SECRET');
    expect(secretReferences(parseRules(described, 'int.yaml')).map((r) => r.ref)).not.toContain('env:NOT_A_SECRET');
  });
});

describe('sessions.redis.sentinel: Redis Sentinel instead of one URL (issue 16)', () => {
  const withRedis = (redisYaml: string) =>
    replaceOnce(
      INT,
      'server:\n',
      `sessions:\n  store: redis\n  redis:\n${redisYaml}  encryption: { current: k1, keys: { k1: env:SESSION_KEY_1 } }\nserver:\n`,
    );
  const SENTINEL =
    '    sentinel:\n      sentinels: ["sentinel-0:26379", "sentinel-1:26379", "[fd00::2]:26379"]\n      masterName: ers-sessions\n';

  it('takes sentinels, a master name and credentials as secret references; TLS off unless asked', () => {
    const r = parseRules(
      withRedis(
        `${SENTINEL}      username: ers\n      password: env:REDIS_PASSWORD\n      sentinelPassword: file:/run/secrets/s\n`,
      ),
      'int.yaml',
    );
    expect(r.sessions.redis).toMatchObject({
      sentinel: {
        sentinels: ['sentinel-0:26379', 'sentinel-1:26379', '[fd00::2]:26379'],
        masterName: 'ers-sessions',
        username: 'ers',
        password: 'env:REDIS_PASSWORD',
        sentinelPassword: 'file:/run/secrets/s',
        tls: false,
      },
      keyPrefix: 'ers-bridge:',
    });
    expect(r.sessions.redis?.url).toBeUndefined();
    const paths = secretReferences(r).map((x) => x.path.join('.'));
    expect(paths).toContain('sessions.redis.sentinel.password');
    expect(paths).toContain('sessions.redis.sentinel.sentinelPassword');
  });

  it('refuses both url and sentinel, neither, a literal password, and a sentinel without a port', () => {
    expect(() => parseRules(withRedis(`    url: redis://r:6379\n${SENTINEL}`), 'int.yaml')).toThrow(
      'int.yaml: sessions.redis: expected either url (one Redis node) or sentinel (Redis Sentinel), not both and not neither',
    );
    expect(() => parseRules(withRedis('    keyPrefix: "x:"\n'), 'int.yaml')).toThrow(
      'expected either url (one Redis node) or sentinel (Redis Sentinel), not both and not neither',
    );
    expect(() => parseRules(withRedis(`${SENTINEL}      password: hunter2\n`), 'int.yaml')).toThrow(
      /sessions\.redis\.sentinel\.password: expected a secret reference "env:NAME" or "file:\/path"/,
    );
    expect(() =>
      parseRules(withRedis('    sentinel:\n      sentinels: ["sentinel-0"]\n      masterName: m\n'), 'int.yaml'),
    ).toThrow('expected a sentinel as host:port (e.g. redis-sentinel-0:26379 or [::1]:26379)');
    expect(() =>
      parseRules(withRedis('    sentinel:\n      sentinels: []\n      masterName: m\n'), 'int.yaml'),
    ).toThrow('expected at least one sentinel (three or more, on different machines, for a quorum)');
  });

  it('acknowledgement: one replica within 500 ms by default, and shorter than the command timeout', () => {
    const r = parseRules(withRedis('    url: redis://r:6379\n    acknowledgement: {}\n'), 'int.yaml');
    expect(r.sessions.redis?.acknowledgement).toEqual({ replicas: 1, timeoutMs: 500 });
    expect(
      parseRules(withRedis('    url: redis://r:6379\n'), 'int.yaml').sessions.redis?.acknowledgement,
    ).toBeUndefined();
    expect(() =>
      parseRules(
        withRedis('    url: redis://r:6379\n    timeoutMs: 1000\n    acknowledgement: { timeoutMs: 1000 }\n'),
        'int.yaml',
      ),
    ).toThrow(
      'int.yaml: sessions.redis.acknowledgement.timeoutMs: expected less than sessions.redis.timeoutMs (1000), which bounds every Redis command',
    );
    expect(() =>
      parseRules(withRedis('    url: redis://r:6379\n    acknowledgement: { replicas: 17 }\n'), 'int.yaml'),
    ).toThrow(/sessions\.redis\.acknowledgement\.replicas/);
  });
});

describe('sessions.redis.cluster: Redis Cluster instead of one URL or Sentinel (issue 16)', () => {
  const withRedis = (redisYaml: string) =>
    replaceOnce(
      INT,
      'server:\n',
      `sessions:\n  store: redis\n  redis:\n${redisYaml}  encryption: { current: k1, keys: { k1: env:SESSION_KEY_1 } }\nserver:\n`,
    );
  const CLUSTER = '    cluster:\n      nodes: ["redis-0:6379", "10.0.0.2:6380", "[fd00::3]:6379"]\n';

  it('takes seed nodes, an ACL user and a password as a secret reference; TLS off unless asked', () => {
    const r = parseRules(
      withRedis(`${CLUSTER}      username: ers\n      password: env:REDIS_PASSWORD\n      tls: true\n`),
      'int.yaml',
    );
    expect(r.sessions.redis).toMatchObject({
      cluster: {
        nodes: ['redis-0:6379', '10.0.0.2:6380', '[fd00::3]:6379'],
        username: 'ers',
        password: 'env:REDIS_PASSWORD',
        tls: true,
      },
      keyPrefix: 'ers-bridge:',
    });
    expect(r.sessions.redis?.url).toBeUndefined();
    expect(r.sessions.redis?.sentinel).toBeUndefined();
    expect(parseRules(withRedis(CLUSTER), 'int.yaml').sessions.redis?.cluster?.tls).toBe(false);
    expect(secretReferences(r).map((x) => x.path.join('.'))).toContain('sessions.redis.cluster.password');
  });

  it('with acknowledgement: writes held by the replicas of the slot’s primary', () => {
    const r = parseRules(withRedis(`${CLUSTER}    acknowledgement: { replicas: 1 }\n`), 'int.yaml');
    expect(r.sessions.redis?.acknowledgement).toEqual({ replicas: 1, timeoutMs: 500 });
  });

  it('refuses cluster beside url or sentinel, no seed node, a node without a port, and a literal password', () => {
    expect(() => parseRules(withRedis(`    url: redis://r:6379\n${CLUSTER}`), 'int.yaml')).toThrow(
      'int.yaml: sessions.redis: expected cluster (Redis Cluster) alone, without url or sentinel',
    );
    expect(() =>
      parseRules(
        withRedis(`${CLUSTER}    sentinel:\n      sentinels: ["s-0:26379"]\n      masterName: m\n`),
        'int.yaml',
      ),
    ).toThrow('expected cluster (Redis Cluster) alone, without url or sentinel');
    expect(() => parseRules(withRedis('    cluster:\n      nodes: []\n'), 'int.yaml')).toThrow(
      'sessions.redis.cluster.nodes: expected at least one seed node',
    );
    expect(() => parseRules(withRedis('    cluster:\n      nodes: ["redis-0"]\n'), 'int.yaml')).toThrow(
      'expected a cluster node as host:port (e.g. redis-0:6379 or [::1]:6379)',
    );
    expect(() => parseRules(withRedis(`${CLUSTER}      password: hunter2\n`), 'int.yaml')).toThrow(
      /sessions\.redis\.cluster\.password: expected a secret reference "env:NAME" or "file:\/path"/,
    );
    expect(() => parseRules(withRedis(`${CLUSTER}      tlsCa: x\n`), 'int.yaml')).toThrow(/tlsCa/);
    // Neither of the three: the message names the cluster too.
    expect(() => parseRules(withRedis('    keyPrefix: "x:"\n'), 'int.yaml')).toThrow(
      'or cluster, for Redis Cluster, instead of both',
    );
  });
});
