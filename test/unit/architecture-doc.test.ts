/**
 * README's "How it is built" quotes the flow's steps: every quoted line must be a line of runLegacyCall in
 * src/pipeline/flow.ts, in the same order, so the quote cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe("README's architecture section", () => {
  it('quotes the steps of runLegacyCall as they are, in order', () => {
    const readme = read('README.md');
    const block = readme.slice(readme.indexOf('<!-- flow:start'), readme.indexOf('<!-- flow:end -->'));
    const quoted = block
      .split('\n')
      .slice(2, -2)
      .map((l) => l.trim())
      .filter(Boolean);
    expect(quoted.length).toBeGreaterThan(20);
    const flow = read('src/pipeline/flow.ts');
    const body = flow.slice(flow.indexOf('export async function runLegacyCall'), flow.indexOf('\n}\n'));
    const lines = body.split('\n').map((l) => l.trim());
    let at = 0;
    for (const q of quoted) {
      const found = lines.indexOf(q, at);
      expect(found, `README quotes a line runLegacyCall does not have (or not in this order): ${q}`).toBeGreaterThan(
        -1,
      );
      at = found + 1;
    }
  });
});
