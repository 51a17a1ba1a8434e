/**
 * The rules file schema: one YAML file per environment. This zod schema is the single source of truth; the JSON
 * Schema published for editors (schema/rules.schema.json) is generated from it by `npm run schema`.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { ALL_CODES, BUSINESS_FUNCTIONS } from '../legacy/endpoints.js';
import { SuccessorSettings } from './successors.js';

const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;
const REDIS_URL = /^rediss?:\/\/[^\s]+$/;
function hasPassword(u: string): boolean {
  try {
    return new URL(u).password !== '';
  } catch {
    return true;
  }
}

/**
 * The fields that hold secret references (`SecretRef`, and `sessions.redis.url`, which may be one), so that
 * `rules check --resolve-secrets` can find and try every reference (src/rules/schema-walk.ts). A registry of its own,
 * apart from zod's global one, so the JSON Schema is unchanged; copies made by `.describe()` inherit the mark.
 */
export const secretFields = z.registry<{ secret: true }>();

/** A reference to a secret: `env:NAME` (an environment variable) or `file:/path` (a file's contents). */
export const SecretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, {
    message: 'expected a secret reference "env:NAME" or "file:/path" (secrets are never written in rules files)',
  })
  .describe('A secret reference: env:NAME or file:/path. Literal secrets are refused.')
  .register(secretFields, { secret: true });

/** `host:port` of a sentinel (an IPv6 address in brackets: `[::1]:26379`). */
const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/;

/** A `host:port` as host (IPv6 without its brackets) and port, or undefined when it is not one. */
export function parseHostPort(address: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port <= 65_535 ? { host: m[1] ?? m[2]!, port } : undefined;
}

const RedisSentinelRules = z
  .object({
    sentinels: z
      .array(
        z.string().refine((a) => parseHostPort(a) !== undefined, {
          message: 'expected a sentinel as host:port (e.g. redis-sentinel-0:26379 or [::1]:26379)',
        }),
      )
      .min(1, { message: 'expected at least one sentinel (three or more, on different machines, for a quorum)' })
      .max(16)
      .describe('A few of the sentinels (host:port); ers-bridge learns the others from them.'),
    masterName: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, { message: 'expected the master name the sentinels monitor (e.g. mymaster)' })
      .describe('The name the sentinels monitor the primary by (sentinel monitor <name> …).'),
    username: z.string().min(1).max(128).optional().describe("The Redis nodes' ACL user (default: the default user)."),
    password: SecretRef.optional().describe("The Redis nodes' password (requirepass or the ACL user's)."),
    sentinelUsername: z.string().min(1).max(128).optional().describe("The sentinels' ACL user."),
    sentinelPassword: SecretRef.optional().describe("The sentinels' password, when they require one."),
    tls: z
      .boolean()
      .default(false)
      .describe('TLS to the sentinels and the Redis nodes, verified against the system CAs (and NODE_EXTRA_CA_CERTS).'),
  })
  .strict();

/** Redis Cluster: a few seed nodes; ers-bridge learns the others and the slot map from them (CLUSTER SLOTS). */
const RedisClusterRules = z
  .object({
    nodes: z
      .array(
        z.string().refine((a) => parseHostPort(a) !== undefined, {
          message: 'expected a cluster node as host:port (e.g. redis-0:6379 or [::1]:6379)',
        }),
      )
      .min(1, { message: 'expected at least one seed node (a few, on different machines, so one down is no matter)' })
      .max(64)
      .describe(
        'A few of the cluster nodes (host:port), primaries or replicas; ers-bridge learns the others from them.',
      ),
    username: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe("The cluster nodes' ACL user (default: the default user)."),
    password: SecretRef.optional().describe("The cluster nodes' password (requirepass or the ACL user's, AUTH)."),
    tls: z
      .boolean()
      .default(false)
      .describe('TLS to every cluster node, verified against the system CAs (and NODE_EXTRA_CA_CERTS).'),
  })
  .strict();

const httpsOrLoopbackUrl = (what: string) =>
  z
    .string()
    .refine(
      (s) => {
        try {
          const u = new URL(s);
          if (u.protocol === 'https:') return true;
          return (
            u.protocol === 'http:' &&
            (u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]')
          );
        } catch {
          return false;
        }
      },
      {
        message: `expected ${what} as an https:// URL (plain http:// is allowed only for 127.0.0.1, localhost or [::1])`,
      },
    )
    .transform((s) => s.replace(/\/+$/, ''));

