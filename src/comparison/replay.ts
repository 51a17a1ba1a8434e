/**
 * `ers-bridge replay`: recorded legacy calls sent again through the translation to a target (the APIM of the rules
 * given), each answer compared with the recorded one — evidence from real traffic without a live legacy system.
 *
 * Recorded bodies are redacted, so the replayed answer is redacted the same way before the comparison: what was
 * redacted on one side compares equal to what is redacted on the other.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { identify } from '../legacy/identify.js';
import { faultFor, renderOutcome } from '../pipeline/faults.js';
import { runLegacyCall } from '../pipeline/flow.js';
import { captureAnswer } from '../pipeline/shadow.js';
import type { ModeSettings } from '../rules/schema.js';
import type { Runtime } from '../runtime/runtime.js';
import { newSessionKey, type Session } from '../sessions/session.js';
import { compareAnswers } from './diff.js';
import { comparisonOptionsFor } from './engine.js';
import { type RecordedBody, type RecordedCall, recordedBody } from './recorder.js';
import { ComparisonStore } from './store.js';
import type { CapturedAnswer } from './types.js';

/** The legacy base the replayed answers' links point at (folded away when comparing). */
const REPLAY_BASE = 'http://replay.invalid/ers-api';

export interface ReplayOutcome {
  total: number;
  replayed: number;
  skipped: Record<string, number>;
  store: ComparisonStore;
}

export async function readRecordedCalls(file: string): Promise<RecordedCall[]> {
  const out: RecordedCall[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as RecordedCall;
      if (r.v === 1 && typeof r.path === 'string' && typeof r.method === 'string') out.push(r);
    } catch {
      // not a recorded call
    }
  }
  return out;
}

function bodyBytes(b: RecordedBody | undefined): Buffer {
  if (!b) return Buffer.alloc(0);
  if (b.kind === 'json') return Buffer.from(JSON.stringify(b.json));
  if (b.kind === 'text') return Buffer.from(b.text);
  return Buffer.from(`sha256:${b.sha256}`); // files are compared by hash
}

function captured(
  side: string,
  status: number,
  headers: Record<string, string>,
  body: RecordedBody | undefined,
  ms: number,
): CapturedAnswer {
  const h = { ...headers };
  if (body?.kind === 'binary') h['content-type'] = 'application/octet-stream';
  return { side, status, headers: h, body: bodyBytes(body), ms };
}

/** A synthetic application-restricted session per ASID, as A001 + A002 would make it. */
async function sessionFor(rt: Runtime, asid: string, cache: Map<string, string>): Promise<string | undefined> {
  const known = cache.get(asid);
  if (known) return known;
  const cfg = rt.callers.get(asid)?.config;
  if (cfg?.accessMode !== 'application-restricted') return undefined;
  const permission = {
    businessFunction: cfg.businessFunction,
    orgIdentifier: cfg.organisation.odsCode,
    orgName: cfg.organisation.name,
  };
  const now = rt.shared.clock.now();
  const session: Session = {
    asid,
    accessMode: 'application-restricted',
    legacyToken: 'replay',
    user: {
      identifier: asid.padStart(12, '0').slice(-12),
      firstName: 'Replay',
      lastName: asid,
      middleName: null,
      permissions: [permission],
    },
    permission,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: now + 3_600_000,
  };
  const key = newSessionKey();
  await rt.shared.store.create(key, session);
  cache.set(asid, key);
  return key;
}

export interface ReplayOptions {
  onProgress?: (done: number, total: number, aCode: string) => void;
  store?: ComparisonStore;
  /**
   * The modes whose shadow settings (ignore rules, headers compared, presets) the comparison uses: the rules' own,
   * as live shadow uses them. Default `rt.rules.modes` (the CLI passes the file's modes, as it replays through
   * translate whatever they say).
   */
  modes?: ModeSettings;
}

