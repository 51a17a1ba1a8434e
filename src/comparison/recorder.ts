/**
 * Recording legacy traffic for `ers-bridge replay`: each data call and its answer as one redacted JSON line.
 *
 * What is kept: the method, the path (UBRNs and codes are not patient identifiers), the ASID, a few request
 * headers that shape the call, and the bodies — JSON redacted field by field, other text redacted, binary files
 * as size and SHA-256 only. Never a session key, token, cookie or Authorization.
 */

import { createHash } from 'node:crypto';
import { isJsonContentType } from '../http/media-type.js';
import { JsonlWriter } from './jsonl-writer.js';
import { redactJson, redactText } from './redact.js';

export type RecordedBody =
  | { kind: 'json'; json: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'binary'; size: number; sha256: string };

export interface RecordedCall {
  v: 1;
  at: string;
  aCode: string;
  method: string;
  /** The request target as the client sent it, under /ers-api. */
  path: string;
  asid: string;
  /** The legacy base URL the client used (links in bodies are folded against it when comparing). */
  legacyBase: string;
  request: { headers: Record<string, string>; body?: RecordedBody };
  answer: { side: string; status: number; headers: Record<string, string>; body?: RecordedBody };
}

/** Request headers worth replaying; all others (session key, tokens, cookies) are never recorded. */
const REQUEST_HEADERS = [
  'accept',
  'content-type',
  'if-match',
  'x-ers-xapi-comm-rule-org',
  'x-ers-xapi-meta-file_name',
  'x-ers-xapi-meta-intended_ubrn',
];
const ANSWER_HEADERS = ['content-type', 'etag', 'location', 'content-disposition'];

/** A body as it is recorded: redacted JSON, redacted text, or (files) its size and hash. */
export function recordedBody(body: Buffer | undefined, contentType: string | undefined): RecordedBody | undefined {
  if (!body || body.length === 0) return undefined;
  if (isJsonContentType(contentType)) {
    try {
      return { kind: 'json', json: redactJson(JSON.parse(body.toString('utf8'))) };
    } catch {
      // not JSON after all: falls through to text or binary
    }
  }
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media.startsWith('text/') && body.length <= 64 * 1024)
    return { kind: 'text', text: redactText(body.toString('utf8')) };
  return { kind: 'binary', size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

function pick(headers: Record<string, string | string[] | undefined>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = headers[name] ?? headers[name.replaceAll('_', '-')];
    if (v !== undefined) out[name] = redactText(Array.isArray(v) ? v.join(', ') : v);
  }
  return out;
}

export interface RecorderOptions {
  file: string;
  maxBytes: number;
  maxFiles: number;
  codes?: string[];
}

export class TrafficRecorder {
  private readonly writer: JsonlWriter;

  constructor(private readonly options: RecorderOptions) {
    this.writer = new JsonlWriter({
      file: options.file,
      maxBytes: options.maxBytes,
      maxFiles: options.maxFiles,
      maxQueueBytes: 8 * 1024 * 1024,
    });
  }

  wants(aCode: string): boolean {
    return !this.options.codes || this.options.codes.includes(aCode);
  }

  /** Lines not written (queue full or write failures). */
  get dropped(): number {
    return this.writer.dropped;
  }

  record(call: {
    aCode: string;
    method: string;
    path: string;
    asid: string;
    legacyBase: string;
    requestHeaders: Record<string, string | string[] | undefined>;
    requestBody: Buffer | undefined;
    side: string;
    status: number;
    answerHeaders: Record<string, string>;
    answerBody: Buffer | undefined;
  }): void {
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.answerHeaders)) lower[k.toLowerCase()] = v;
    const reqBody = recordedBody(call.requestBody, call.requestHeaders['content-type'] as string | undefined);
    const ansBody = recordedBody(call.answerBody, lower['content-type']);
    const line: RecordedCall = {
      v: 1,
      at: new Date().toISOString(),
      aCode: call.aCode,
      method: call.method,
      path: redactText(call.path),
      asid: call.asid,
      legacyBase: call.legacyBase,
      request: { headers: pick(call.requestHeaders, REQUEST_HEADERS), ...(reqBody ? { body: reqBody } : {}) },
      answer: {
        side: call.side,
        status: call.status,
        headers: pick(lower, ANSWER_HEADERS),
        ...(ansBody ? { body: ansBody } : {}),
      },
    };
    this.writer.append(JSON.stringify(line));
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
