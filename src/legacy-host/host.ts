/** The legacy HSCN e-RS host as a target (passthrough, canary, shadow): where it is and how it is reached. */
import type { Upstream } from '../apim/upstream.js';
import type { Rules } from '../rules/schema.js';

export interface LegacyHost {
  upstream: Upstream;
  /** e.g. `https://api.int1.ers.ncrs.nhs.uk/ers-api` */
  baseUrl: URL;
  /** Declared production: writes are never copied to it by shadowing. */
  production: boolean;
}

/** The legacy host's base URL: `legacy.baseUrl`, else the HSCN host's `/ers-api`. */
export function legacyBaseUrlOf(legacy: Rules['legacy']): URL {
  return new URL(legacy.baseUrl ?? `https://${legacy.host}/ers-api`);
}

/** The legacy host refused a session ers-bridge opened for a client there (A001 or A002). */
export class LegacySessionRefused extends Error {
  constructor(
    readonly step: string,
    readonly status: number,
    /** What it said, as printable text (at most 200 characters). */
    readonly said: string,
  ) {
    super(`the legacy host refused ${step} (HTTP ${status})`);
    this.name = 'LegacySessionRefused';
  }
}

/**
 * A call for the legacy host on a session that holds no A001 token to open a legacy session with: it was created
 * while the rules sent nothing to the legacy host (translate only), when ers-bridge keeps no token.
 */
export class LegacyTokenMissing extends Error {
  constructor() {
    super('the session holds no A001 token for the legacy host');
    this.name = 'LegacyTokenMissing';
  }
}
