/**
 * Logs: pino JSON, one line per call. The call record never carries tokens, raw session keys, path values or
 * bodies; the redaction list below is a second line of defence for anything logged by accident.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { redactText } from './comparison/redact.js';

/**
 * Second line of defence for free text that reaches a log line (error messages, diagnostics): NHS numbers,
 * tokens, JWTs, session keys and e-mail addresses are replaced by a marker. Call records carry none by design.
 */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > 8 ? redactText(value) : value;
  if (depth >= 3 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

/**
 * Exact paths only: wildcard paths make pino's redaction walk every line and cost tens of microseconds per call.
 * Call records carry no secret by construction; these catch the usual places a secret could be logged by mistake.
 */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["http_x_session_key"]',
  'access_token',
  'refresh_token',
  'id_token',
  'client_assertion',
  'privateKey',
  'apiKey',
  'token',
];

/** Fields of free text (error messages, reasons) that are scrubbed; call records' own fields are safe by design. */
const FREE_TEXT = new Set(['err', 'error', 'message', 'diagnostics', 'why', 'reason', 'detail']);

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env['LOG_LEVEL'] ?? 'info';
  return pino(
    {
      level,
      base: { service: 'ers-bridge', pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: {
        log: (obj) => {
          for (const key of Object.keys(obj)) if (FREE_TEXT.has(key)) obj[key] = scrub(obj[key]);
          return obj;
        },
      },
      hooks: {
        logMethod(args, method) {
          // The message string too (pino formats it after the formatters).
          const scrubbed = args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as typeof args;
          method.apply(this, scrubbed);
        },
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
