/**
 * Real legacy clients' request shapes, kept as `.http` files in test/fixtures/legacy-clients/ (the format is in that
 * folder's README.md): the source comment, the request line, the headers, and the body (inline, or `< path` for a
 * file under the repository root), with `{asid}` and `{sessionKey}` filled in when a test sends them.
 */
import { readdirSync, readFileSync } from 'node:fs';

const DIR = new URL('../fixtures/legacy-clients/', import.meta.url);
const ROOT = new URL('../../', import.meta.url);

export interface LegacyClientRequest {
  name: string;
  /** The comment lines: where the shape comes from, and the licence of anything copied. */
  comments: string[];
  method: string;
  /** The request target as the client sends it (path and query, encoded). */
  target: string;
  /** Header names as the client spells them, in order. */
  headers: Array<[string, string]>;
  body?: Buffer;
}

/** The names of the fixtures (file names without `.http`). */
export function legacyClientFixtureNames(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.http'))
    .map((f) => f.slice(0, -'.http'.length))
    .sort();
}

/** One fixture, with the placeholders filled in (left as they are when no value is given). */
export function legacyClientRequest(
  name: string,
  values: { asid?: string; sessionKey?: string } = {},
): LegacyClientRequest {
  const fill = (s: string) =>
    s.replaceAll('{asid}', values.asid ?? '{asid}').replaceAll('{sessionKey}', values.sessionKey ?? '{sessionKey}');
  const lines = readFileSync(new URL(`${name}.http`, DIR), 'utf8').split('\n');
  const comments: string[] = [];
  let prefix = Buffer.alloc(0);
  let i = 0;
  for (; i < lines.length && (lines[i]!.startsWith('#') || lines[i]!.trim() === ''); i++) {
    const text = lines[i]!.replace(/^#\s?/, '');
    const bytes = /^@body-prefix\s+((?:[0-9A-Fa-f]{2}\s*)+)$/.exec(text);
    if (bytes) prefix = Buffer.from(bytes[1]!.replace(/\s+/g, ''), 'hex');
    else if (lines[i]!.startsWith('#')) comments.push(text);
  }
  const requestLine = /^([A-Z]+) (\S+)$/.exec(lines[i++] ?? '');
  if (!requestLine) throw new Error(`${name}.http: expected "METHOD target" after the comments`);
  const headers: Array<[string, string]> = [];
  for (; i < lines.length && lines[i]!.trim() !== ''; i++) {
    const colon = lines[i]!.indexOf(':');
    if (colon < 1) throw new Error(`${name}.http: not a header line: ${lines[i]}`);
    headers.push([lines[i]!.slice(0, colon), fill(lines[i]!.slice(colon + 1).trim())]);
  }
  const rest = lines
    .slice(i + 1)
    .join('\n')
    .replace(/\n+$/, '');
  let body: Buffer | undefined;
  if (rest.startsWith('< ')) body = readFileSync(new URL(rest.slice(2).trim(), ROOT));
  else if (rest !== '') body = Buffer.from(fill(rest), 'utf8');
  if (prefix.length > 0) body = Buffer.concat([prefix, body ?? Buffer.alloc(0)]);
  return {
    name,
    comments,
    method: requestLine[1]!,
    target: requestLine[2]!,
    headers,
    ...(body !== undefined ? { body } : {}),
  };
}

/** The fixture's headers as an object (last spelling wins), for `legacyCall`. */
export function headersOf(r: LegacyClientRequest): Record<string, string> {
  return Object.fromEntries(r.headers);
}

/** The fixture's headers as node's lower-cased IncomingHttpHeaders, for the pure steps. */
export function incomingHeadersOf(r: LegacyClientRequest): Record<string, string> {
  return Object.fromEntries(r.headers.map(([n, v]) => [n.toLowerCase(), v]));
}
