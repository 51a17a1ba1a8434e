import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareAnswers } from '../../../src/comparison/diff.js';
import { ComparisonStore, failedOnApim, redactRecord } from '../../../src/comparison/store.js';
import type { ComparisonRecord, FieldDifference } from '../../../src/comparison/types.js';
import { fixture, json, NHS_NUMBER_PATTERN, PATIENT_SECRETS, patient, record, result } from './support.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ers-bridge-comparison-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const diff = (path: string, primary: unknown = 'p', secondary: unknown = 's'): FieldDifference => ({
  path,
  kind: 'changed',
  primary,
  secondary,
});

const different = (...differences: FieldDifference[]) => result({ equal: false, differences });

describe('ComparisonStore aggregates', () => {
  it('counts comparisons per A-code', () => {
    const store = new ComparisonStore();
    store.add(record({ aCode: 'A005', primaryMs: 10, secondaryMs: 40 }));
    store.add(record({ aCode: 'A005', result: different(diff('status', 200, 404)), primaryMs: 30, secondaryMs: 50 }));
    store.add(
      record({
        aCode: 'A005',
        result: result({
          equal: false,
          statusEqual: false,
          secondaryStatus: 404,
          differences: [diff('status', 200, 404)],
        }),
        primaryMs: 20,
        secondaryMs: 60,
      }),
    );
    store.add(
      record({
        aCode: 'A006',
        result: result({ equal: false, statusEqual: false, secondaryStatus: 0 }),
        secondaryError: 'timed out',
      }),
    );
    const s = store.summary();
    expect(s.records).toBe(4);
    expect(s.codes.map((c) => c.aCode)).toEqual(['A005', 'A006']);
    expect(s.codes[0]).toMatchObject({
      aCode: 'A005',
      name: 'Retrieve referral request',
      compared: 3,
      different: 2,
      statusMismatches: 1,
      secondaryErrors: 0,
      p50PrimaryMs: 20,
      p50SecondaryMs: 50,
    });
    expect(s.codes[0]!.differenceRate).toBeCloseTo(2 / 3);
    expect(s.codes[1]).toMatchObject({
      aCode: 'A006',
      compared: 1,
      different: 1,
      differenceRate: 1,
      secondaryErrors: 1,
    });
  });

  it('orders topFields by count (then path), counts a path once per record, keeps three examples', () => {
    const store = new ComparisonStore();
    for (let i = 0; i < 5; i++)
      store.add(record({ result: different(diff('a.x', `p${i}`, `s${i}`), diff('a.x', 'dup', 'dup')) }));
    for (let i = 0; i < 2; i++) store.add(record({ result: different(diff('b.z'), diff('b.y')) }));
    const top = store.summary().codes[0]!.topFields;
    expect(top.map((f) => [f.path, f.count])).toEqual([
      ['a.x', 5],
      ['b.y', 2],
      ['b.z', 2],
    ]);
    expect(top[0]!.examples).toEqual([
      { primary: 'p0', secondary: 's0', count: 1 },
      { primary: 'p1', secondary: 's1', count: 1 },
      { primary: 'p2', secondary: 's2', count: 1 },
    ]);
  });

  it('keeps each pair of example values once, with how often it was seen, most frequent first', () => {
    const store = new ComparisonStore();
    store.add(record({ result: different(diff('meta.lastUpdated', 'a', 'b')) }));
    for (let i = 0; i < 4; i++) store.add(record({ result: different(diff('meta.lastUpdated', 'x', 'y')) }));
    store.add(record({ result: different(diff('meta.lastUpdated', 'a', 'b')) }));
    store.add(record({ result: different({ path: 'meta.lastUpdated', kind: 'only-primary', primary: 'x' }) }));
    const [field] = store.summary().codes[0]!.topFields;
    expect(field).toMatchObject({ path: 'meta.lastUpdated', count: 7 });
    expect(field!.examples).toEqual([
      { primary: 'x', secondary: 'y', count: 4 },
      { primary: 'a', secondary: 'b', count: 2 },
      { primary: 'x', count: 1 },
    ]);
  });

  it('tracks at most maxFieldsPerCode fields and counts the rest', () => {
    const store = new ComparisonStore({ maxFieldsPerCode: 2 });
    store.add(record({ result: different(diff('a'), diff('b'), diff('c')) }));
    store.add(record({ result: different(diff('c'), diff('a')) }));
    const c = store.summary().codes[0]!;
    expect(c.topFields.map((f) => [f.path, f.count])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect(c.untrackedFieldDifferences).toBe(2);
  });

  it('collects noise fields', () => {
    const store = new ComparisonStore();
    store.add(record({ result: result({ noise: ['meta.lastUpdated', 'id'] }) }));
    store.add(record({ result: result({ noise: ['id'] }) }));
    expect(store.summary().codes[0]!.noiseFields).toEqual(['id', 'meta.lastUpdated']);
  });

  it('keeps the latest records per A-code as samples, newest first, bounded', () => {
    const store = new ComparisonStore({ samplesPerCode: 3 });
    for (let i = 0; i < 5; i++) store.add(record({ correlationId: `c${i}` }));
    store.add(record({ aCode: 'A006', correlationId: 'other' }));
    expect(store.samples('A005').map((r) => r.correlationId)).toEqual(['c4', 'c3', 'c2']);
    expect(store.samples('A005', 1).map((r) => r.correlationId)).toEqual(['c4']);
    expect(store.samples('A099')).toEqual([]);
  });
});

describe('ComparisonStore readiness', () => {
  it('decides failedOnApim from the APIM side', () => {
    const r = (primaryStatus: number, secondaryStatus: number, extra: Partial<ComparisonRecord> = {}) =>
      record({
        result: result({ primaryStatus, secondaryStatus, statusEqual: primaryStatus === secondaryStatus }),
        ...extra,
      });
    expect(failedOnApim(r(200, 500))).toBe(true); // APIM 5xx
    expect(failedOnApim(r(200, 0, { secondaryError: 'timed out' }))).toBe(true); // no answer
    expect(failedOnApim(r(404, 404, { secondaryError: 'refused' }))).toBe(true);
    expect(failedOnApim(r(200, 403))).toBe(true); // differs from the legacy 2xx
    expect(failedOnApim(r(201, 200))).toBe(true);
    expect(failedOnApim(r(404, 404))).toBe(false); // same refusal on both sides
    expect(failedOnApim(r(404, 200))).toBe(false); // legacy failed, APIM did not
    expect(failedOnApim(r(200, 200, { result: different(diff('x')) }))).toBe(false); // body differences only
    expect(failedOnApim(r(503, 200, { primary: 'apim', secondary: 'legacy' }))).toBe(true); // APIM as primary
    expect(failedOnApim(r(400, 200, { primary: 'apim', secondary: 'legacy' }))).toBe(true);
    expect(failedOnApim(r(200, 500, { primary: 'legacy', secondary: 'legacy-int' }))).toBe(false); // no APIM side
  });

  it('reports per ASID: calls, app-restricted, compared, different, failed on APIM', () => {
    const store = new ComparisonStore({ appRestricted: (code) => code === 'A005' });
    for (let i = 0; i < 4; i++) store.recordCall('999000000001', 'A005');
    store.recordCall('999000000001', 'A010');
    store.recordCall('999000000002', 'A005');
    store.add(record({ asid: '999000000001' }));
    store.add(
      record({ asid: '999000000001', result: result({ equal: false, statusEqual: false, secondaryStatus: 500 }) }),
    );
    store.add(record({ asid: '999000000001', result: different(diff('x')) }));
    expect(store.summary().asids).toEqual([
      {
        asid: '999000000001',
        codes: [
          { aCode: 'A005', calls: 4, appRestrictedAllowed: true, compared: 3, different: 2, failedOnApim: 1 },
          { aCode: 'A010', calls: 1, appRestrictedAllowed: false, compared: 0, different: 0, failedOnApim: 0 },
        ],
      },
      {
        asid: '999000000002',
        codes: [{ aCode: 'A005', calls: 1, appRestrictedAllowed: true, compared: 0, different: 0, failedOnApim: 0 }],
      },
    ]);
  });

  it('takes appRestricted from the endpoint table by default', () => {
    const store = new ComparisonStore();
    store.recordCall('1', 'A005');
    store.recordCall('1', 'A010');
    expect(store.summary().asids[0]!.codes.map((c) => [c.aCode, c.appRestrictedAllowed])).toEqual([
      ['A005', true],
      ['A010', false],
    ]);
  });
});

describe('ComparisonStore file', () => {
  it('appends JSON lines asynchronously, and load() rebuilds the same summary', async () => {
    const file = join(dir, 'cmp', 'comparisons.jsonl');
    const store = new ComparisonStore({ file });
    store.recordCall('999000000001', 'A005');
    store.add(record({ result: different(diff('entry[0].resource.status', 'active', 'cancelled')) }));
    expect(existsSync(file)).toBe(false); // nothing written on the caller's turn
    store.recordCall('999000000001', 'A005');
    store.add(record({ aCode: 'A006', result: result({ noise: ['meta.lastUpdated'] }) }));
    await store.flush();
    store.recordCall('999000000002', 'A010');
    await store.close();
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.filter((o) => o.result).map((o) => o.aCode)).toEqual(['A005', 'A006']);
    expect(parsed.filter((o) => o.calls).length).toBeGreaterThanOrEqual(2);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const loaded = await ComparisonStore.load(file);
    expect(loaded.summary()).toEqual(store.summary());
    expect(loaded.samples('A005')).toEqual(store.samples('A005'));
  });

  it('rotates at maxBytes, keeping at most maxFiles files', async () => {
    const file = join(dir, 'c.jsonl');
    const store = new ComparisonStore({ file, maxBytes: 2000, maxFiles: 3 });
    for (let i = 0; i < 60; i++) {
      store.add(record({ correlationId: `c${i}`, result: different(diff('entry[0].resource.status')) }));
      if (i % 7 === 0) await store.flush();
    }
    await store.close();
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(['c.jsonl', 'c.jsonl.1', 'c.jsonl.2']);
    for (const n of names) expect((await stat(join(dir, n))).size).toBeLessThanOrEqual(2000);
    // The newest records are in the current file; load() reads the kept files oldest first.
    const loaded = await ComparisonStore.load(file);
    const ids = loaded.samples('A005', 100).map((r) => r.correlationId);
    expect(ids[0]).toBe('c59');
    expect(loaded.summary().records).toBeLessThan(60);
    expect(loaded.summary().records).toBeGreaterThan(10);
  });

  it('with maxFiles 1 starts the file afresh instead of keeping siblings', async () => {
    const file = join(dir, 'one.jsonl');
    const store = new ComparisonStore({ file, maxBytes: 1000, maxFiles: 1 });
    for (let i = 0; i < 20; i++) {
      store.add(record());
      await store.flush();
    }
    await store.close();
    expect(await readdir(dir)).toEqual(['one.jsonl']);
    expect((await stat(file)).size).toBeLessThanOrEqual(1000);
  });

  it('drops records when the write queue is full, and counts them', async () => {
    const file = join(dir, 'q.jsonl');
    const store = new ComparisonStore({ file, maxQueueBytes: 1500 });
    for (let i = 0; i < 20; i++) store.add(record());
    expect(store.dropped).toBeGreaterThan(0);
    await store.close();
    const s = store.summary();
    expect(s.records).toBe(20); // the aggregates count every record
    expect(s.dropped).toBe(store.dropped);
    const written = (await readFile(file, 'utf8')).trim().split('\n').length;
    expect(written).toBe(20 - store.dropped);
  });

  it('counts a failed write as dropped and never throws to the caller', async () => {
    await writeFile(join(dir, 'blocker'), 'x');
    const store = new ComparisonStore({ file: join(dir, 'blocker', 'c.jsonl') });
    store.add(record());
    await store.close();
    expect(store.writeErrors).toBe(1);
    expect(store.dropped).toBe(1);
    expect(store.summary().records).toBe(1);
  });

  it('load() skips lines that are not records and refuses a missing file', async () => {
    const file = join(dir, 'mixed.jsonl');
    await writeFile(file, `not json\n{"x":1}\n\n${JSON.stringify(record())}\n{"calls":{"1":{"A005":2}}}\n`);
    const s = (await ComparisonStore.load(file)).summary();
    expect(s.records).toBe(1);
    expect(s.asids[0]!.codes[0]).toMatchObject({ aCode: 'A005', calls: 2 });
    await expect(ComparisonStore.load(join(dir, 'missing.jsonl'))).rejects.toThrow(/No comparison records/);
  });
});

