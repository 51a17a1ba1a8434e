/**
 * The Docker Compose trial (deploy/docker-compose.yml and deploy/compose-rules.yaml): the services and how they are
 * wired, run hardened, and given rules that ers-bridge accepts. Docker itself is not needed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildApimStandIn } from '../../src/apim-standin/index.js';
import { parseRules, RulesError } from '../../src/rules/load.js';
import { clientAssertion, tokenForm } from '../apim-standin/helpers.js';
import { newApimApp } from '../helpers/apim-app.js';

const DEPLOY = new URL('../../deploy/', import.meta.url);
const COMPOSE_TEXT = readFileSync(new URL('docker-compose.yml', DEPLOY), 'utf8');
const RULES_TEXT = readFileSync(new URL('compose-rules.yaml', DEPLOY), 'utf8');
const compose = parse(COMPOSE_TEXT, { merge: true }) as { name?: string; services: Record<string, any> };
const services = compose.services;
/** The secrets the compose file's comment tells the reader to put in deploy/.env. */
const DOT_ENV = [
  'ERS_DEMO_API_KEY',
  'ERS_DEMO_PRIVATE_KEY',
  'SESSION_KEY_1',
  'APIM_STANDIN_CA',
  'APIM_STANDIN_TLS_CERT',
  'APIM_STANDIN_TLS_KEY',
];

