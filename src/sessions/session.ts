/**
 * The emulated legacy ProfessionalSession (A001–A003). A session belongs to the ASID that created it and is unusable
 * for data calls until a role (permission) has been selected with A002.
 */
import { hash, randomBytes } from 'node:crypto';

export const SESSION_TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
export const SESSION_KEY_PREFIX = 'pro-api-session:';

export interface ProfessionalPermission {
  businessFunction: string;
  orgIdentifier: string;
  orgName: string;
}

export interface ProfessionalUser {
  identifier: string;
  firstName: string;
  lastName: string;
  middleName: string | null;
  permissions: ProfessionalPermission[];
}

export type AccessMode = 'application-restricted' | 'user-restricted';

/** APIM tokens of a user-restricted session (CIS2 token exchange). Never logged; encrypted at rest in shared stores. */
export interface SessionApimTokens {
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
  /**
   * Set, and acknowledged by the store's replicas, before `refreshToken` is sent to APIM; cleared with the renewed
   * tokens. A session read with it set lost its renewal half-way (a restart, a store failover): its refresh token
   * may have been spent, so it is never sent again (user-token.ts).
   */
  refreshSpending?: true;
}

export interface Session {
  asid: string;
  accessMode: AccessMode;
  /** User-restricted sessions only. */
  apim?: SessionApimTokens;
  /** User-restricted SERVICE_PROVIDER_CLINICIAN_ADMIN sessions: the SPC (SDS user id) acted for, from A002. */
  onBehalfOf?: string | null;
  /** The session ers-bridge opened at the legacy host for passthrough, canary and shadow calls. */
  legacySession?: { key: string } | null;
  /**
   * The client's A001 `token` (its CIS1 ticket), kept only while the rules send calls to the legacy host
   * (passthrough, shadow, canary), which needs it to open a legacy session. In translate mode it is not kept: A001
   * and A002 echo the token of the request instead, and a session stays a few hundred bytes whatever the client sent.
   */
  legacyToken?: string;
  user: ProfessionalUser;
  permission: ProfessionalPermission | null;
  createdAt: number;
  lastUsedAt: number;
  /** Absolute end of life (epoch ms), whatever the activity. */
  expiresAt: number;
}

/**
 * A session with some fields changed, built field by field in one fixed order. An object spread here
 * (`{ ...current, permission }`) made V8 give every updated session a dictionary of its own (≈ 450 B instead of
 * ≈ 130 B: issue 15's 100,000 sessions); a literal of the same shape every time shares one hidden class.
 */
export function sessionWith(current: Session, changes: Partial<Session>): Session {
  const pick = <K extends keyof Session>(k: K): Session[K] => (k in changes ? changes[k] : current[k]) as Session[K];
  return {
    asid: pick('asid'),
    accessMode: pick('accessMode'),
    apim: pick('apim'),
    onBehalfOf: pick('onBehalfOf'),
    legacySession: pick('legacySession'),
    legacyToken: pick('legacyToken'),
    user: pick('user'),
    permission: pick('permission'),
    createdAt: pick('createdAt'),
    lastUsedAt: pick('lastUsedAt'),
    expiresAt: pick('expiresAt'),
  };
}

/**
 * A new session key: `pro-api-session:` followed by 128 bits from the CSPRNG, laid out as a UUID (8-4-4-4-12 hex).
 * All 128 bits are random (no version nibble), so a key cannot be guessed; clients treat it as opaque.
 */
export function newSessionKey(): string {
  const h = randomBytes(16).toString('hex');
  return `${SESSION_KEY_PREFIX}${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Stores index sessions by a hash of the key, so the raw key is never kept at rest or compared byte by byte. */
export function sessionKeyHash(key: string): string {
  // crypto.hash: one native call, no Hash object (this runs for every data call).
  return hash('sha256', key, 'base64url');
}

/** A short, non-reversible tag of a session key for logs. */
export function sessionKeyTag(key: string): string {
  return sessionTagOf(sessionKeyHash(key));
}

/** {@link sessionKeyTag} from the key's hash, when the caller has it already. */
export function sessionTagOf(hash: string): string {
  return hash.slice(0, 10);
}

/**
 * The legacy ProfessionalSession body (A001/A002 responses). `token` is the one to echo: the request's, else the
 * stored one, else "" — the legacy DTO's `token` is a string, and an empty one is what a client that reads it as a
 * string can still read (null or a missing field would break clients that never expected either).
 */
export function sessionBody(key: string, s: Session, token: string = s.legacyToken ?? '') {
  return {
    typeInfo: SESSION_TYPE_INFO,
    id: key,
    token,
    user: s.user,
    permission: s.permission,
  };
}

/** Letters and digits that cannot be mistaken for each other when read off a screen (no 0/O, 1/I/L). */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 10;

/**
 * A one-time sign-in code for a person to type into a legacy client: 10 characters from a 31-letter alphabet
 * (about 49 bits), shown as XXXXX-XXXXX. Single-use and short-lived; see the sign-in page.
 */
export function newSignInCode(): string {
  const bytes = randomBytes(CODE_LENGTH * 2);
  let out = '';
  for (let i = 0; out.length < CODE_LENGTH; i++) {
    if (i >= bytes.length) return newSignInCode(); // too many rejections (vanishingly rare)
    const b = bytes[i]!;
    // Rejection sampling keeps every letter equally likely.
    if (b < 256 - (256 % CODE_ALPHABET.length)) out += CODE_ALPHABET[b % CODE_ALPHABET.length];
  }
  return out;
}

export function formatSignInCode(code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** The canonical form of a typed sign-in code (case, spaces and hyphens ignored), or undefined if it is not one. */
export function normaliseSignInCode(typed: string): string | undefined {
  const c = typed.toUpperCase().replace(/[\s-]/g, '');
  return c.length === CODE_LENGTH && [...c].every((ch) => CODE_ALPHABET.includes(ch)) ? c : undefined;
}