/** An IPv4/IPv6 address, or a CIDR range of one (10.0.0.0/8, fd00::/8). */
function isAddressOrRange(value: string): boolean {
  const [address, bits, extra] = value.split('/');
  if (extra !== undefined) return false;
  const family = isIP(address ?? '');
  if (family === 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const Hostname = z
  .string()
  .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, { message: 'expected a host name such as api.int1.ers.ncrs.nhs.uk' });

export const AsidSchema = z.string().regex(/^\d{6,15}$/, { message: 'expected an ASID: 6 to 15 digits' });

const OdsCode = z
  .string()
  .regex(/^[A-Z0-9]{3,10}$/, { message: 'expected an ODS code such as R69 (3 to 10 capitals or digits)' });

const ACodeSchema = z.string().refine((c) => ALL_CODES.includes(c), {
  message: `expected an A-code ers-bridge knows: ${ALL_CODES.join(', ')}`,
});

const ApimApplication = z
  .object({
    apiKey: SecretRef.describe('The APIM application API key (client_id), as a secret reference.'),
    keyId: z
      .string()
      .min(1, { message: 'expected the kid of the public key registered for the APIM application' })
      .describe('The kid under which the public key is published in the JWKS registered with APIM.'),
    privateKey: SecretRef.describe('The RSA private key (PEM, PKCS#8 or PKCS#1) used to sign client assertions.'),
  })
  .strict();

/**
 * How a calling system proves it is the ASID it names. An ASID is not a secret: without one of these, whoever can
 * reach ers-bridge can act as the ASID.
 */
const CallerAuth = z
  .object({
    certificates: z
      .array(
        z.union(
          [
            z
              .object({
                sha256: z
                  .string()
                  .regex(/^(sha256:)?[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$/, {
                    message: 'expected a SHA-256 certificate fingerprint: 64 hex digits, colons allowed',
                  })
                  .describe(
                    'The SHA-256 fingerprint of the client certificate (DER), as openssl x509 -fingerprint shows.',
                  ),
              })
              .strict(),
            z
              .object({
                subject: Hostname.describe(
                  'The endpoint FQDN: matched against the certificate subject CN and its SAN DNS names.',
                ),
              })
              .strict(),
          ],
          { message: 'expected { sha256: <fingerprint> } or { subject: <endpoint FQDN> }' },
        ),
      )
      .min(1, { message: 'expected at least one certificate' })
      .optional()
      .describe(
        'The client certificates (Spine endpoint certificates) allowed to call as this ASID; any one may match. Every call, A001 to data calls, is refused without one.',
      ),
    a001Secret: SecretRef.optional().describe(
      'For systems that cannot present a certificate (application-restricted ASIDs only): the A001 token must equal this secret.',
    ),
    networkOnly: z
      .string()
      .min(10, { message: 'expected the reason, in words, why the network alone is trusted for this ASID' })
      .optional()
      .describe('No caller authentication, on purpose: the written reason why the network placement is enough.'),
  })
  .strict();

/**
 * One e-RS role given in the rules instead of by A030 (test-environment aids: `asids.<asid>.testUsers`,
 * `cis2.seedRoles`): a business function at an organisation.
 */
const SeededRole = z
  .object({
    odsCode: OdsCode,
    orgName: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The organisation name shown in the A001 permission. Default: cis2.organisationNames, else the ODS code.',
      ),
    businessFunction: z.enum(BUSINESS_FUNCTIONS, {
      message: `expected a business function: ${BUSINESS_FUNCTIONS.join(', ')}`,
    }),
  })
  .strict();
export type SeededRoleConfig = z.output<typeof SeededRole>;

/** The prefix of the A001 token that names a test user: `test-user:<12-digit user id>`. */
export const TEST_USER_TOKEN_PREFIX = 'test-user:';

const TestUser = z
  .object({
    firstName: z.string().min(1, { message: 'expected the first name of the test user' }),
    lastName: z.string().min(1, { message: 'expected the last name of the test user' }),
    roles: z.array(SeededRole).min(1, { message: 'expected at least one role' }),
  })
  .strict();
export type TestUserConfig = z.output<typeof TestUser>;

/** NHS APIM hosts that require an access token on every call: all but the sandboxes (sandbox, *-sandbox). */
export function isTokenCheckedApimHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === 'api.service.nhs.uk') return true;
  return h.endsWith('.api.service.nhs.uk') && !h.split('.')[0]!.endsWith('sandbox');
}

