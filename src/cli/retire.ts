/**
 * `emulate-apim --retire A006,A021,A032`: operations the APIM stand-in answers as removed (as NHS retired A006 in
 * February 2026 and A021/A032 in March 2025), so an ers-bridge in front of it must use their successors.
 */
import { ALL_CODES } from '../legacy/endpoints.js';

/** The A-codes of `--retire`, or a usage problem in words. */
export function retiredCodes(value: string | undefined): { codes?: string[]; problem?: string } {
  if (value === undefined) return {};
  const codes = value
    .split(',')
    .map((c) => c.trim().toUpperCase())
    .filter((c) => c !== '');
  const unknown = codes.filter((c) => !ALL_CODES.includes(c) || c === 'A001' || c === 'A002' || c === 'A003');
  if (codes.length === 0 || unknown.length > 0) {
    return {
      problem: `emulate-apim: --retire: expected A-codes of e-RS operations separated by commas, e.g. A006,A021,A032; got ${unknown.join(', ') || '(none)'}`,
    };
  }
  return { codes: [...new Set(codes)] };
}
