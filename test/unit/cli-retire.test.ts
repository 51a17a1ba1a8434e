/** `ers-bridge emulate-apim --retire`: which operations the stand-in answers as removed, and the usage errors. */
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { retiredCodes } from '../../src/cli/retire.js';
import { projectPath } from './support.js';

let errSpy: MockInstance<typeof console.error>;
beforeEach(() => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  errSpy = vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('emulate-apim --retire', () => {
  it('takes A-codes separated by commas, in any case, once each', () => {
    expect(retiredCodes('A006,a021, A032,A006')).toEqual({ codes: ['A006', 'A021', 'A032'] });
    expect(retiredCodes(undefined)).toEqual({});
  });

  it('refuses what is not an e-RS operation, naming it, before anything starts (exit 2)', async () => {
    expect(retiredCodes('A006,A999').problem).toContain('A999');
    expect(retiredCodes(',').problem).toContain('(none)');
    const code = await main(['emulate-apim', '--rules', projectPath('rules/local.yaml'), '--retire', 'A006,B12']);
    expect(code).toBe(2);
    expect(errSpy.mock.calls.flat().join('\n')).toContain('--retire: expected A-codes');
  });

  it('is in the help', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    await main(['emulate-apim', '--help']);
    expect(log.mock.calls.flat().join('\n')).toContain('--retire <A-codes>');
  });
});