const ApplicationRestrictedAsid = z
  .object({
    accessMode: z.literal('application-restricted'),
    description: z.string().optional(),
    apim: ApimApplication.optional().describe(
      'The APIM application this ASID maps to (one ASID per APIM application). Required unless apim.auth is none.',
    ),
    organisation: z
      .object({ odsCode: OdsCode, name: z.string().min(1, { message: 'expected the organisation name' }) })
      .strict()
      .describe('The organisation registered on the APIM application; shown to legacy clients as the A001 permission.'),
    businessFunction: z.enum(BUSINESS_FUNCTIONS, {
      message: `expected a business function: ${BUSINESS_FUNCTIONS.join(', ')}`,
    }),
    user: z
      .object({
        identifier: z.string().regex(/^\d{12}$/, { message: 'expected a 12-digit user id' }),
        firstName: z.string(),
        lastName: z.string(),
      })
      .strict()
      .optional()
      .describe('How the A001 user looks to legacy clients. Defaults to the application itself.'),
    allowedCodes: z
      .array(ACodeSchema)
      .optional()
      .describe('The A-codes (message sets) this ASID may call. Absent: every operation its access mode allows.'),
    callerAuth: CallerAuth.optional(),
  })
  .strict();

const UserRestrictedAsid = z
  .object({
    accessMode: z.literal('user-restricted'),
    description: z.string().optional(),
    apim: ApimApplication.extend({
      apiSecret: SecretRef.describe(
        'The APIM application secret: refreshing a user token uses client_secret_post with the API key and this secret.',
      ),
    })
      .strict()
      .optional()
      .describe('The APIM application this ASID maps to. Required unless apim.auth is none.'),
    allowedCodes: z
      .array(ACodeSchema)
      .optional()
      .describe('The A-codes (message sets) this ASID may call. Absent: every operation.'),
    callerAuth: CallerAuth.omit({ a001Secret: true }).optional(),
    testUsers: z
      .record(z.string().regex(/^\d{12}$/, { message: 'expected a 12-digit user id' }), TestUser)
      .optional()
      .describe(
        'Open-access test environments only (apim.auth none: the NHS sandbox, Dev1, Dev3): the users of this ASID, by 12-digit user id, with their roles. A001 names one with the token "test-user:<id>"; there is no CIS2 sign-in. Refused with signed-jwt.',
      ),
  })
  .strict();

export const AsidRules = z.discriminatedUnion('accessMode', [ApplicationRestrictedAsid, UserRestrictedAsid], {
  error: (issue) =>
    issue.code === 'invalid_union' ? 'expected accessMode: application-restricted or user-restricted' : undefined,
});

const Cis2ClientAuth = z.discriminatedUnion(
  'method',
  [
    z
      .object({
        method: z.literal('private_key_jwt'),
        keyId: z.string().min(1, { message: 'expected the kid registered with CIS2' }),
        privateKey: SecretRef,
        signingAlg: z.enum(['RS256', 'RS512']).default('RS512'),
      })
      .strict(),
    z.object({ method: z.literal('client_secret_post'), secret: SecretRef }).strict(),
    z.object({ method: z.literal('client_secret_basic'), secret: SecretRef }).strict(),
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? 'expected method: private_key_jwt, client_secret_post or client_secret_basic'
        : undefined,
  },
);

const Cis2Rules = z
  .object({
    issuer: httpsOrLoopbackUrl(
      'the CIS2 issuer URL (its discovery document is <issuer>/.well-known/openid-configuration)',
    ),
    clientId: z.string().min(1, { message: 'expected the CIS2 client id registered for ers-bridge' }),
    clientAuth: Cis2ClientAuth,
    redirectUri: httpsOrLoopbackUrl('the callback URL registered with CIS2 (ending in /login/callback)').refine(
      (u) => u.endsWith('/login/callback'),
      { message: 'expected the callback URL to end in /login/callback, the path ers-bridge serves it on' },
    ),
    acrValues: z.string().min(1).default('AAL2_OR_AAL3_ANY'),
    scope: z.string().default('openid profile'),
    maxAgeSeconds: z.number().int().min(0).max(86_400).default(300),
    acceptedAudiences: z
      .array(z.string().min(1))
      .default([])
      .describe('Audiences accepted, besides clientId, on ID tokens that partly upgraded clients bring to A001.'),
    returnTo: z
      .array(httpsOrLoopbackUrl('a return_to URL'))
      .default([])
      .describe('Registered return_to URLs (exact match) the sign-in page may redirect to with the one-time code.'),
    signInCodeTtlSeconds: z.number().int().min(30).max(1800).default(300),
    organisationNames: z
      .record(z.string(), z.string())
      .default({})
      .describe('Organisation names by ODS code, for the A001 permissions (A030 gives only ODS codes).'),
    seedRoles: z
      .record(z.string().min(1), z.array(SeededRole).min(1, { message: 'expected at least one role' }))
      .optional()
      .describe(
        'A test-environment aid: roles by CIS2 user id, offered at A001 instead of asking APIM (A030). e-RS still checks the selected role against the roles the user really holds, on every call. Refused against production APIM.',
      ),
    limits: z
      .object({
        pendingPerAsid: z.number().int().min(1).max(1_000_000).default(1_000),
        pendingPerAddress: z.number().int().min(1).max(100_000).default(20),
        loginsPerMinutePerAddress: z.number().int().min(1).max(100_000).default(30),
      })
      .strict()
      .prefault({})
      .describe(
        'Sign-ins in progress at most per ASID and per client address, and /login starts per minute per address.',
      ),
  })
  .strict();

