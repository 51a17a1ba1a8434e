/** Builders of captured answers and records for the comparison tests. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CapturedAnswer, ComparisonRecord, ComparisonResult } from '../../../src/comparison/types.js';

export const EXAMPLES = join(import.meta.dirname, '../../../fixtures/ers-api/examples');

export function json(value: unknown, extra: Partial<CapturedAnswer> = {}): CapturedAnswer {
  return {
    side: 'legacy',
    status: 200,
    headers: { 'content-type': 'application/fhir+json;charset=UTF-8' },
    body: Buffer.from(JSON.stringify(value)),
    ms: 10,
    ...extra,
  };
}

export function raw(body: Buffer | string, contentType: string | undefined, extra: Partial<CapturedAnswer> = {}) {
  const answer: CapturedAnswer = {
    side: 'legacy',
    status: 200,
    headers: contentType ? { 'content-type': contentType } : {},
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
    ms: 10,
    ...extra,
  };
  return answer;
}

export function fixture(rel: string): unknown {
  return JSON.parse(readFileSync(join(EXAMPLES, rel), 'utf8'));
}

export function fixtureBytes(rel: string): Buffer {
  return readFileSync(join(EXAMPLES, rel));
}

/** Every file under the examples directory with the given extension. */
export function exampleFiles(ext: string, dir = EXAMPLES): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...exampleFiles(ext, p));
    else if (name.endsWith(ext)) out.push(p);
  }
  return out;
}

export function result(partial: Partial<ComparisonResult> = {}): ComparisonResult {
  return {
    equal: true,
    statusEqual: true,
    primaryStatus: 200,
    secondaryStatus: 200,
    bodyKind: 'json',
    differences: [],
    noise: [],
    ...partial,
  };
}

let seq = 0;
export function record(partial: Partial<ComparisonRecord> = {}): ComparisonRecord {
  seq++;
  return {
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    aCode: 'A005',
    route: '/STU3/v1/ReferralRequest/{ubrn}',
    method: 'GET',
    asid: '999000000001',
    mode: 'shadow',
    primary: 'legacy',
    secondary: 'apim',
    result: result(),
    primaryMs: 10,
    secondaryMs: 20,
    ...partial,
  };
}

/** A 10-digit number standing alone, or spaced 3-3-4: what an NHS number looks like in text. */
export const NHS_NUMBER_PATTERN = /(?<!\d)(?:\d{10}|\d{3} \d{3} \d{4})(?!\d)/;

/** A Patient with the personal details e-RS answers can carry (fictitious). */
export function patient(nhsNumber = '9434765919'): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id: `Patient-${nhsNumber}`,
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhsNumber }],
    name: [
      {
        use: 'official',
        family: 'Zzsmithers',
        given: ['Jannicka', 'Qwendoline'],
        prefix: ['Mrs'],
        text: 'Mrs Jannicka Zzsmithers',
      },
    ],
    birthDate: '1957-03-14',
    address: [
      {
        use: 'home',
        line: ['17 Quillfeather Row', 'Brindlecombe'],
        city: 'Leeds',
        district: 'West Yorkshire',
        postalCode: 'LS6 4QX',
      },
    ],
    telecom: [
      { system: 'phone', value: '0113 496 0123', use: 'home' },
      { system: 'email', value: 'jannicka.zzsmithers@example.org' },
    ],
    gender: 'female',
  };
}

/** The personal values of `patient()` (none may survive redaction). */
export const PATIENT_SECRETS = [
  'Zzsmithers',
  'Jannicka',
  'Qwendoline',
  '1957-03-14',
  'Quillfeather',
  'Brindlecombe',
  'LS6 4QX',
  '496 0123',
  'jannicka.zzsmithers@example.org',
];
