/**
 * Logs: pino JSON, one line per call. The call record never carries tokens, raw session keys, path values or
 * bodies; the redaction list below is a second line of defence for anything logged by accident.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

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
      base: { service: 'ers-bridge' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
