/** The legacy side of a call: the call unchanged (but for the session key) to the legacy host, over mutual TLS. */
import type { UpstreamBody } from '../apim/upstream.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { callLegacy, type LegacyHost } from '../legacy-host/legacy-call.js';
import type { Session } from '../sessions/session.js';
import type { SessionStore } from '../sessions/store.js';
import type { SideAnswer } from './types.js';

export interface LegacySideInput {
  store: SessionStore;
  host: LegacyHost;
  endpoint: EndpointDef;
  key: string;
  session: Session;
  rawUrl: string;
  rawHeaders: readonly string[];
  body: UpstreamBody;
  bodyLength?: number | undefined;
  correlationId: string;
  signal?: AbortSignal | undefined;
}

export async function callLegacySide(input: LegacySideInput): Promise<SideAnswer> {
  const started = performance.now();
  const answer = await callLegacy({
    store: input.store,
    host: input.host,
    key: input.key,
    session: input.session,
    rawUrl: input.rawUrl,
    method: input.endpoint.method,
    rawHeaders: input.rawHeaders,
    body: input.body,
    ...(input.bodyLength !== undefined ? { bodyLength: input.bodyLength } : {}),
    correlationId: input.correlationId,
    signal: input.signal,
  });
  const transactionId = answer.headers['X_ERS_TRANSACTION_ID'];
  return {
    answer,
    facts: {
      upstreamStatus: answer.status,
      upstreamMs: Math.round((performance.now() - started) * 1000) / 1000,
      ...(transactionId ? { transactionId } : {}),
    },
  };
}
