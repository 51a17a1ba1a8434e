/**
 * The object store A042 redirects to, as a small loopback server of its own (another origin than the stand-in, as
 * the real one is another origin than APIM). A042 hands out a signed link per download: it works once, until it
 * expires (`ttlSeconds`, by the stand-in's clock); after that, or with a wrong signature, the store answers 403 as a
 * cloud object store does for an expired or tampered presigned URL. Nothing but the link authorises a download.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** A file the store serves once A042 has redirected to it. */
export interface StoredFile {
  bytes: Buffer;
  contentType: string;
  filename: string;
}

export const DEFAULT_LINK_TTL_SECONDS = 60;
const PATH = '/ers-attachments/';

export class StandInObjectStore {
  private server: Server | undefined;
  private readonly key = randomBytes(32);
  private readonly files = new Map<string, StoredFile & { expires: number }>();
  /** Every link handed out, in order (tests check that none leaks to a legacy client or a log). */
  readonly issued: string[] = [];
  /** Downloads answered 200, by object id. */
  readonly served: string[] = [];
  origin: string;

  /**
   * `host` is where it listens (the stand-in's); `publicHost` the host name links carry, when clients reach the
   * stand-in by another name (its publicUrl's). A wildcard address is linked as 127.0.0.1. With `tls` it serves
   * HTTPS with the stand-in's certificate (which names `publicHost`).
   */
  constructor(
    private readonly host: string,
    private readonly now: () => number,
    private readonly ttlSeconds = DEFAULT_LINK_TTL_SECONDS,
    private readonly publicHost?: string,
    private readonly tls?: { cert: string; key: string },
  ) {
    this.origin = `${this.scheme}://${this.linkHost(host)}`;
  }

  private get scheme(): 'http' | 'https' {
    return this.tls ? 'https' : 'http';
  }

  private linkHost(address: string): string {
    if (this.publicHost) return this.publicHost;
    if (address === '0.0.0.0' || address === '::') return '127.0.0.1';
    return address.includes(':') ? `[${address}]` : address;
  }

  /** A signed, short-lived link that serves `file` once. */
  issue(file: StoredFile): string {
    const id = randomUUID();
    const expires = Math.floor(this.now() / 1000) + this.ttlSeconds;
    this.files.set(id, { ...file, expires });
    if (this.files.size > 10_000) this.files.delete(this.files.keys().next().value!);
    const link = `${this.origin}${PATH}${id}?expires=${expires}&signature=${this.sign(id, expires)}`;
    this.issued.push(link);
    return link;
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}\n${expires}`).digest('hex');
  }

  /** The answer to one request: the file (and the link used up), or 403/404/405. */
  answer(method: string, target: string): { status: number; headers: Record<string, string>; body: Buffer } {
    const denied = (why: string) => ({
      status: 403,
      headers: { 'content-type': 'text/plain' },
      body: Buffer.from(`AccessDenied: ${why}`),
    });
    if (method !== 'GET') return { status: 405, headers: { allow: 'GET' }, body: Buffer.alloc(0) };
    const url = new URL(target, 'http://object-store.invalid');
    if (!url.pathname.startsWith(PATH)) return { status: 404, headers: {}, body: Buffer.alloc(0) };
    const id = url.pathname.slice(PATH.length);
    const expires = Number(url.searchParams.get('expires'));
    const given = Buffer.from(url.searchParams.get('signature') ?? '', 'utf8');
    const wanted = Buffer.from(this.sign(id, expires), 'utf8');
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return denied('signature does not match');
    if (Math.floor(this.now() / 1000) > expires) {
      this.files.delete(id);
      return denied('request has expired');
    }
    const file = this.files.get(id);
    if (file === undefined) return denied('this link has already been used');
    this.files.delete(id);
    this.served.push(id);
    return {
      status: 200,
      headers: {
        'content-type': file.contentType,
        // As NHS's sandbox object store writes it: an RFC 2047 name where it needs one, and filename* (RFC 8187).
        'content-disposition': `attachment; filename="${legacyName(file.filename)}"; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
        'content-length': String(file.bytes.length),
      },
      body: file.bytes,
    };
  }

  async listen(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const { status, headers, body } = this.answer(req.method ?? 'GET', req.url ?? '/');
      res.writeHead(status, headers);
      res.end(body);
    };
    // An HTTPS server is an http.Server as far as listening and closing go.
    const server: Server = this.tls
      ? (createHttpsServer({ cert: this.tls.cert, key: this.tls.key }, handler) as unknown as Server)
      : createServer(handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    this.origin = `${this.scheme}://${this.linkHost(address.address)}:${address.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** `The filenamé.pdf` → `=?UTF-8?Q?The_filenam=C3=A9.pdf?=`; a plain ASCII name as it is. */
function legacyName(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name) && !name.includes('"')) return name;
  const q = [...Buffer.from(name, 'utf8')]
    .map((b) =>
      b === 0x20
        ? '_'
        : (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2e
          ? String.fromCharCode(b)
          : `=${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
  return `=?UTF-8?Q?${q}?=`;
}
