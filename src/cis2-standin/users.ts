/**
 * The healthcare workers the CIS2 stand-in signs in, and the demo's one test user. The same user is registered on
 * the APIM stand-in (its roles are what A030 answers), so a sign-in at the one is known at the other.
 */

/** One organisation at which a user holds e-RS business functions (the APIM stand-in's `StandInUserRole` shape). */
export interface Cis2StandInRole {
  odsCode: string;
  orgName: string;
  businessFunctions: string[];
}

/** A user the CIS2 stand-in signs in: identity, assurance and (for the APIM stand-in's A030) e-RS roles. */
export interface Cis2StandInUser {
  /** The CIS2 user id: the ID token `sub`, 12 digits (the legacy `user.identifier`). */
  sub: string;
  givenName: string;
  familyName: string;
  /** Identity assurance (IAL): e-RS needs 3. */
  idAssuranceLevel: number;
  /** Authentication assurance (AAL): e-RS accepts 2 or 3. */
  authenticationAssuranceLevel: number;
  /** The ID token's `amr`: how the user authenticated, e.g. `['N3_SMARTCARD']` (AAL3) or `['TOTP']` (AAL2). */
  amr: string[];
  roles: Cis2StandInRole[];
}

/** The demo's test user: IAL3, AAL2, a referring clinician at a GP practice and a provider clinician at a trust. */
export const DEMO_CIS2_USER: Readonly<Cis2StandInUser> = Object.freeze({
  sub: '555000000002',
  givenName: 'Demo',
  familyName: 'Clinician',
  idAssuranceLevel: 3,
  authenticationAssuranceLevel: 2,
  amr: ['TOTP'],
  roles: [
    { odsCode: 'D82106', orgName: 'DEMO GP PRACTICE', businessFunctions: ['REFERRING_CLINICIAN'] },
    { odsCode: 'R69', orgName: 'DEMO NHS TRUST', businessFunctions: ['SERVICE_PROVIDER_CLINICIAN'] },
  ],
});

/** The users as the APIM stand-in takes them (`StandInOptions.users`): roles by CIS2 user id. */
export function apimUsersOf(users: readonly Cis2StandInUser[]): Record<string, { roles: Cis2StandInRole[] }> {
  return Object.fromEntries(users.map((u) => [u.sub, { roles: u.roles.map((r) => ({ ...r })) }]));
}
