/**
 * From a CIS2 ID token to what an A001 user session needs: APIM tokens (token exchange) and the user's e-RS
 * permissions (A030, or the roles seeded for the user in the rules). Shared by both ways of signing in: a raw ID
 * token in A001, and ers-bridge's sign-in page.
 */
import { fetchPermissions, permissionsFromRoles, type RoleInRules } from '../apim/practitioner-roles.js';
import type { Upstream } from '../apim/upstream.js';
import { LegacyError } from '../legacy/errors.js';
import type { ProfessionalPermission, ProfessionalUser, SessionApimTokens } from '../sessions/session.js';
import type { Cis2Identity } from './cis2-identity.js';
import type { ApimUserTokens } from './user-token.js';

/** What a one-time sign-in code stands for: a signed-in CIS2 user with APIM tokens and e-RS permissions. */
export interface SignInGrant {
  asid: string;
  user: ProfessionalUser;
  permissions: ProfessionalPermission[];
  tokens: SessionApimTokens;
}

/** Where a sign-in is completed: the ASID's APIM application, and APIM's e-RS base for A030. */
export interface GrantTarget {
  asid: string;
  userTokens: ApimUserTokens | undefined;
  upstream: Upstream;
  /** The APIM application's pool partition. */
  partition?: string;
  apimBase: URL;
  organisationNames: Record<string, string>;
  /**
   * Roles by CIS2 user id, offered instead of A030's (`cis2.seedRoles`: a test-environment aid). e-RS still checks
   * the role a call selects against the user's real ones.
   */
  seedRoles?: Record<string, readonly RoleInRules[]> | undefined;
}

/**
 * Exchanges the ID token at APIM and lists the user's roles. APIM's refusals and outages are thrown as they are
 * (TokenRejectedError, TokenUnavailableError, RolesLookupFailed): the fault table words them.
 */
export async function grantForIdToken(
  target: GrantTarget,
  idToken: string,
  identity: Cis2Identity,
  correlationId: string,
): Promise<SignInGrant> {
  if (!target.userTokens) {
    throw new LegacyError(
      'ASID_NOT_APPLICATION_RESTRICTED',
      `ASID ${target.asid} has no APIM application for user sign-in.`,
    );
  }
  const tokens = await target.userTokens.exchange(idToken);
  const names = target.organisationNames;
  const seeded =
    target.seedRoles && Object.hasOwn(target.seedRoles, identity.sub) ? target.seedRoles[identity.sub] : undefined;
  const a030 = { upstream: target.upstream, apimBase: target.apimBase, partition: target.partition };
  const permissions = seeded
    ? permissionsFromRoles(seeded, names)
    : await fetchPermissions(a030, tokens.accessToken, correlationId, names);
  if (permissions.length === 0) {
    throw new LegacyError(
      'NO_ERS_ROLES',
      'The signed-in user has no e-RS business function at any organisation (A030 listed none). Ask your Registration Authority to grant an e-RS role.',
    );
  }
  return {
    asid: target.asid,
    user: {
      identifier: identity.sub,
      firstName: identity.firstName,
      lastName: identity.lastName,
      middleName: identity.middleName,
      permissions,
    },
    permissions,
    tokens,
  };
}
