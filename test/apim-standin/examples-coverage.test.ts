import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalogue } from '../../src/apim-standin/catalogue.js';
import { BODY_EXAMPLES } from '../../src/apim-standin/examples.js';
import { ersFixturesDir } from '../../src/apim-standin/fixtures.js';
import { type BuiltApimStandIn, buildApimStandIn } from '../../src/apim-standin/index.js';
import { ALL_BUSINESS_FUNCTIONS, http, issueUserToken } from './helpers.js';

const EXAMPLES = join(ersFixturesDir(), 'examples');
let standIn: BuiltApimStandIn;
let userToken: string;

beforeAll(async () => {
  standIn = await buildApimStandIn({
    apps: [{ apiKey: 'coverage', asid: '999000000010', jwks: { keys: [] }, accessMode: 'user-restricted' }],
    users: {
      '555000000001': { roles: [{ odsCode: 'R69', orgName: 'R69 TRUST', businessFunctions: ALL_BUSINESS_FUNCTIONS }] },
    },
  });
  await standIn.listen();
  userToken = issueUserToken(standIn.state, 'coverage', '555000000001');
});

afterAll(async () => {
  await standIn?.close();
});

const substituted = (rel: string) => readFileSync(join(EXAMPLES, rel), 'utf8').replaceAll('_baseUrl_', standIn.baseUrl);

describe('every NHS example request is answered with its example response', () => {
  const cases = Object.entries(BODY_EXAMPLES).flatMap(([code, set]) =>
    readdirSync(join(EXAMPLES, set.dir, 'requests'))
      .filter((n) => n.endsWith('.json'))
      .map((name) => [code, set.dir, name] as const),
  );

  it.each(cases)('%s %s/requests/%s', async (code, dir, name) => {
    const op = loadCatalogue().find((o) => o.code === code)!;
    const set = BODY_EXAMPLES[code]!;
    const base = name.replace(/\.json$/, '');
    const responseRel = `${dir}/responses/${set.responses?.[base] ?? base}.json`;
    const response = JSON.parse(substituted(responseRel)) as { id?: string; resourceType?: string };
    const isError = response.resourceType === 'OperationOutcome';
    const pathId = response.resourceType === op.success.fhirResourceType && response.id ? response.id : '000000070000';
    const path = op.path.replace(/\{[^}]+\}/g, pathId);
    const role = op.businessFunctions.find((r) => r !== 'SERVICE_PROVIDER_CLINICIAN_ADMIN')!;
    const res = await http(`${standIn.baseUrl}${path}`, {
      method: op.method,
      headers: {
        authorization: `Bearer ${userToken}`,
        'nhsd-end-user-organisation-ods': 'R69',
        'nhsd-ers-business-function': role,
        'if-match': 'W/"1"',
        'content-type': 'application/fhir+json',
      },
      body: substituted(`${dir}/requests/${name}`),
    });
    expect(res.status, res.text).toBe(isError ? 422 : op.success.status);
    expect(res.text).toBe(substituted(responseRel));
  });
});