function envRefs(text: string): string[] {
  return [...text.matchAll(/\benv:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
}

function flag(command: string[], name: string): string | undefined {
  const i = command.indexOf(name);
  return i >= 0 ? command[i + 1] : undefined;
}

describe('deploy/docker-compose.yml', () => {
  it('has redis, apim-standin and ers-bridge', () => {
    expect(Object.keys(services).sort()).toEqual(['apim-standin', 'ers-bridge', 'redis']);
  });

  it('redis: the official redis:7 image, no persistence, healthcheck redis-cli ping', () => {
    const redis = services['redis'];
    expect(redis.image).toMatch(/^redis:7(\b|$)/);
    expect(redis.command).toEqual(['redis-server', '--save', '', '--appendonly', 'no']);
    expect(redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(redis.volumes).toBeUndefined();
  });

  it('the stand-in and ers-bridge are the image built from the repository Dockerfile', () => {
    for (const name of ['apim-standin', 'ers-bridge']) {
      const s = services[name];
      expect(s.build, name).toEqual({ context: '..', dockerfile: 'Dockerfile' });
      expect(existsSync(new URL(`${s.build.context}/${s.build.dockerfile}`, DEPLOY)), name).toBe(true);
    }
    expect(services['ers-bridge'].image).toBe(services['apim-standin'].image);
  });

  it('the stand-in emulates APIM for the rules ers-bridge serves, mounted the same way, on port 9000', () => {
    const command = services['apim-standin'].command as string[];
    expect(command[0]).toBe('emulate-apim');
    expect(flag(command, '--rules')).toBe('/app/deploy/compose-rules.yaml');
    expect(services['apim-standin'].volumes).toEqual(['./compose-rules.yaml:/app/deploy/compose-rules.yaml:ro']);
    expect(flag(command, '--port')).toBe('9000');
    // Healthy = a TLS handshake on 9000 as apim-standin, verified with the trial's CA.
    const check = services['apim-standin'].healthcheck.test.join(' ');
    expect(check).toContain("host:'127.0.0.1',port:9000,servername:'apim-standin',ca:process.env.APIM_STANDIN_CA");
    expect(check).toContain('this.authorized');
  });

  it('the stand-in listens on every interface of its own namespace, on TLS, under its service name', () => {
    const command = services['apim-standin'].command as string[];
    expect(flag(command, '--host')).toBe('0.0.0.0');
    expect(flag(command, '--public-url')).toBe('https://apim-standin:9000');
    expect(flag(command, '--cert')).toBe('env:APIM_STANDIN_TLS_CERT');
    expect(flag(command, '--key')).toBe('env:APIM_STANDIN_TLS_KEY');
    // The recipe makes the stand-in's certificate for that name.
    expect(COMPOSE_TEXT).toContain('subjectAltName=DNS:apim-standin');
  });

  it('ers-bridge serves the compose rules, mounted read-only where the command expects them', () => {
    const bridge = services['ers-bridge'];
    expect(bridge.command).toEqual(['serve', '--rules', '/app/deploy/compose-rules.yaml', '--host', '0.0.0.0']);
    expect(bridge.volumes).toContain('./compose-rules.yaml:/app/deploy/compose-rules.yaml:ro');
    expect(existsSync(new URL('compose-rules.yaml', DEPLOY))).toBe(true);
  });

  it('ers-bridge waits for a healthy Redis and stand-in, and uses Redis for its sessions', () => {
    const bridge = services['ers-bridge'];
    expect(bridge.depends_on).toEqual({
      redis: { condition: 'service_healthy' },
      'apim-standin': { condition: 'service_healthy' },
    });
    expect(bridge.environment.ERS_BRIDGE_SESSION_STORE).toBe('redis://redis:6379');
    // On the ops port (OPS_PORT, else 8081), not the legacy port: /readyz and /healthz are not served there.
    const check = bridge.healthcheck.test.join(' ');
    expect(check).toContain("'http://127.0.0.1:'+(process.env.OPS_PORT||8081)+'/readyz'");
    expect(check).not.toContain(':8080');
  });

  it('secrets come from deploy/.env only, and the comment says how to generate each', () => {
    for (const name of ['apim-standin', 'ers-bridge']) expect(services[name].env_file, name).toBe('.env');
    for (const s of DOT_ENV) expect(COMPOSE_TEXT).toMatch(new RegExp(`echo "${s}=|'${s}="`));
    // No secret value in the file itself.
    expect(COMPOSE_TEXT).not.toMatch(/PRIVATE KEY-----|ERS_DEMO_API_KEY:|SESSION_KEY_1:/);
    // Every secret the rules file (read by both services) and the stand-in's TLS flags reference is one of them.
    const standInRefs = envRefs((services['apim-standin'].command as string[]).join(' '));
    expect(new Set([...envRefs(RULES_TEXT), ...standInRefs])).toEqual(new Set(DOT_ENV));
  });

  it('ers-bridge and the stand-in run as non-root with a read-only root filesystem', () => {
    for (const name of ['apim-standin', 'ers-bridge']) {
      const s = services[name];
      expect(s.read_only, name).toBe(true);
      expect(s.user, name).toBe('node');
      expect(s.cap_drop, name).toEqual(['ALL']);
    }
  });

  it('each service has its own network namespace: no network_mode, reached by service name', () => {
    for (const [name, s] of Object.entries(services)) expect(s.network_mode, name).toBeUndefined();
    expect(compose).not.toHaveProperty('network_mode');
  });

  it('ports 8080 (legacy) and 8081 (ops) are published by ers-bridge, on host loopback; nothing else is', () => {
    expect(services['ers-bridge'].ports).toEqual(['127.0.0.1:8080:8080', '127.0.0.1:8081:8081']);
    expect(services['apim-standin'].ports).toBeUndefined();
    expect(services['redis'].ports).toBeUndefined();
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(new URL('../Dockerfile', DEPLOY), 'utf8');

  it('exposes the legacy port (8080) and the ops port (8081)', () => {
    expect(text).toMatch(/^EXPOSE 8080 8081$/m);
  });

  it('the default command serves the rules at ERS_BRIDGE_RULES, /etc/ers-bridge/rules.yaml (where k8s mounts them)', () => {
    expect(text).toMatch(/^ENV ERS_BRIDGE_RULES=\/etc\/ers-bridge\/rules\.yaml$/m);
    expect(text).toMatch(/^CMD \["serve", "--host", "0\.0\.0\.0"\]$/m);
    expect(text).toMatch(
      /^ENTRYPOINT \["node", "--max-semi-space-size=8", "--no-allocation-site-pretenuring", "bin\/ers-bridge\.js"\]$/m,
    );
    const k8s = readFileSync(new URL('k8s/base/deployment.yaml', DEPLOY), 'utf8');
    expect(k8s).toContain('/etc/ers-bridge/rules.yaml');
  });

  it('HEALTHCHECK asks /healthz on the ops port (OPS_PORT, else 8081), not the legacy port', () => {
    const healthcheck = text.slice(text.indexOf('HEALTHCHECK'), text.indexOf('ENTRYPOINT'));
    expect(healthcheck).toContain("'http://127.0.0.1:'+(process.env.OPS_PORT||8081)+'/healthz'");
    expect(healthcheck).not.toMatch(/process\.env\.PORT|8080/);
  });
});

describe('deploy/compose-rules.yaml', () => {
  const rules = parseRules(RULES_TEXT, 'deploy/compose-rules.yaml');

  it('serves the ops surface on the port the compose file publishes and checks (8081)', () => {
    expect(rules.server.opsPort).toBe(8081);
    expect(rules.server.opsHost).toBeUndefined(); // the legacy port's address: --host 0.0.0.0
  });

  it('passes the rules schema', () => {
    expect(rules.environment).toBe('compose');
  });

  it('points at the stand-in where ers-bridge reaches it: its service name, https, port 9000, trusting the trial CA', () => {
    const standIn = services['apim-standin'].command as string[];
    const origin = flag(standIn, '--public-url')!;
    expect(new URL(origin).hostname).toBe('apim-standin');
    expect(Object.keys(services)).toContain(new URL(origin).hostname);
    expect(new URL(origin).port).toBe(flag(standIn, '--port'));
    expect(new URL(rules.apim.baseUrl).origin).toBe(origin);
    expect(rules.apim.baseUrl.startsWith('https://')).toBe(true);
    expect(rules.apim.tokenUrl).toBe(`${origin}/oauth2/token`);
    expect(rules.apim.ca).toBe('env:APIM_STANDIN_CA');
    expect(rules.apim.production).toBe(false);
  });

  it('keeps sessions on Redis, encrypted with SESSION_KEY_1', () => {
    expect(rules.sessions.store).toBe('redis');
    expect(rules.sessions.redis?.url).toBe(services['ers-bridge'].environment.ERS_BRIDGE_SESSION_STORE);
    expect(rules.sessions.encryption).toEqual({ current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } });
  });

  it("has rules/local.yaml's application-restricted ASIDs, and no user-restricted one (the trial runs no CIS2)", () => {
    const local = parseRules(readFileSync(new URL('../rules/local.yaml', DEPLOY), 'utf8'), 'rules/local.yaml');
    const applicationRestricted = Object.entries(local.asids).filter(
      ([, a]) => a.accessMode === 'application-restricted',
    );
    expect(rules.asids).toEqual(Object.fromEntries(applicationRestricted));
    expect(Object.values(rules.asids).filter((a) => a.accessMode === 'user-restricted')).toEqual([]);
    expect(rules.cis2).toBeUndefined();
  });

  it('the schema refuses http://apim-standin:9000 (why the stand-in is on TLS)', () => {
    const byName = RULES_TEXT.replaceAll('https://apim-standin:9000', 'http://apim-standin:9000');
    expect(byName).not.toBe(RULES_TEXT);
    expect(() => parseRules(byName, 'by-name.yaml')).toThrow(RulesError);
    expect(() => parseRules(byName, 'by-name.yaml')).toThrow(/plain http:\/\/ is allowed only for 127\.0\.0\.1/);
  });
});

describe('deploy/docker-compose.sentinel.yml (the trial on Redis Sentinel)', () => {
  const SENTINEL_TEXT = readFileSync(new URL('docker-compose.sentinel.yml', DEPLOY), 'utf8');
  const override = (parse(SENTINEL_TEXT, { merge: true }) as { services: Record<string, any> }).services;
  const SENTINEL_RULES_TEXT = readFileSync(new URL('compose-rules-sentinel.yaml', DEPLOY), 'utf8');
  const rules = parseRules(SENTINEL_RULES_TEXT, 'deploy/compose-rules-sentinel.yaml');
  const plain = parseRules(RULES_TEXT, 'deploy/compose-rules.yaml');
  const sentinels = ['sentinel-1', 'sentinel-2', 'sentinel-3'];
  /** The sentinel configuration each sentinel writes at start (the heredoc in its command). */
  const sentinelConf = (name: string) => {
    const script = (override[name].command as string[]).at(-1)!;
    return /<<'CONF'\n([\s\S]*?)\nCONF\n/.exec(script)![1]!.split('\n');
  };

  it('adds a replica of redis and three sentinels, and nothing else; ers-bridge serves the Sentinel rules', () => {
    expect(Object.keys(override).sort()).toEqual(['ers-bridge', 'redis', 'redis-replica', ...sentinels]);
    const replica = override['redis-replica'].command as string[];
    expect(flag(replica, '--replicaof')).toBe('redis');
    expect(replica[replica.indexOf('--replicaof') + 2]).toBe('6379');
    expect(flag(replica, '--save')).toBe('');
    // Both nodes announce their service names, which the sentinels hand to ers-bridge.
    expect(flag(replica, '--replica-announce-ip')).toBe('redis-replica');
    expect(flag(override['redis'].command, '--replica-announce-ip')).toBe('redis');
    expect(override['ers-bridge'].command).toEqual([
      'serve',
      '--rules',
      '/app/deploy/compose-rules-sentinel.yaml',
      '--host',
      '0.0.0.0',
    ]);
    expect(override['ers-bridge'].volumes).toEqual([
      './compose-rules-sentinel.yaml:/app/deploy/compose-rules-sentinel.yaml:ro',
    ]);
    for (const name of ['redis-replica', ...sentinels]) expect(override[name].ports, name).toBeUndefined();
  });

  it('the sentinels monitor the primary by the master name the rules give, with a quorum of a majority', () => {
    for (const name of sentinels) {
      const conf = sentinelConf(name);
      expect(conf).toContain('port 26379');
      expect(conf).toContain('sentinel resolve-hostnames yes');
      expect(conf).toContain('sentinel announce-hostnames yes');
      const monitor = conf.find((l) => l.startsWith('sentinel monitor '))!.split(' ');
      expect(monitor.slice(2)).toEqual([rules.sessions.redis!.sentinel!.masterName, 'redis', '6379', '2']);
      expect(Number(monitor[5])).toBeGreaterThan(sentinels.length / 2);
      expect(override[name].depends_on).toEqual({
        redis: { condition: 'service_healthy' },
        'redis-replica': { condition: 'service_healthy' },
      });
    }
    expect(rules.sessions.redis!.sentinel!.sentinels).toEqual(sentinels.map((s) => `${s}:26379`));
    expect(rules.sessions.redis!.url).toBeUndefined();
    // ers-bridge waits for every sentinel, and the plain trial's store URL is blanked so the rules decide.
    expect(override['ers-bridge'].depends_on).toEqual(
      Object.fromEntries(sentinels.map((s) => [s, { condition: 'service_healthy' }])),
    );
    expect(override['ers-bridge'].environment).toEqual({ ERS_BRIDGE_SESSION_STORE: '' });
  });

  it("the Sentinel rules are the plain trial's but for the sessions store (the two files cannot drift apart)", () => {
    const { sessions: s1, description: d1, ...rest1 } = rules as unknown as Record<string, any>;
    const { sessions: s2, description: d2, ...rest2 } = plain as unknown as Record<string, any>;
    expect(rest1).toEqual(rest2);
    expect({ ...s1, redis: { ...s1.redis, sentinel: undefined } }).toEqual({
      ...s2,
      redis: { ...s2.redis, url: undefined },
    });
    expect(d1).not.toBe(d2);
  });
});

describe('emulate-apim --host 0.0.0.0 --public-url (a stand-in reachable from other containers)', () => {
  // The stand-in must know the URL clients use: its token URL is the `aud` of every client assertion.
  it('accepts a client assertion addressed to the token URL a client on the network uses', async () => {
    const apiKey = 'compose-demo-api-key';
    const { key, standInApp } = await newApimApp({ apiKey, kid: 'demo-1' });
    const standIn = await buildApimStandIn({
      host: '0.0.0.0',
      port: 9000,
      publicUrl: 'http://apim-standin:9000',
      apps: [standInApp],
    });
    try {
      const tokenUrl = 'http://apim-standin:9000/oauth2/token';
      const res = await standIn.app.inject({
        method: 'POST',
        url: '/oauth2/token',
        headers: { host: 'apim-standin:9000', 'content-type': 'application/x-www-form-urlencoded' },
        payload: tokenForm(clientAssertion({ apiKey, tokenUrl, key })),
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(standIn.baseUrl).toBe('http://apim-standin:9000/referrals/FHIR');
    } finally {
      await standIn.close();
    }
  });

  it('bound to every interface without a public URL, it calls itself by the loopback address, never 0.0.0.0', async () => {
    const standIn = await buildApimStandIn({ host: '0.0.0.0', port: 0, apps: [] });
    try {
      expect(standIn.tokenUrl).not.toContain('0.0.0.0');
      expect(standIn.tokenUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth2\/token$/);
    } finally {
      await standIn.close();
    }
  });
});
