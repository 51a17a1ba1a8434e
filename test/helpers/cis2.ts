/**
 * A real OpenID Provider (panva's oidc-provider) on loopback standing in for CIS2: users with IAL/AAL claims and
 * names, PKCE required, its development login and consent pages for the browser. Its signing key is generated at
 * test time and exposed so tests can also mint ID tokens "from CIS2" with chosen claims.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, type JWK, SignJWT } from 'jose';
import Provider from 'oidc-provider';

export interface Cis2User {
  given_name: string;
  family_name: string;
  id_assurance_level: number;
  authentication_assurance_level: number;
}

export interface Cis2StandIn {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The public signing keys (what APIM fetches to verify subject tokens). */
  jwks: { keys: JWK[] };
  /** Registers the relying party's callback (known only once ers-bridge listens). */
  setRedirectUri(uri: string): void;
  /** Mints an ID token signed with CIS2's key, with the claims given (for A001 with a raw ID token). */
  mintIdToken(
    claims: Record<string, unknown>,
    options?: { issuer?: string; expiresInSeconds?: number },
  ): Promise<string>;
  close(): Promise<void>;
}

export async function startCis2(users: Record<string, Cis2User>): Promise<Cis2StandIn> {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `cis2-${randomUUID().slice(0, 8)}`;
  const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } as JWK;
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } as JWK;
  const clientId = 'ers-bridge-test.apps.national';
  const clientSecret = randomUUID();
  let provider: any;
  let handler: ((req: unknown, res: unknown) => void) | undefined;
  server.on('request', (req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end('CIS2 stand-in not ready');
  });

  const build = (redirectUri: string) => {
    provider = new Provider(issuer, {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: [redirectUri],
          response_types: ['code'],
          grant_types: ['authorization_code'],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
      jwks: { keys: [privateJwk] },
      claims: {
        openid: ['sub', 'id_assurance_level', 'authentication_assurance_level'],
        profile: ['given_name', 'family_name', 'name'],
      },
      conformIdTokenClaims: false,
      acrValues: ['AAL2_OR_AAL3_ANY', 'AAL3_ANY'],
      pkce: { required: () => true },
      features: { devInteractions: { enabled: true } },
      cookies: { keys: [randomUUID()] },
      findAccount: async (_ctx: unknown, sub: string) => {
        const u = users[sub];
        if (!u) return undefined;
        return {
          accountId: sub,
          claims: async () => ({ sub, ...u, name: `${u.given_name} ${u.family_name}` }),
        };
      },
    });
    handler = provider.callback();
  };
  build('http://127.0.0.1/login/callback');

  return {
    issuer,
    clientId,
    clientSecret,
    jwks: { keys: [publicJwk] },
    setRedirectUri: build,
    async mintIdToken(claims, options = {}) {
      const key = await importJWK(privateJwk, 'RS256');
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(clientId)
        .setIssuedAt(now)
        .setExpirationTime(now + (options.expiresInSeconds ?? 300))
        .sign(key);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
