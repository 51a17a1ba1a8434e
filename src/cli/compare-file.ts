/**
 * What `compare report` checks before it reports: that the comparison file (and its rotated siblings `<file>.1`, …,
 * which the report reads too) can be read and holds comparison records. The store's loader skips what it does not
 * know, which suits a live store, but a report of "0 comparisons" for a missing, empty or foreign file (a recording,
 * say) would mislead: here each of those is one line naming the file and what is wrong.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { comparisonFiles } from '../comparison/store.js';

/** A line the comparison store reads: a comparison record, or the call counts of readiness. */
function isComparisonLine(o: unknown): boolean {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
  const r = o as Record<string, unknown>;
  if (typeof r['calls'] === 'object' && r['calls'] !== null) return true;
  const result = r['result'] as Record<string, unknown> | null | undefined;
  return (
    typeof r['aCode'] === 'string' &&
    typeof r['asid'] === 'string' &&
    typeof result === 'object' &&
    result !== null &&
    Array.isArray(result['differences']) &&
    Array.isArray(result['noise'])
  );
}

async function endsWithNewline(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size === 0) return true;
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, size - 1);
    return byte[0] === 0x0a;
  } finally {
    await handle.close();
  }
}

const NOT_JSON = 'is not JSON';
const NOT_A_RECORD =
  'is not a comparison record (expected the JSON lines comparison.file or replay --out write; a recording is read by replay)';

/** The comparison lines of one file, up to its first bad line (and whether that was its last line). */
async function scan(file: string): Promise<{ records: number; bad?: { line: number; why: string; last: boolean } }> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let records = 0;
  let lineNo = 0;
  let bad: { line: number; why: string; last: boolean } | undefined;
  try {
    for await (const text of lines) {
      lineNo++;
      if (bad) return { records, bad: { ...bad, last: false } };
      if (text.trim() === '') continue;
      let o: unknown;
      try {
        o = JSON.parse(text);
      } catch {
        bad = { line: lineNo, why: NOT_JSON, last: true };
        continue;
      }
      if (isComparisonLine(o)) records++;
      else bad = { line: lineNo, why: NOT_A_RECORD, last: true };
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return bad ? { records, bad } : { records };
}

function codeOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'error';
}

/**
 * What is wrong with a comparison file, as `<file>: <problem>`, or nothing when it can be reported. A last line cut
 * short (no newline at the end: the writer was stopped mid-write) is left out rather than refused.
 */
export async function comparisonFileProblem(file: string): Promise<string | undefined> {
  const { files, exists } = await comparisonFiles(file);
  if (!exists && files.length === 0) {
    try {
      await stat(file);
    } catch (e) {
      return `${file}: cannot read it (${codeOf(e)})`;
    }
  }
  let records = 0;
  for (const f of files) {
    try {
      if ((await stat(f)).isDirectory()) return `${f}: is a directory, expected a comparison file (JSON lines)`;
      const found = await scan(f);
      records += found.records;
      const bad = found.bad;
      // A bad last line is refused too, unless it was cut short (no newline at the end) and is not JSON.
      if (bad && (!bad.last || bad.why !== NOT_JSON || (await endsWithNewline(f)))) {
        return `${f}: line ${bad.line} ${bad.why}`;
      }
    } catch (e) {
      return `${f}: cannot read it (${codeOf(e)})`;
    }
  }
  if (records === 0) {
    return `${file}: is empty, expected comparison records (JSON lines, as comparison.file or replay --out write them)`;
  }
  return undefined;
}
