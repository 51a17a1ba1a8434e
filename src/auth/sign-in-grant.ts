/**
 * From a CIS2 ID token to what an A001 user session needs: APIM tokens (token exchange) and the user's e-RS
 * permissions (A030). Shared by both ways of signing in: a raw ID token in A001, and ers-bridge's sign-in page.
 */
import { fetchPermissions } from '../apim/practitioner-roles.js';
import { LegacyError } from '../legacy/errors.js';
import type { AsidRuntime, Runtime, SignInGrant } from '../runtime.js';
import { TokenRejectedError, TokenUnavailableError } from './apim-oauth.js';
import type { Cis2Identity } from './cis2.js';

export async function grantForIdToken(
  rt: Runtime,
  asid: AsidRuntime,
  idToken: string,
  identity: Cis2Identity,
  correlationId: string,
): Promise<SignInGrant> {
  if (!asid.userTokens) {
    throw new LegacyError(
      'ASID_NOT_APPLICATION_RESTRICTED',
      `ASID ${asid.asid} has no APIM application for user sign-in.`,
    );
  }
  let tokens: Awaited<ReturnType<typeof asid.userTokens.exchange>>;
  try {
    tokens = await asid.userTokens.exchange(idToken);
  } catch (e) {
    if (e instanceof TokenRejectedError) {
      throw new LegacyError(
        'TOKEN_EXCHANGE_REFUSED',
        `APIM refused to exchange the CIS2 sign-in for an e-RS token: ${e.errorDescription} (${e.error}). Sign in again; if it persists, ask the ers-bridge operators to check the APIM application of ASID ${asid.asid}.`,
      );
    }
    if (e instanceof TokenUnavailableError) {
      throw new LegacyError(
        'TOKEN_ENDPOINT_UNAVAILABLE',
        `APIM's token service could not be reached (${e.detail}); try again shortly.`,
        {
          headers: { 'retry-after': '5' },
        },
      );
    }
    throw e;
  }
  const names = rt.rules.cis2?.organisationNames ?? {};
  const permissions = await fetchPermissions(rt.upstream, rt.apimBase, tokens.accessToken, correlationId, names);
  if (permissions.length === 0) {
    throw new LegacyError(
      'NO_ERS_ROLES',
      'The signed-in user has no e-RS business function at any organisation (A030 listed none). Ask your Registration Authority to grant an e-RS role.',
    );
  }
  return {
    asid: asid.asid,
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
