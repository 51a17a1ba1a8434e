/**
 * What a CIS2 sign-in yields and how it can fail: the identity and assurance of an ID token, and the errors the
 * fault table maps. Apart from the CIS2 client (cis2.ts) so the request path can know these without loading
 * openid-client and jose, which a process without CIS2 users never needs (issue 15: memory).
 */
import type { JWTPayload } from 'jose';
import type { IDToken } from 'openid-client';

export interface Cis2Identity {
  /** The CIS2 user id (`sub`), the legacy `user.identifier`. */
  sub: string;
  firstName: string;
  lastName: string;
  middleName: string | null;
  idAssuranceLevel: number;
  authAssuranceLevel: number;
}

export interface PendingSignIn {
  asid: string;
  codeVerifier: string;
  nonce: string;
  returnTo?: string;
  startedAt: number;
}

/** CIS2 could not be reached: its discovery document or token endpoint (`service`), or its signing keys (`keys`). */
export class Cis2Unavailable extends Error {
  constructor(
    detail: string,
    readonly part: 'service' | 'keys' = 'service',
  ) {
    super(`CIS2 is unavailable: ${detail}`);
    this.name = 'Cis2Unavailable';
  }
}

/** Why a CIS2 sign-in or ID token is not accepted; the fault table says what the user is told. */
export type IdTokenProblem =
  | { kind: 'no-sub' }
  | { kind: 'identity-assurance'; level: number }
  | { kind: 'authentication-assurance'; level: number }
  | { kind: 'expired' }
  | { kind: 'wrong-issuer' }
  | { kind: 'wrong-audience' }
  | { kind: 'claim'; claim: string }
  | { kind: 'signature' }
  | { kind: 'malformed' }
  | { kind: 'sign-in-failed'; detail: string }
  | { kind: 'no-id-token' };

export class IdTokenRejected extends Error {
  constructor(readonly problem: IdTokenProblem) {
    super(`CIS2 ID token refused: ${problem.kind}`);
    this.name = 'IdTokenRejected';
  }
}

function level(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : 0;
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** The identity and assurance of a verified ID token's claims; refuses what APIM would refuse. */
export function identityFromClaims(claims: JWTPayload | IDToken, userinfo?: Record<string, unknown>): Cis2Identity {
  const sub = text(claims.sub);
  if (!sub) throw new IdTokenRejected({ kind: 'no-sub' });
  const ial = level(claims['id_assurance_level']);
  const aal = level(claims['authentication_assurance_level']);
  if (ial < 3) throw new IdTokenRejected({ kind: 'identity-assurance', level: ial });
  if (aal < 2) throw new IdTokenRejected({ kind: 'authentication-assurance', level: aal });
  const given = text(userinfo?.['given_name']) || text(claims['given_name']);
  const family = text(userinfo?.['family_name']) || text(claims['family_name']);
  const name = text(userinfo?.['name']) || text(claims['name']);
  const [firstFromName, ...rest] = name.split(' ').filter(Boolean);
  return {
    sub,
    firstName: given || firstFromName || '',
    lastName: family || rest.at(-1) || '',
    middleName: null,
    idAssuranceLevel: ial,
    authAssuranceLevel: aal,
  };
}