/** Size bound and rotation of a JSON-lines file: at most maxFiles files of at most maxBytes each. */
const ROTATION = {
  maxBytes: z
    .number()
    .int()
    .min(1024)
    .default(50 * 1024 * 1024),
  maxFiles: z.number().int().min(1).max(100).default(5),
};

const ModeName = z.enum(['translate', 'passthrough', 'shadow', 'canary'], {
  message: 'expected a mode: translate, passthrough, shadow or canary',
});

const ShadowSettings = z
  .object({
    primary: z
      .enum(['legacy', 'apim'], { message: 'expected primary: legacy or apim (the side that answers the client)' })
      .default('legacy'),
    sampleRate: z.number().min(0).max(1).default(1),
    maxConcurrent: z.number().int().min(1).max(1000).default(16),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(120_000)
      .default(10_000)
      .describe(
        'How long a copy may take: a copy still running is stopped between timeoutMs and 1.1 × timeoutMs after it started (the copies of each tenth of it share one deadline), and compared as timed out.',
      ),
    noiseBaseline: z
      .boolean()
      .default(false)
      .describe(
        'Call the primary twice (read-only operations only); fields that differ between its answers are noise.',
      ),
    compareHeaders: z.array(z.string().min(1)).optional(),
    ignoreHeaders: z.array(z.string().min(1)).default([]),
    ignorePaths: z.array(z.string().min(1)).default([]),
    presets: z
      .boolean()
      .optional()
      .describe(
        'Count the known differences APIM has by design (A008 referralRequestVersion, A023 communicationRequestVersion) as ignored by preset, not as differences (the default). false compares them as any other field.',
      ),
  })
  .strict();

const CanarySettings = z
  .object({
    percent: z.number().min(0).max(100).describe('Share of sessions (or ASIDs) sent to APIM; the rest pass through.'),
    by: z.enum(['session', 'asid']).default('session').describe('What stays on one side: a session, or a whole ASID.'),
  })
  .strict();

const RouteMode = z.union([
  ModeName,
  z
    .object({
      mode: ModeName,
      shadow: ShadowSettings.partial().optional(),
      canary: CanarySettings.optional(),
    })
    .strict(),
]);

const Modes = z
  .object({
    default: ModeName.default('translate'),
    routes: z
      .record(
        z.string().refine((k) => (/^A\d{3}$/.test(k) ? ALL_CODES.includes(k) : k.startsWith('/')), {
          message:
            'expected an A-code ers-bridge knows or a legacy path pattern such as /STU3/v1/ReferralRequest/{ubrn}',
        }),
        RouteMode,
      )
      .default({}),
    shadow: ShadowSettings.prefault({}),
    canary: CanarySettings.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const uses = (name: string) =>
      m.default === name || Object.values(m.routes).some((r) => (typeof r === 'string' ? r : r.mode) === name);
    if (uses('canary') && !m.canary && !Object.values(m.routes).some((r) => typeof r !== 'string' && r.canary)) {
      ctx.addIssue({
        code: 'custom',
        path: ['canary'],
        message: 'expected canary settings (percent) because a route uses canary',
      });
    }
  });

export type ModeSettings = z.output<typeof Modes>;
export type ShadowConfig = z.output<typeof ShadowSettings>;
export type CanaryConfig = z.output<typeof CanarySettings>;

