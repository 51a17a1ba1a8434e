/**
 * A030 (`GET <base>/R4/PractitionerRole`): the (organisation, business function) pairs a CIS2 user may act in on
 * e-RS. ers-bridge calls it right after the token exchange and offers the pairs as the legacy A001 permissions.
 */
import type { ProfessionalPermission } from '../sessions/session.js';
import type { Upstream } from './upstream.js';

const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
const BF_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1';

/** A030 failed: APIM refused it (`status`) or answered something that is not a Bundle. */
export class RolesLookupFailed extends Error {
  constructor(readonly status: number | 'not-json') {
    super(`A030 (practitioner roles) failed: ${status}`);
    this.name = 'RolesLookupFailed';
  }
}

interface Coding {
  system?: string;
  code?: string;
}
interface PractitionerRole {
  resourceType?: string;
  organization?: { identifier?: { system?: string; value?: string }; display?: string };
  code?: Array<{ coding?: Coding[] }>;
}

/** Pure: the legacy permissions in an A030 Bundle. Organisation names come from the Bundle or from the rules. */
export function permissionsFromBundle(bundle: unknown, names: Record<string, string>): ProfessionalPermission[] {
  const entries = (bundle as { entry?: Array<{ resource?: PractitionerRole }> })?.entry ?? [];
  const out: ProfessionalPermission[] = [];
  const seen = new Set<string>();
  for (const { resource } of entries) {
    if (resource?.resourceType !== 'PractitionerRole') continue;
    const id = resource.organization?.identifier;
    if (!id?.value || (id.system && id.system !== ODS_SYSTEM)) continue;
    const orgName = resource.organization?.display ?? names[id.value] ?? id.value;
    for (const c of resource.code ?? []) {
      for (const coding of c.coding ?? []) {
        if (coding.system !== BF_SYSTEM || !coding.code) continue;
        const key = `${coding.code}@${id.value}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ businessFunction: coding.code, orgIdentifier: id.value, orgName });
      }
    }
  }
  return out;
}

/** A role given in the rules (test users, seeded roles): a business function at an organisation. */
export interface RoleInRules {
  odsCode: string;
  orgName?: string | undefined;
  businessFunction: string;
}

/**
 * Pure: the legacy permissions of roles given in the rules instead of by A030 (`asids.<asid>.testUsers`,
 * `cis2.seedRoles`), in their order, each once; organisation names from the role, else from the rules, else the
 * ODS code.
 */
export function permissionsFromRoles(
  roles: readonly RoleInRules[],
  names: Record<string, string>,
): ProfessionalPermission[] {
  const out: ProfessionalPermission[] = [];
  const seen = new Set<string>();
  for (const r of roles) {
    const key = `${r.businessFunction}@${r.odsCode}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      businessFunction: r.businessFunction,
      orgIdentifier: r.odsCode,
      orgName: r.orgName ?? names[r.odsCode] ?? r.odsCode,
    });
  }
  return out;
}

/** Calls A030 with a user's access token. */
export async function fetchPermissions(
  apim: { upstream: Upstream; apimBase: URL; partition?: string | undefined },
  accessToken: string,
  correlationId: string,
  names: Record<string, string>,
): Promise<ProfessionalPermission[]> {
  const res = await apim.upstream.request({
    ...(apim.partition ? { partition: apim.partition } : {}),
    method: 'GET',
    path: `${apim.apimBase.pathname.replace(/\/+$/, '')}/R4/PractitionerRole`,
    headers: {
      accept: 'application/fhir+json',
      authorization: `Bearer ${accessToken}`,
      'x-correlation-id': correlationId,
    },
    body: undefined,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new RolesLookupFailed(res.statusCode);
  let bundle: unknown;
  try {
    bundle = JSON.parse(text);
  } catch {
    throw new RolesLookupFailed('not-json');
  }
  return permissionsFromBundle(bundle, names);
}
