/**
 * The data the request path passes between its steps. A module of types only, imported by the steps and the
 * surfaces alike, so that no step imports its caller.
 */
import type { Readable } from 'node:stream';
import type { PresentedCertificate } from '../auth/client-certificate.js';
import type { IncomingHeaders } from '../translation/request.js';

export type { IncomingHeaders };

/** A legacy call as it arrived, whoever carries it (the legacy HTTP surface, or replay). */
export interface LegacyRequest {
  method: string;
  /** The request target as received (path and query, still encoded). */
  rawUrl: string;
  headers: IncomingHeaders;
  /** Header names and values as received (passthrough forwards them unchanged). */
  rawHeaders: readonly string[];
  body: Readable;
  /** The legacy base URL as this client reaches ers-bridge, e.g. `https://ers-bridge.trust.nhs.uk/ers-api`. */
  legacyBase: string;
  /** The client certificate the caller presented (directly, or through a trusted proxy), if any. */
  clientCertificate?: PresentedCertificate | undefined;
  /**
   * Ends the upstream call early (replay and shadow use a timeout). Absent for client calls: a client that goes away
   * leaves the upstream call to finish within its timeouts, which costs less than watching every connection.
   */
  signal?: AbortSignal;
}

/** An answer in legacy terms, ready to send: status, headers (legacy spellings), body. */
export interface LegacyAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | Readable | undefined;
}

/** What the record step logs and counts about one call. Never a token, a raw session key, a path value or a body. */
export interface CallRecord {
  aCode: string;
  route: string;
  /**
   * The ASID: the configured caller's once it is known; before that what the call named, as it may be logged (a
   * configured ASID or 12 digits as sent, else `(not an ASID)`: see asidForLog). Metrics count only configured ones.
   */
  asid?: string;
  /** A short hash of the session key. */
  session?: string;
  correlationId?: string;
  upstreamStatus?: number;
  upstreamMs?: number;
  tokenRenewed?: boolean;
  transactionId?: string;
  mode?: string;
  /** The side that answered: apim or legacy. */
  side?: string;
  /** Whether a copy went to the other side, or why not. */
  shadow?: string;
  /** The ers-bridge error reason, when ers-bridge answered with an error of its own. */
  reason?: string;
}

/** What a call produced: the answer to send and the record to log once it is sent. */
export interface CallOutcome {
  answer: LegacyAnswer;
  record: CallRecord;
}

/** What an upstream told us about one call, for the record. */
export interface UpstreamFacts {
  upstreamStatus: number;
  upstreamMs: number;
  tokenRenewed?: boolean;
  transactionId?: string;
}

/** A side's answer and what it told us. */
export interface SideAnswer {
  answer: LegacyAnswer;
  facts: UpstreamFacts;
}