export const RulesSchema = z
  .object({
    $schema: z.string().optional(),
    environment: z.string().regex(/^[a-z][a-z0-9-]*$/, { message: 'expected an environment name such as int or prod' }),
    description: z.string().optional(),
    legacy: z
      .object({
        host: Hostname.describe('The HSCN host this environment replaces, e.g. api.int1.ers.ncrs.nhs.uk.'),
        baseUrl: httpsOrLoopbackUrl('the legacy API base URL (ending in /ers-api)')
          .optional()
          .describe('Where passthrough and shadow send legacy calls. Default: https://<host>/ers-api.'),
        tls: z
          .object({
            certificate: SecretRef.describe('The Spine endpoint certificate (PEM) for mutual TLS, as HSCN required.'),
            privateKey: SecretRef.describe('Its private key (PEM).'),
            ca: SecretRef.optional().describe(
              'Extra CA certificates (PEM) to trust for the legacy host, e.g. the NHS Root and Sub CAs.',
            ),
          })
          .strict()
          .optional(),
        production: z
          .boolean()
          .default(true)
          .describe('A production side never receives shadowed writes. Set false only for a test stand-in.'),
        publicBaseUrl: httpsOrLoopbackUrl('the legacy base URL ers-bridge serves (ending in /ers-api)')
          .optional()
          .describe(
            'The legacy base URL as clients reach ers-bridge, e.g. https://ers-bridge.trust.nhs.uk/ers-api. Absent: taken from each request.',
          ),
      })
      .strict(),
    apim: z
      .object({
        baseUrl: httpsOrLoopbackUrl('the APIM e-RS base URL (ending in /FHIR)'),
        auth: z
          .enum(['signed-jwt', 'none'], { message: 'expected auth: signed-jwt, or none (the open-access sandbox)' })
          .default('signed-jwt'),
        production: z
          .boolean()
          .default(true)
          .describe(
            'A production side never receives shadowed writes. Set false only for a stand-in (e.g. emulate-apim).',
          ),
        ca: SecretRef.optional().describe('Extra CA certificates (PEM) to trust for APIM, e.g. a stand-in on TLS.'),
        tokenUrl: httpsOrLoopbackUrl('the APIM token URL (ending in /oauth2/token)').optional(),
        connections: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .default(64)
          .describe('Connections to APIM per APIM application (each application has its own pool).'),
        concurrency: z
          .object({
            perApplication: z.number().int().min(1).max(1024).default(32),
            maxQueue: z.number().int().min(0).max(100_000).default(64),
            maxWaitMs: z.number().int().min(0).max(60_000).default(5_000),
          })
          .strict()
          .prefault({})
          .describe(
            'Calls in flight to APIM at most per APIM application, and how many may wait for a slot: hung calls of one application never hold up another.',
          ),
        maxPauseSeconds: z
          .number()
          .int()
          .min(1)
          .max(3_600)
          .default(60)
          .describe("The longest ers-bridge pauses an application after APIM's 429, whatever its Retry-After says."),
        rateLimit: z
          .object({
            requestsPerSecond: z.number().positive().max(10_000),
            burst: z.number().int().min(1).optional(),
            maxQueue: z.number().int().min(0).max(100_000).default(50),
            maxWaitMs: z.number().int().min(0).max(60_000).default(5_000),
            spikeArrest: z
              .boolean()
              .default(false)
              .describe(
                "Space calls evenly within the second (burst 1, one call every 1/requestsPerSecond s), as APIM's spike arrest smooths its limit: no burst draws APIM 429s. Overrides burst.",
              ),
            localShareFloor: z
              .number()
              .positive()
              .max(10_000)
              .optional()
              .describe(
                'With the Redis session store the budget is shared by every replica; while Redis is unreachable each process allows requestsPerSecond ÷ the replicas it last saw, but never less than this (requests/s). Default: no floor.',
              ),
          })
          .strict()
          .optional()
          .describe(
            "Client-side limit per APIM application (production allows about 10 requests/s per application). With the Redis session store it is one budget shared by every replica and worker (and so is a pause after APIM's 429).",
          ),
        timeouts: z
          .object({
            connectMs: z.number().int().min(100).max(60_000).default(5_000),
            headersMs: z.number().int().min(1_000).max(600_000).default(185_000),
            bodyMs: z.number().int().min(1_000).max(600_000).default(60_000),
          })
          .strict()
          .prefault({}),
        successors: SuccessorSettings.prefault({}).describe(
          'How the legacy operations APIM has retired are answered (A006 → A042; A021/A032 → A011/A031 then A016): src/legacy/successors.ts, MIGRATION.md.',
        ),
      })
      .strict()
      .refine((a) => a.auth === 'none' || a.tokenUrl !== undefined, {
        message: 'expected tokenUrl when auth is signed-jwt',
        path: ['tokenUrl'],
      }),
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        opsHost: z.string().optional().describe('Where /healthz, /readyz and /metrics listen. Default: server.host.'),
        opsPort: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(8081)
          .describe('The port of /healthz, /readyz and /metrics, apart from the legacy port (env OPS_PORT overrides).'),
        readyDuringStoreOutage: z
          .boolean()
          .default(true)
          .describe(
            'Whether /readyz stays 200 ("degraded") while a session store reached before is unreachable: every replica shares the store, so pulling them all would turn legacy 503 + Retry-After answers into refused connections (deploy/README.md). A store never reached since start is always unready. false: unready during any store outage.',
          ),
        allowedHosts: z
          .array(Hostname)
          .min(1)
          .optional()
          .describe(
            'The Host values the legacy port answers (host or host:port, any case). Default: the host of legacy.publicBaseUrl; any other Host gets 421.',
          ),
        trustedProxies: z
          .object({
            addresses: z
              .array(
                z.string().refine(isAddressOrRange, {
                  message: 'expected an IP address or a CIDR range such as 10.0.0.0/8',
                }),
              )
              .min(1, { message: 'expected at least one proxy address or CIDR range' })
              .describe(
                'Addresses (or CIDR ranges) of the TLS-terminating proxies whose forwarded certificate is trusted.',
              ),
            clientCertificateHeader: z
              .enum(['x-forwarded-client-cert', 'ssl-client-cert'], {
                message: 'expected x-forwarded-client-cert (Envoy) or ssl-client-cert (ingress-nginx)',
              })
              .describe("The header the proxy puts the verified client certificate in: Envoy's or ingress-nginx's."),
            clientCa: SecretRef.optional().describe(
              'The CA certificates (PEM) forwarded certificates must chain to: ers-bridge checks again what the proxy verified.',
            ),
          })
          .strict()
          .optional()
          .describe(
            'Behind a TLS-terminating ingress: the client certificate it verified, accepted only from these addresses (dropped from anyone else).',
          ),
        tls: z
          .object({
            certificate: SecretRef.describe("ers-bridge's server certificate chain (PEM)."),
            privateKey: SecretRef.describe('Its private key (PEM).'),
            minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
            clientCertificates: z
              .enum(['required', 'optional', 'off'], {
                message: 'expected clientCertificates: required, optional or off',
              })
              .default('off')
              .describe(
                'Mutual TLS: required (no handshake without a certificate from clientCa), optional (asked for; ASIDs with a certificate binding still need one), off.',
              ),
            clientCa: SecretRef.optional().describe(
              'The CA certificates (PEM) client certificates must chain to: the Spine CA chain, or your own.',
            ),
          })
          .strict()
          .optional()
          .describe('TLS on the legacy port (reloaded with the rules), optionally with client certificates.'),
        limits: z
          .object({
            connections: z.number().int().min(1).max(1_000_000).default(4_096),
            connectionsPerAddress: z.number().int().min(1).max(100_000).default(256),
            headersTimeoutMs: z.number().int().min(1_000).max(300_000).default(15_000),
            requestTimeoutMs: z.number().int().min(1_000).max(600_000).default(120_000),
            keepAliveTimeoutMs: z.number().int().min(1_000).max(600_000).default(10_000),
          })
          .strict()
          .prefault({})
          .describe(
            'Connections at most (in all, and per client address), and how long a client may take to send its headers and its whole request.',
          ),
        maxRequestBodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(50 * 1024 * 1024)
          .default(5 * 1024 * 1024 + 64 * 1024),
        maxResponseRewriteBytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(16 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    modes: Modes.prefault({}).describe(
      'Where each legacy call is answered from: translate, passthrough, shadow or canary.',
    ),
    comparison: z
      .object({
        file: z
          .string()
          .min(1)
          .optional()
          .describe(
            'JSON-lines file for comparison records (redacted). With the memory session store the admin pages are reloaded from it at start. Absent: kept in memory.',
          ),
        ...ROTATION,
        retentionDays: z
          .number()
          .int()
          .min(1)
          .max(400)
          .default(35)
          .describe(
            'Days of comparison figures the admin pages keep (in memory, or in Redis with the Redis session store).',
          ),
      })
      .strict()
      .optional(),
    record: z
      .object({
        file: z
          .string()
          .min(1)
          .describe('JSON-lines file legacy traffic is recorded to (redacted), for `ers-bridge replay`.'),
        ...ROTATION,
        codes: z.array(ACodeSchema).optional().describe('Record only these A-codes. Absent: every data call.'),
      })
      .strict()
      .optional(),
    admin: z
      .object({
        token: SecretRef.optional().describe('Bearer (or HTTP Basic password for user admin) protecting /admin/*.'),
        open: z
          .boolean()
          .default(false)
          .describe('No authentication: for the local demo only; refused unless the rules are loopback-only.'),
      })
      .strict()
      .optional(),
    cis2: Cis2Rules.optional().describe('CIS2 (NHS Care Identity Service 2) sign-in, for user-restricted ASIDs.'),
    sessions: z
      .object({
        store: z
          .enum(['memory', 'redis'], { message: 'expected store: memory (one node) or redis (several replicas)' })
          .default('memory')
          .describe(
            'memory: one node (the default). redis: sessions shared by every replica. Env ERS_BRIDGE_SESSION_STORE overrides.',
          ),
        redis: z
          .object({
            url: z
              .string()
              .refine((u) => SECRET_REF.test(u) || (REDIS_URL.test(u) && !hasPassword(u)), {
                message:
                  'expected a redis:// or rediss:// URL without a password, or a secret reference (env:NAME, file:/path) for one with a password',
              })
              .register(secretFields, { secret: true })
              .optional()
              .describe('One Redis node. One of url, sentinel or cluster.'),
            sentinel: RedisSentinelRules.optional().describe(
              'Redis Sentinel: ers-bridge asks the sentinels for the primary and follows a failover without a restart. One of url, sentinel or cluster.',
            ),
            cluster: RedisClusterRules.optional().describe(
              "Redis Cluster (e.g. a managed Redis in cluster mode): ers-bridge follows the slot map and a primary's failover to its replica. The keys of one ASID share a hash slot (README, sessions). One of url, sentinel or cluster.",
            ),
            keyPrefix: z
              .string()
              .regex(/^[A-Za-z0-9:_.-]{1,64}$/, { message: 'expected a key prefix of letters, digits and : _ . -' })
              .default('ers-bridge:'),
            timeoutMs: z.number().int().min(100).max(30_000).default(2_000),
            acknowledgement: z
              .object({
                replicas: z.number().int().min(0).max(16).default(1),
                timeoutMs: z.number().int().min(10).max(5_000).default(500),
              })
              .strict()
              .optional()
              .describe(
                "Writes that must survive a failover wait (Redis WAIT) until this many replicas hold them, at most timeoutMs: before a CIS2 user's single-use refresh token is spent, its 'being spent' mark (no acknowledgement in time: the refresh token is not sent and the call gets the legacy 503 with Retry-After); and, best effort, A001's new session, A002's role and renewed CIS2 tokens (no acknowledgement in time: the write stands, counted in ers_bridge_session_writes_unacknowledged_total). Absent or replicas 0: no wait (one node).",
              ),
          })
          .strict()
          .superRefine((redis, ctx) => {
            if (redis.acknowledgement && redis.acknowledgement.timeoutMs >= redis.timeoutMs) {
              ctx.addIssue({
                code: 'custom',
                path: ['acknowledgement', 'timeoutMs'],
                message: `expected less than sessions.redis.timeoutMs (${redis.timeoutMs}), which bounds every Redis command`,
              });
            }
            if (redis.cluster !== undefined) {
              if (redis.url !== undefined || redis.sentinel !== undefined) {
                ctx.addIssue({
                  code: 'custom',
                  path: [],
                  message: 'expected cluster (Redis Cluster) alone, without url or sentinel',
                });
              }
            } else if ((redis.url === undefined) === (redis.sentinel === undefined)) {
              ctx.addIssue({
                code: 'custom',
                path: [],
                message:
                  'expected either url (one Redis node) or sentinel (Redis Sentinel), not both and not neither (or cluster, for Redis Cluster, instead of both)',
              });
            }
          })
          .optional(),
        encryption: z
          .object({
            current: z.string().min(1, { message: 'expected the id of the key that encrypts new records' }),
            keys: z
              .record(
                z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, { message: 'expected a key id of letters, digits, _ or -' }),
                SecretRef,
              )
              .refine((k) => Object.keys(k).length > 0, { message: 'expected at least one key' }),
          })
          .strict()
          .optional()
          .describe(
            'AES-256-GCM keys (32 bytes, base64) for session records at rest; old keys keep decrypting after rotation.',
          ),
        idleTimeoutSeconds: z.number().int().min(30).max(86_400).default(3_600),
        absoluteTimeoutSeconds: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400)
          .default(43_200),
        maxSessions: z.number().int().min(1).max(10_000_000).default(200_000),
        maxPerAsid: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .default(20_000)
          .describe("Live sessions at most per ASID; beyond it that ASID's own oldest sessions end first."),
        maxRecordBytes: z
          .number()
          .int()
          .min(1_024)
          .max(1_048_576)
          .default(32_768)
          .describe('The largest session record ers-bridge stores.'),
        a001PerSecondPerAsid: z
          .object({
            rate: z.number().positive().max(100_000).default(20),
            burst: z.number().int().min(1).max(1_000_000).default(100),
          })
          .strict()
          .prefault({})
          .describe('A001 (create session) calls per second per ASID, with a burst.'),
      })
      .strict()
      .prefault({})
      .superRefine((sessions, ctx) => {
        if (sessions.store !== 'redis') return;
        if (!sessions.redis) {
          ctx.addIssue({
            code: 'custom',
            path: ['redis'],
            message: 'expected redis.url, redis.sentinel or redis.cluster because store is redis',
          });
        }
        if (!sessions.encryption) {
          ctx.addIssue({
            code: 'custom',
            path: ['encryption'],
            message:
              'expected encryption keys because store is redis (sessions hold tokens: they are encrypted at rest)',
          });
        } else if (!(sessions.encryption.current in sessions.encryption.keys)) {
          ctx.addIssue({
            code: 'custom',
            path: ['encryption', 'current'],
            message: 'expected the id of one of encryption.keys',
          });
        }
      }),
    asids: z.record(AsidSchema, AsidRules).refine((r) => Object.keys(r).length > 0, {
      message: 'expected at least one ASID',
    }),
  })
  .strict()
  .superRefine((rules, ctx) => {
    if (rules.admin?.open && !['127.0.0.1', 'localhost', '::1'].includes(rules.server.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'open'],
        message: 'expected open only when ers-bridge listens on loopback (the local demo); give admin.token instead',
      });
    }
    const open = rules.apim.auth === 'none';
    const apimHost = URL.canParse(rules.apim.baseUrl) ? new URL(rules.apim.baseUrl).hostname : '';
    if (open && isTokenCheckedApimHost(apimHost)) {
      ctx.addIssue({
        code: 'custom',
        path: ['apim', 'baseUrl'],
        message: `expected an open-access APIM base URL with auth none (the NHS sandbox, or a stand-in): ${apimHost} needs an access token on every call, so give auth signed-jwt and tokenUrl`,
      });
    }
    if (rules.cis2?.seedRoles && apimHost === 'api.service.nhs.uk') {
      ctx.addIssue({
        code: 'custom',
        path: ['cis2', 'seedRoles'],
        message: 'expected no seedRoles against production APIM: seeded roles are a test-environment aid',
      });
    }
    for (const [asid, cfg] of Object.entries(rules.asids)) {
      if (cfg.accessMode !== 'user-restricted') continue;
      if (!open && !rules.cis2) {
        ctx.addIssue({
          code: 'custom',
          path: ['cis2'],
          message: `expected a cis2 block because ASID ${asid} is user-restricted (its users sign in with CIS2)`,
        });
      }
      if (!open && cfg.testUsers) {
        ctx.addIssue({
          code: 'custom',
          path: ['asids', asid, 'testUsers'],
          message:
            'expected no testUsers with apim.auth signed-jwt: test users are for open-access environments only (apim.auth none); here users sign in with CIS2 (cis2.seedRoles can give them roles)',
        });
      }
      if (open && Object.keys(cfg.testUsers ?? {}).length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['asids', asid, 'testUsers'],
          message:
            'expected testUsers (users by 12-digit id, with their roles) because apim.auth is none: there is no CIS2 token exchange in an open-access environment, so A001 names a test user ("test-user:<id>")',
        });
      }
    }
    if (rules.apim.auth === 'none') return;
    for (const [asid, cfg] of Object.entries(rules.asids)) {
      if (!cfg.apim) {
        ctx.addIssue({
          code: 'custom',
          path: ['asids', asid, 'apim'],
          message: 'expected the APIM application (apiKey, keyId, privateKey) because apim.auth is signed-jwt',
        });
      }
    }
  });

export type Rules = z.output<typeof RulesSchema>;
export type AsidConfig = z.output<typeof AsidRules>;
export type ApplicationRestrictedConfig = z.output<typeof ApplicationRestrictedAsid>;
export type UserRestrictedConfig = z.output<typeof UserRestrictedAsid>;
export type Cis2Config = z.output<typeof Cis2Rules>;