export async function replayCalls(
  rt: Runtime,
  calls: RecordedCall[],
  options: ReplayOptions = {},
): Promise<ReplayOutcome> {
  const modes = options.modes ?? rt.rules.modes;
  const store = options.store ?? new ComparisonStore();
  const skipped: Record<string, number> = {};
  const skip = (why: string) => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  const sessions = new Map<string, string>();
  let replayed = 0;
  for (const [i, rec] of calls.entries()) {
    options.onProgress?.(i, calls.length, rec.aCode);
    const id = identify(rec.method, rec.path);
    if (id.kind !== 'endpoint') {
      skip('not a data call ers-bridge translates');
      continue;
    }
    if (!rt.callers.has(rec.asid)) {
      skip('ASID not in these rules');
      continue;
    }
    const key = await sessionFor(rt, rec.asid, sessions);
    if (!key) {
      skip('user-restricted ASID: needs a CIS2 user');
      continue;
    }
    if (rec.request.body?.kind === 'binary') {
      skip('file uploads are not kept in recordings');
      continue;
    }
    const body = bodyBytes(rec.request.body);
    const headers: Record<string, string> = {
      ...rec.request.headers,
      xapi_asid: rec.asid,
      http_x_session_key: key,
      'x-correlation-id': `replay-${i + 1}`,
      ...(body.length > 0 ? { 'content-length': String(body.length) } : {}),
    };
    const started = performance.now();
    // Replay runs the very flow live traffic runs; its errors come back as the legacy answers a client would get.
    const outcome = await runLegacyCall(rt, {
      method: rec.method,
      rawUrl: rec.path,
      headers,
      rawHeaders: Object.entries(headers).flat(),
      body: Readable.from(body.length > 0 ? [body] : []),
      legacyBase: REPLAY_BASE,
      signal: AbortSignal.timeout(rt.rules.apim.timeouts.headersMs),
    });
    const c = await captureAnswer(outcome.answer, 'apim', rt.rules.server.maxResponseRewriteBytes, started).catch(
      (e: unknown) => captureAnswer(renderOutcome(faultFor(e)), 'apim', Number.POSITIVE_INFINITY, started),
    );
    const status = c.answer.status;
    const answerHeaders = c.captured.headers;
    const answerBody = c.captured.body;
    const side = outcome.record.side ?? 'apim';
    const ms = performance.now() - started;
    const replayedBody = recordedBody(answerBody, answerHeaders['content-type']);
    const primary = captured('recorded', rec.answer.status, rec.answer.headers, rec.answer.body, 0);
    const secondary = captured(side, status, answerHeaders, replayedBody, ms);
    // The one engine: the same ignore rules and presets as live shadow for this operation (engine.ts).
    const result = compareAnswers(
      primary,
      secondary,
      comparisonOptionsFor(modes, id.endpoint, {
        // As live shadow folds them: the client's legacy base, the HSCN host's, and the legacy host's own (a
        // recording of passthrough or shadow traffic has the legacy host's links), and replay's.
        baseUrls: [
          rec.legacyBase,
          REPLAY_BASE,
          `https://${rt.rules.legacy.host}/ers-api`,
          rt.legacy.baseUrl.href.replace(/\/+$/, ''),
        ],
      }),
    );
    if (rec.answer.body?.kind === 'binary' && replayedBody?.kind === 'binary') {
      result.primarySize = rec.answer.body.size;
      result.secondarySize = replayedBody.size;
      result.primarySha256 = rec.answer.body.sha256;
      result.secondarySha256 = replayedBody.sha256;
    }
    store.add({
      at: new Date().toISOString(),
      aCode: id.endpoint.code,
      route: id.endpoint.legacyPath,
      method: rec.method,
      asid: rec.asid,
      mode: 'replay',
      primary: 'recorded',
      secondary: side,
      result,
      primaryMs: 0,
      secondaryMs: Math.round(ms),
      correlationId: `replay-${i + 1}`,
    });
    store.recordCall(rec.asid, id.endpoint.code);
    replayed++;
  }
  options.onProgress?.(calls.length, calls.length, '');
  for (const [asid, key] of sessions) await rt.shared.store.delete(key, asid);
  return { total: calls.length, replayed, skipped, store };
}

/** A one-line text progress bar. */
export function progressBar(done: number, total: number, width = 30): string {
  const share = total === 0 ? 1 : done / total;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${Math.round(share * 100)}%`;
}
