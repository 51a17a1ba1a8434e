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

export const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'req.headers["http_x_session_key"]',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.client_assertion',
  '*.privateKey',
  '*.apiKey',
  '*.token',
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env['LOG_LEVEL'] ?? 'info';
  return pino(
    {
      level,
      base: { service: 'ers-bridge', pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
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
