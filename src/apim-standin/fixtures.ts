/**
 * Access to the NHS e-RS example payloads and the endpoint catalogue under `<package root>/fixtures/ers-api`.
 *
 * The package root is found by walking up from this module to the first directory holding a `package.json`, so the
 * same code works from `src/` (tsx, vitest) and from `dist/` after tsc. Files are read once per process and cached;
 * each stand-in gets a {@link FixtureView} that substitutes its own base URL for the `_baseUrl_` placeholder.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The placeholder the NHS examples carry where the live service embeds `https://<host>/referrals/FHIR`. */
export const BASE_URL_PLACEHOLDER = '_baseUrl_';

let packageRootCache: string | undefined;

/** The directory of the nearest `package.json` above this module. */
export function packageRoot(): string {
  if (packageRootCache !== undefined) return packageRootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      packageRootCache = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`apim-standin: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** `<package root>/fixtures/ers-api` */
export function ersFixturesDir(): string {
  return join(packageRoot(), 'fixtures', 'ers-api');
}

const textCache = new Map<string, string>();
const bytesCache = new Map<string, Buffer>();
const listCache = new Map<string, string[]>();

function resolveExample(rel: string): string {
  const normalised = posix.normalize(rel);
  if (normalised.startsWith('..') || posix.isAbsolute(normalised))
    throw new Error(`apim-standin: bad fixture path ${rel}`);
  return join(ersFixturesDir(), 'examples', ...normalised.split('/'));
}

/** Raw bytes of `examples/<rel>` (cached). */
export function exampleBytes(rel: string): Buffer {
  let bytes = bytesCache.get(rel);
  if (bytes === undefined) {
    bytes = readFileSync(resolveExample(rel));
    bytesCache.set(rel, bytes);
  }
  return bytes;
}

/** UTF-8 text of `examples/<rel>` (cached), placeholder not substituted. */
export function exampleText(rel: string): string {
  let text = textCache.get(rel);
  if (text === undefined) {
    text = exampleBytes(rel).toString('utf8');
    textCache.set(rel, text);
  }
  return text;
}

/** Names of the `.json` files in `examples/<relDir>`, sorted; empty when the directory does not exist. */
export function exampleJsonFiles(relDir: string): string[] {
  let names = listCache.get(relDir);
  if (names === undefined) {
    const dir = resolveExample(relDir);
    names = existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => n.endsWith('.json'))
          .sort()
      : [];
    listCache.set(relDir, names);
  }
  return names;
}

/** Raw JSON of the endpoint catalogue `fixtures/ers-api/endpoints.json`. */
export function readCatalogueJson(): unknown {
  return JSON.parse(readFileSync(join(ersFixturesDir(), 'endpoints.json'), 'utf8'));
}

/**
 * The examples as one stand-in serves them: `_baseUrl_` replaced with that stand-in's base URL. The base URL is read
 * through a function because it is only known once the server listens.
 */
export class FixtureView {
  private readonly jsonCache = new Map<string, unknown>();
  private cachedFor: string | undefined;

  constructor(private readonly baseUrl: () => string) {}

  private checkBase(): string {
    const base = this.baseUrl();
    if (base !== this.cachedFor) {
      this.jsonCache.clear();
      this.cachedFor = base;
    }
    return base;
  }

  /** The example's text with the placeholder substituted. */
  text(rel: string): string {
    return exampleText(rel).replaceAll(BASE_URL_PLACEHOLDER, this.checkBase());
  }

  /** The example parsed, after substitution (cached per base URL; callers must not mutate it). */
  json(rel: string): unknown {
    const base = this.checkBase();
    let value = this.jsonCache.get(rel);
    if (value === undefined) {
      value = JSON.parse(exampleText(rel).replaceAll(BASE_URL_PLACEHOLDER, base));
      this.jsonCache.set(rel, value);
    }
    return value;
  }

  /** Raw bytes (binary examples such as PDFs carry no placeholder). */
  bytes(rel: string): Buffer {
    return exampleBytes(rel);
  }
}
