/**
 * The one way tests make rules: `rulesFor({...})` takes typed options, writes them as a rules file's YAML and reads
 * that back through the real loader (`parseRules`, the project's zod schema), so a mistake fails at once with the
 * loader's own message naming the field. `rulesText` gives the same YAML, checked the same way, for tests that
 * write a rules file (hot reload, child processes).
 *
 *   rulesFor({ apim: { baseUrl, tokenUrl }, asids: { '999000000001': {} } })
 *
 * gives one application-restricted ASID at R69 whose APIM application's secrets are `env:TEST_API_KEY` and
 * `env:TEST_PRIVATE_KEY` (kid test-1): what `newApimApp()` (test/helpers/apim-app.ts) registers at the stand-in and
 * puts in its `env`.
 */
import { stringify } from 'yaml';
import type { z } from 'zod';
import { parseRules } from '../../src/rules/load.js';
import type { Rules, RulesSchema } from '../../src/rules/schema.js';

/** What a rules file may hold, as the schema reads it (before its defaults). */
type RulesInput = z.input<typeof RulesSchema>;
type AsidInput = RulesInput['asids'][string];
type ApplicationAsidInput = Extract<AsidInput, { accessMode: 'application-restricted' }>;

/** The rules' reference to an APIM application's secrets (secret references, never the secrets). */
export interface ApimKeyRefs {
  apiKey: string;
  keyId: string;
  privateKey: string;
  /** User-restricted applications only: the API secret for the refresh grant. */
  apiSecret?: string;
}

/** The secrets' environment variable names for a prefix: TEST → TEST_API_KEY, TEST_PRIVATE_KEY, TEST_API_SECRET. */
export function keyEnvNames(prefix = 'TEST'): { apiKey: string; privateKey: string; apiSecret: string } {
  return { apiKey: `${prefix}_API_KEY`, privateKey: `${prefix}_PRIVATE_KEY`, apiSecret: `${prefix}_API_SECRET` };
}

/** The `apim` block of an ASID: env: references to the secrets of `keyEnvNames(prefix)`. */
export function keyRefs(options: { prefix?: string; kid?: string; withSecret?: boolean } = {}): ApimKeyRefs {
  const names = keyEnvNames(options.prefix);
  return {
    apiKey: `env:${names.apiKey}`,
    keyId: options.kid ?? (options.withSecret ? 'user-1' : 'test-1'),
    privateKey: `env:${names.privateKey}`,
    ...(options.withSecret ? { apiSecret: `env:${names.apiSecret}` } : {}),
  };
}

export interface AsidOptions {
  /** Default application-restricted. */
  accessMode?: AsidInput['accessMode'];
  description?: string;
  /**
   * The APIM application: default `keyRefs()` (TEST_*, kid test-1; user-restricted: with TEST_API_SECRET, kid
   * user-1). `false` for none (apim.auth none).
   */
  apim?: ApimKeyRefs | false;
  /** Application-restricted only; default R69, TEST NHS TRUST. */
  organisation?: ApplicationAsidInput['organisation'];
  /** Application-restricted only; default SERVICE_PROVIDER_CLINICIAN. */
  businessFunction?: ApplicationAsidInput['businessFunction'];
  /** Application-restricted only. */
  user?: ApplicationAsidInput['user'];
  allowedCodes?: string[];
}

export interface RulesOptions {
  /** The file name the loader's messages give; default test.yaml. */
  file?: string;
  /** Default test. */
  environment?: string;
  description?: string;
  /** Default { host: api.int1.ers.ncrs.nhs.uk }. */
  legacy?: RulesInput['legacy'];
  /** timeouts default to { connectMs: 2000, headersMs: 5000, bodyMs: 5000 }. */
  apim: RulesInput['apim'];
  asids: Record<string, AsidOptions>;
  server?: RulesInput['server'];
  modes?: RulesInput['modes'];
  comparison?: RulesInput['comparison'];
  record?: RulesInput['record'];
  admin?: RulesInput['admin'];
  cis2?: RulesInput['cis2'];
  sessions?: RulesInput['sessions'];
}

const TEST_TIMEOUTS = { connectMs: 2000, headersMs: 5000, bodyMs: 5000 } as const;

function asid(options: AsidOptions): AsidInput {
  const user = options.accessMode === 'user-restricted';
  const apim = options.apim === false ? undefined : (options.apim ?? keyRefs({ withSecret: user }));
  const common = {
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(apim ? { apim } : {}),
    ...(options.allowedCodes ? { allowedCodes: options.allowedCodes } : {}),
  };
  if (user) return { accessMode: 'user-restricted', ...common } as AsidInput;
  return {
    accessMode: 'application-restricted',
    ...common,
    organisation: options.organisation ?? { odsCode: 'R69', name: 'TEST NHS TRUST' },
    businessFunction: options.businessFunction ?? 'SERVICE_PROVIDER_CLINICIAN',
    ...(options.user ? { user: options.user } : {}),
  };
}

function document(options: RulesOptions): Record<string, unknown> {
  const { file: _file, asids, apim, legacy, environment, ...rest } = options;
  const doc: Record<string, unknown> = {
    environment: environment ?? 'test',
    legacy: legacy ?? { host: 'api.int1.ers.ncrs.nhs.uk' },
    apim: { ...apim, timeouts: apim.timeouts ?? { ...TEST_TIMEOUTS } },
    ...rest,
    asids: Object.fromEntries(Object.entries(asids).map(([id, a]) => [id, asid(a)])),
  };
  for (const [k, v] of Object.entries(doc)) if (v === undefined) delete doc[k];
  return doc;
}

/** The rules as a rules file's YAML; throws the loader's RulesError if they are not valid. */
export function rulesText(options: RulesOptions): string {
  const text = stringify(document(options));
  parseRules(text, options.file ?? 'test.yaml');
  return text;
}

/** Validated rules, read through the loader from the YAML of `rulesText(options)`. */
export function rulesFor(options: RulesOptions): Rules {
  return parseRules(stringify(document(options)), options.file ?? 'test.yaml');
}
