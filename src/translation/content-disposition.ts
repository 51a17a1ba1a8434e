/**
 * Content-Disposition, pure: the file name an object store gives a download (RFC 6266: `filename*` in RFC 8187
 * form first, else `filename`, quoted or not, RFC 2047 encoded-words as NHS's sandbox sends them), and the header as
 * A006 gave it — `attachment; filename=example_attachment.pdf` (NHS sandbox and the APIM stand-in) — so a legacy
 * client reading A006's answer reads the same header when the file came through A042.
 */

/** A file name as a header may carry it: no control characters, no path, at most 200 characters. */
export function safeFilename(name: string): string {
  const cleaned = [...name]
    .map((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? '' : c === '/' || c === '\\' ? '_' : c))
    .join('')
    .trim();
  return [...cleaned].slice(0, 200).join('');
}

interface Param {
  name: string;
  value: string;
}

/** The parameters of a Content-Disposition value, quoted strings unescaped. */
function params(value: string): Param[] {
  const out: Param[] = [];
  const re = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const m of value.matchAll(re)) {
    const quoted = m[2];
    out.push({
      name: m[1]!.toLowerCase(),
      // Stryker disable next-line StringLiteral: m[3] is never undefined when m[2] is (the token group always takes part, if empty)
      value: quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (m[3] ?? ''),
    });
  }
  return out;
}

/** `UTF-8''The%20name.pdf` (RFC 8187) → `The name.pdf`; undefined for another charset or bad escapes. */
function extValue(value: string): string | undefined {
  const m = /^([A-Za-z0-9_-]+)'[^']*'(.*)$/.exec(value);
  if (!m || !/^utf-8$/i.test(m[1]!)) return undefined;
  try {
    return decodeURIComponent(m[2]!);
    // Stryker disable next-line BlockStatement: an empty catch block returns undefined too
  } catch {
    return undefined;
  }
}

/** RFC 2047 encoded-words (`=?UTF-8?Q?The_filenam=C3=A9.pdf?=`) decoded; anything else as it is. */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (word, charset: string, enc: string, text: string) => {
    if (!/^utf-8$/i.test(charset)) return word;
    if (enc.toUpperCase() === 'B') return Buffer.from(text, 'base64').toString('utf8');
    const bytes: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === '_') bytes.push(0x20);
      // Stryker disable next-line Regex: the slice holds 2 characters at most, so {2} alone already spans all of it (the anchors add nothing)
      else if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
        bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(c.charCodeAt(0));
    }
    return Buffer.from(bytes).toString('utf8');
  });
}

/** The file name a Content-Disposition value gives, made safe; undefined when it gives none. */
export function filenameOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ps = params(value);
  const ext = ps.find((p) => p.name === 'filename*');
  const fromExt = ext ? extValue(ext.value) : undefined;
  const plain = ps.find((p) => p.name === 'filename')?.value;
  const name = fromExt ?? (plain !== undefined ? decodeWords(plain) : undefined);
  if (name === undefined) return undefined;
  const safe = safeFilename(name);
  return safe === '' ? undefined : safe;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Content-Disposition in A006's form: `attachment; filename=<name>` for a name that is an HTTP token (as A006 gave
 * `example_attachment.pdf`); a quoted name otherwise, and for a name beyond ASCII an ASCII fallback with `filename*`.
 */
export function a006Disposition(filename: string): string {
  const name = safeFilename(filename);
  if (TOKEN.test(name)) return `attachment; filename=${name}`;
  // Stryker disable next-line EqualityOperator: safeFilename has removed DEL (0x7f), so < and <= agree
  const ascii = [...name].every((c) => c.charCodeAt(0) < 0x7f);
  const quoted = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  if (ascii) return `attachment; filename=${quoted(name)}`;
  // Stryker disable next-line EqualityOperator: safeFilename has removed DEL (0x7f), so < and <= agree
  const fallback = [...name].map((c) => (c.charCodeAt(0) < 0x7f ? c : '_')).join('');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename=${quoted(fallback)}; filename*=UTF-8''${encoded}`;
}