describe('ComparisonStore redaction', () => {
  const referral = fixture('stu3/retrieveReferralRequest/responses/Unbooked.json') as Record<string, unknown>;
  const withPatient = (nhs: string, family: string) => {
    const doc = structuredClone(referral);
    const p = patient(nhs) as any;
    p.name[0].family = family;
    doc.contained = [...(doc.contained as unknown[]), p];
    return doc;
  };
  const TOKEN = 'eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiI5NDM0NzY1OTE5In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
  const SESSION = 'pro-api-session:9b2c1a10-8a43-4f55-9ef0-5e7c4d7b7c11';

  it('writes no NHS number, name or token, whatever the records carried', async () => {
    const file = join(dir, 'r.jsonl');
    const store = new ComparisonStore({ file, maxBytes: 4000, maxFiles: 4 });
    const primary = json(withPatient('9434765919', 'Zzsmithers'));
    const secondary = json(withPatient('4857773456', 'Yyotherfamily'), { side: 'apim' });
    // A proper record from compareAnswers…
    store.add(record({ result: compareAnswers(primary, secondary) }));
    // …and careless ones, with raw values everywhere.
    store.add(
      record({
        route: '/STU3/v1/Patient/9434765919',
        correlationId: SESSION,
        secondaryError: `upstream said Bearer ${TOKEN} for 943 476 5919`,
        result: result({
          equal: false,
          differences: [
            { path: 'contained[3].name[0].family', kind: 'changed', primary: 'Zzsmithers', secondary: 'Yyotherfamily' },
            { path: 'contained[3].birthDate', kind: 'changed', primary: '1957-03-14', secondary: '1957-03-15' },
            { path: 'header:location', kind: 'changed', primary: `/x?session=${SESSION}`, secondary: TOKEN },
            { path: 'contained[3].address[0].line[0]', kind: 'only-primary', primary: '17 Quillfeather Row' },
          ],
          noise: ['id'],
        }),
        extraField: { note: 'patient 9434765919 Dr Jannicka Zzsmithers' },
      } as Partial<ComparisonRecord>),
    );
    for (let i = 0; i < 10; i++) store.add(record({ result: compareAnswers(primary, secondary) }));
    await store.close();

    const names = await readdir(dir);
    expect(names.length).toBeGreaterThan(1); // rotated files are scanned too
    const forbidden = [...PATIENT_SECRETS, 'Yyotherfamily', '4857773456', '9434765919', TOKEN, SESSION, 'eyJ'];
    for (const n of names) {
      const text = await readFile(join(dir, n), 'utf8');
      expect(NHS_NUMBER_PATTERN.test(text), n).toBe(false);
      for (const s of forbidden) expect(text, `${n}: ${s}`).not.toContain(s);
    }
    const shown = JSON.stringify([store.summary(), store.samples('A005', 100)]);
    for (const s of forbidden) expect(shown).not.toContain(s);
    // What differed is still visible, by path and kind.
    const fields = store.summary().codes[0]!.topFields.map((f) => f.path);
    expect(fields).toContain('contained[3].name[0].family');
    expect(fields).toContain('contained[3].identifier[0].value');
  });

  it('redacts the few-valued fields on every record, not only the first that carried a value', () => {
    // A-code, route, ASID and replica are redacted once per value and remembered: the remembered form is the
    // redacted one, for long values too (which are not remembered).
    const route = '/STU3/v1/Patient/9434765919/contact/jo.bloggs@nhs.net';
    const long = `${'x'.repeat(300)} 9434765919`;
    const records = [0, 1, 2].map(() =>
      redactRecord(record({ route, asid: 'Bearer abc.def', replica: long } as Partial<ComparisonRecord>)),
    );
    for (const r of records) {
      expect(r.route).toBe('/STU3/v1/Patient/[redacted:nhs-number]/contact/[redacted:email]');
      expect(r.asid).toBe('Bearer [redacted:token]');
      expect(r.replica).toBe(`${'x'.repeat(300)} [redacted:nhs-number]`);
    }
    // A value that needs nothing is kept as it is.
    expect(redactRecord(record({ route: '/ers-api/STU3/v1/ReferralRequest/{ubrn}' })).route).toBe(
      '/ers-api/STU3/v1/ReferralRequest/{ubrn}',
    );
  });

  it('keeps digests, sizes and statuses, and redacting twice changes nothing', () => {
    const r = record({
      result: result({
        equal: false,
        bodyKind: 'binary',
        primarySha256: 'a'.repeat(64),
        secondarySha256: 'b'.repeat(64),
        primarySize: 10,
        secondarySize: 11,
        differences: [diff('body', '10 bytes', '11 bytes'), diff('name[0].family', 'Smith', 'Smyth')],
      }),
    });
    const once = redactRecord(r);
    expect(once.result.primarySha256).toBe('a'.repeat(64));
    expect(once.result.secondarySize).toBe(11);
    expect(once.result.differences[1]).toEqual(diff('name[0].family', '[redacted:name]', '[redacted:name]'));
    expect(redactRecord(once)).toEqual(once);
  });
});
