/**
 * The Kubernetes manifests (deploy/k8s: a kustomize base and one overlay per environment). Neither kubectl nor
 * kustomize is needed: every YAML file is parsed here, and each overlay is rendered by a small emulation of the
 * kustomize features the kustomizations use (an unsupported field fails the test instead of being ignored). The
 * rendered objects are then checked as a cluster would receive them: hardening, probes, mounts, selectors, scaling,
 * network policy, rules that pass the rules schema, and secrets that are only ever placeholders.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseRules } from '../../src/rules/load.js';
import type { Rules } from '../../src/rules/schema.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'deploy/k8s');
const BASE = join(K8S, 'base');
const ENVS = ['int', 'dep', 'prod'] as const;
const overlayDir = (env: string) => join(K8S, 'overlays', env);
const rel = (p: string) => relative(ROOT, p);

/** Pod labels every selector must match. */
const APP = { 'app.kubernetes.io/name': 'ers-bridge' };
const RULES_MOUNT = '/etc/ers-bridge';
const KEYS_MOUNT = '/run/secrets';

type Obj = Record<string, any>;

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return yamlFilesUnder(p);
      return /\.ya?ml$/.test(e.name) ? [p] : [];
    })
    .sort();
}

/** Every document of a YAML file; a syntax error fails with the file named. */
function loadDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
  if (!Array.isArray(docs)) throw new Error(`${rel(file)}: not a YAML stream`);
  return docs.map((d, i) => {
    if (d.errors.length > 0) throw new Error(`${rel(file)} (document ${i + 1}): ${d.errors[0]!.message}`);
    return d.toJS() as Obj;
  });
}

const ALL_FILES = yamlFilesUnder(K8S);
/** Parsed lazily, so that a broken file fails the tests that read it, each naming the file. */
const PARSED = new Map<string, Obj[]>();
function docsOf(file: string): Obj[] {
  if (!PARSED.has(file)) PARSED.set(file, loadDocs(file));
  return PARSED.get(file)!;
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal kustomize: exactly the features the kustomizations here use.
// ---------------------------------------------------------------------------------------------------------------

const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'labels',
  'images',
  'replicas',
  'configMapGenerator',
  'patches',
]);
const CLUSTER_SCOPED = new Set(['Namespace']);

function kustomizationOf(dir: string): Obj {
  const docs = docsOf(join(dir, 'kustomization.yaml'));
  expect(docs, `${rel(dir)}/kustomization.yaml: one document`).toHaveLength(1);
  return docs[0]!;
}

function matches(labels: Obj | undefined, selector: Obj | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false; // an empty selector selects everything: never wanted here
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** JSON Pointer (RFC 6901) operations add / replace / remove, as kustomize's JSON 6902 patches. */
function applyJson6902(target: Obj, ops: Obj[], where: string): void {
  for (const op of ops) {
    const parts = String(op['path'])
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = parts.pop()!;
    let node: any = target;
    for (const p of parts) {
      node = Array.isArray(node) ? node[Number(p)] : node?.[p];
      if (node === undefined) throw new Error(`${where}: ${op['path']}: no such path`);
    }
    if (op['op'] === 'replace') {
      if (!(last in node)) throw new Error(`${where}: replace ${op['path']}: no such field`);
      node[last] = op['value'];
    } else if (op['op'] === 'add') {
      if (Array.isArray(node)) node.splice(last === '-' ? node.length : Number(last), 0, op['value']);
      else node[last] = op['value'];
    } else if (op['op'] === 'remove') {
      if (Array.isArray(node)) node.splice(Number(last), 1);
      else delete node[last];
    } else {
      throw new Error(`${where}: patch op ${op['op']} is not emulated`);
    }
  }
}

function imageName(image: string): { name: string; tag?: string; digest?: string } {
  const [withTag, digest] = image.split('@') as [string, string | undefined];
  const slash = withTag.lastIndexOf('/');
  const colon = withTag.lastIndexOf(':');
  const name = colon > slash ? withTag.slice(0, colon) : withTag;
  const tag = colon > slash ? withTag.slice(colon + 1) : undefined;
  return { name, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

function podSpecs(objs: Obj[]): Obj[] {
  return objs.filter((o) => o['kind'] === 'Deployment').map((o) => o['spec']['template']['spec']);
}

/** Renders a kustomization directory: its resources (files or other kustomizations), then its transformations. */
function build(dir: string): Obj[] {
  const k = kustomizationOf(dir);
  const where = `${rel(dir)}/kustomization.yaml`;
  for (const field of Object.keys(k)) {
    expect(KUSTOMIZATION_FIELDS.has(field), `${where}: field ${field} is not emulated by this test`).toBe(true);
  }
  expect(k['apiVersion']).toBe('kustomize.config.k8s.io/v1beta1');
  expect(k['kind']).toBe('Kustomization');

  const objs: Obj[] = [];
  for (const r of (k['resources'] ?? []) as string[]) {
    const p = resolve(dir, r);
    const more = statSync(p).isDirectory() ? build(p) : structuredClone(docsOf(p));
    objs.push(...more);
  }

  for (const gen of (k['configMapGenerator'] ?? []) as Obj[]) {
    const data: Record<string, string> = {};
    for (const f of gen['files'] as string[]) {
      const [key, file] = f.includes('=') ? (f.split('=', 2) as [string, string]) : [basename(f), f];
      data[key] = readFileSync(resolve(dir, file), 'utf8');
    }
    const existing = objs.find((o) => o['kind'] === 'ConfigMap' && o['metadata']['name'] === gen['name']);
    if (gen['behavior'] === 'replace') {
      if (!existing) throw new Error(`${where}: configMapGenerator ${gen['name']}: nothing to replace`);
      existing['data'] = data;
    } else {
      if (existing) throw new Error(`${where}: configMapGenerator ${gen['name']}: already exists`);
      objs.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen['name'] }, data });
    }
  }

  for (const patch of (k['patches'] ?? []) as Obj[]) {
    const target = patch['target'] as Obj;
    const hits = objs.filter(
      (o) => o['kind'] === target['kind'] && (!target['name'] || o['metadata']['name'] === target['name']),
    );
    expect(hits.length, `${where}: patch target ${JSON.stringify(target)}`).toBe(1);
    const ops = parse(String(patch['patch'])) as Obj[];
    expect(Array.isArray(ops), `${where}: only inline JSON 6902 patches are emulated`).toBe(true);
    applyJson6902(hits[0]!, ops, where);
  }

  for (const r of (k['replicas'] ?? []) as Obj[]) {
    const d = objs.find((o) => o['kind'] === 'Deployment' && o['metadata']['name'] === r['name']);
    if (!d) throw new Error(`${where}: replicas for unknown Deployment ${r['name']}`);
    d['spec']['replicas'] = r['count'];
  }

  for (const img of (k['images'] ?? []) as Obj[]) {
    let used = false;
    for (const spec of podSpecs(objs)) {
      for (const c of [...(spec['containers'] ?? []), ...(spec['initContainers'] ?? [])]) {
        const cur = imageName(c['image']);
        if (cur.name !== img['name']) continue;
        used = true;
        const name = img['newName'] ?? cur.name;
        c['image'] = img['digest'] ? `${name}@${img['digest']}` : `${name}:${img['newTag'] ?? cur.tag ?? 'latest'}`;
      }
    }
    expect(used, `${where}: images entry ${img['name']} matches no container`).toBe(true);
  }

  for (const l of (k['labels'] ?? []) as Obj[]) {
    expect(l['includeSelectors'] ?? false, `${where}: label transformer on selectors is not emulated`).toBe(false);
    for (const o of objs) {
      o['metadata']['labels'] = { ...o['metadata']['labels'], ...l['pairs'] };
      if (l['includeTemplates'] && o['spec']?.['template']?.['metadata']) {
        o['spec']['template']['metadata']['labels'] = { ...o['spec']['template']['metadata']['labels'], ...l['pairs'] };
      }
    }
  }

  if (k['namespace']) {
    for (const o of objs) if (!CLUSTER_SCOPED.has(o['kind'])) o['metadata']['namespace'] = k['namespace'];
  }
  return objs;
}

function one(objs: Obj[], kind: string): Obj {
  const found = objs.filter((o) => o['kind'] === kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0]!;
}

/** Kubernetes memory quantities → bytes (the suffixes used in manifests). */
function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(String(q));
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

function envRefs(rules: Rules): string[] {
  return [...JSON.stringify(rules).matchAll(/"env:([A-Za-z_][A-Za-z0-9_]*)"/g)].map((m) => m[1]!);
}

function fileRefs(rules: Rules): string[] {
  return [...JSON.stringify(rules).matchAll(/"file:([^"]+)"/g)].map((m) => m[1]!);
}

// ---------------------------------------------------------------------------------------------------------------

const TARGETS: Array<{ name: string; dir: string }> = [
  { name: 'base', dir: BASE },
  ...ENVS.map((env) => ({ name: `overlays/${env}`, dir: overlayDir(env) })),
];
const RENDERED = new Map<string, Obj[]>();
/** The rendered objects of a target, built on first use (inside a test or hook, so a failure is reported there). */
function rendered(name: string): Obj[] {
  if (!RENDERED.has(name)) RENDERED.set(name, build(TARGETS.find((t) => t.name === name)!.dir));
  return RENDERED.get(name)!;
}

describe('deploy/k8s: files', () => {
  it('has the base, its resources and an overlay per environment', () => {
    for (const f of [
      'kustomization.yaml',
      'deployment.yaml',
      'service.yaml',
      'configmap.yaml',
      'secret.example.yaml',
      'hpa.yaml',
      'pdb.yaml',
      'networkpolicy.yaml',
    ]) {
      expect(existsSync(join(BASE, f)), `base/${f}`).toBe(true);
    }
    for (const env of ENVS) {
      for (const f of ['kustomization.yaml', 'rules.yaml']) {
        expect(existsSync(join(overlayDir(env), f)), `overlays/${env}/${f}`).toBe(true);
      }
    }
  });

  it('every YAML file parses (multi-document aware); every Kubernetes object has apiVersion, kind and a name', () => {
    expect(ALL_FILES.length).toBeGreaterThan(10);
    for (const file of ALL_FILES) {
      const docs = docsOf(file);
      expect(docs.length, rel(file)).toBeGreaterThan(0);
      if (basename(file) === 'rules.yaml') continue; // a rules file, not a Kubernetes object
      for (const d of docs) {
        expect(d['apiVersion'], rel(file)).toEqual(expect.any(String));
        expect(d['kind'], rel(file)).toEqual(expect.any(String));
        if (d['kind'] !== 'Kustomization') expect(d['metadata']?.['name'], rel(file)).toMatch(/^[a-z0-9][a-z0-9.-]*$/);
      }
    }
  });

  it('no number with a leading zero (YAML 1.1, which Kubernetes reads, takes it as octal; YAML 1.2 does not)', () => {
    for (const f of ALL_FILES) {
      const lines = readFileSync(f, 'utf8').split('\n');
      lines.forEach((l, i) => {
        expect(l, `${rel(f)}:${i + 1}`).not.toMatch(/^[^#]*:\s+0\d+\s*(#.*)?$/);
      });
    }
  });

  it('every kustomization.yaml lists only files that exist', () => {
    const kustomizations = ALL_FILES.filter((f) => basename(f) === 'kustomization.yaml');
    expect(kustomizations.map(rel).sort()).toEqual(
      ['base', ...ENVS.map((e) => `overlays/${e}`)].map((d) => `deploy/k8s/${d}/kustomization.yaml`).sort(),
    );
    for (const file of kustomizations) {
      const dir = dirname(file);
      const k = docsOf(file)[0]!;
      for (const r of (k['resources'] ?? []) as string[]) {
        const p = resolve(dir, r);
        expect(existsSync(p), `${rel(file)}: resource ${r}`).toBe(true);
        if (statSync(p).isDirectory())
          expect(existsSync(join(p, 'kustomization.yaml')), `${rel(file)}: ${r}`).toBe(true);
      }
      for (const g of (k['configMapGenerator'] ?? []) as Obj[]) {
        for (const f of (g['files'] ?? []) as string[]) {
          const path = f.includes('=') ? f.split('=', 2)[1]! : f;
          expect(existsSync(resolve(dir, path)), `${rel(file)}: configMapGenerator file ${f}`).toBe(true);
        }
      }
      for (const p of (k['patches'] ?? []) as Obj[]) {
        if (p['path']) expect(existsSync(resolve(dir, p['path'])), `${rel(file)}: patch ${p['path']}`).toBe(true);
      }
    }
  });

  it('the base lists every manifest but the example Secret, which no kustomization uses', () => {
    const base = kustomizationOf(BASE);
    expect([...base['resources']].sort()).toEqual(
      [
        'configmap.yaml',
        'deployment.yaml',
        'hpa.yaml',
        'ingress.yaml',
        'networkpolicy.yaml',
        'pdb.yaml',
        'service.yaml',
      ].sort(),
    );
    for (const file of ALL_FILES.filter((f) => basename(f) === 'kustomization.yaml')) {
      expect(
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => !l.trim().startsWith('#'))
          .join('\n'),
      ).not.toMatch(/secret\.example/);
    }
    for (const t of TARGETS)
      expect(
        rendered(t.name).some((o) => o['kind'] === 'Secret'),
        t.name,
      ).toBe(false);
  });
});

describe.each(TARGETS.map((t) => t.name))('deploy/k8s %s: the Deployment', (target) => {
  let objs: Obj[];
  let deployment: Obj;
  let pod: Obj;
  let spec: Obj;
  let containers: Obj[];
  let c: Obj;
  beforeAll(() => {
    objs = rendered(target);
    deployment = one(objs, 'Deployment');
    pod = deployment['spec']['template'];
    spec = pod['spec'];
    containers = spec['containers'];
    c = containers[0]!;
  });

  it('is ers-bridge, one container, selector matching its pods', () => {
    expect(deployment['apiVersion']).toBe('apps/v1');
    expect(deployment['metadata']['name']).toBe('ers-bridge');
    expect(containers).toHaveLength(1);
    expect(deployment['spec']['selector']['matchLabels']).toEqual(APP);
    expect(matches(pod['metadata']['labels'], deployment['spec']['selector']['matchLabels'])).toBe(true);
  });

  it('serves the mounted rules on 0.0.0.0: the legacy API on 8080 (http), the ops surface on 8081 (ops)', () => {
    expect(c['command']).toBeUndefined(); // the image's ENTRYPOINT (node --max-semi-space-size=8 --no-allocation-site-pretenuring bin/ers-bridge.js) stays
    expect(c['args']).toEqual(['serve', '--rules', `${RULES_MOUNT}/rules.yaml`, '--host', '0.0.0.0']);
    expect(c['ports']).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'ops', containerPort: 8081, protocol: 'TCP' },
    ]);
  });

  it('has startup, liveness (/healthz) and readiness (/readyz) probes on the ops port, none on the legacy port', () => {
    const probe = (name: string) => c[name]?.['httpGet'] as Obj | undefined;
    expect(probe('livenessProbe')).toMatchObject({ path: '/healthz' });
    expect(probe('readinessProbe')).toMatchObject({ path: '/readyz' });
    expect(probe('startupProbe')?.['path']).toMatch(/^\/(healthz|readyz)$/);
    for (const name of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      expect(['ops', 8081], name).toContain(probe(name)!['port']);
      expect(c[name]['timeoutSeconds'], name).toBeGreaterThanOrEqual(1);
    }
    // The startup probe gives the process time to load rules and resolve secrets before liveness applies.
    const s = c['startupProbe'];
    expect(s['periodSeconds'] * s['failureThreshold']).toBeGreaterThanOrEqual(30);
  });

  it('requests CPU and memory, limits memory (at least the request)', () => {
    const r = c['resources'];
    expect(r['requests']).toEqual({ cpu: '250m', memory: '256Mi' });
    expect(r['limits']['memory']).toBe('512Mi');
    expect(bytes(r['limits']['memory'])).toBeGreaterThanOrEqual(bytes(r['requests']['memory']));
  });

  it('pod securityContext: non-root uid/gid 1000, fsGroup 1000, seccomp RuntimeDefault', () => {
    expect(spec['securityContext']).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('container securityContext: no privilege escalation, read-only root filesystem, all capabilities dropped', () => {
    const sc = c['securityContext'];
    expect(sc['allowPrivilegeEscalation']).toBe(false);
    expect(sc['readOnlyRootFilesystem']).toBe(true);
    expect(sc['capabilities']['drop']).toEqual(['ALL']);
    expect(sc['capabilities']['add']).toBeUndefined();
    expect(sc['privileged'] ?? false).toBe(false);
    expect(sc['runAsUser'] ?? 1000).not.toBe(0);
    expect(sc['seccompProfile']?.['type'] ?? 'RuntimeDefault').toBe('RuntimeDefault');
  });

  it('mounts the rules ConfigMap read-only at /etc/ers-bridge (whole directory, so updates reach the pod)', () => {
    const mount = (c['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === RULES_MOUNT)!;
    expect(mount).toBeDefined();
    expect(mount['readOnly']).toBe(true);
    expect(mount['subPath']).toBeUndefined();
    const volume = (spec['volumes'] as Obj[]).find((v) => v['name'] === mount['name'])!;
    expect(volume['configMap']['name']).toBe('ers-bridge-rules');
    const cm = objs.find((o) => o['kind'] === 'ConfigMap' && o['metadata']['name'] === 'ers-bridge-rules')!;
    expect(Object.keys(cm['data'])).toEqual(['rules.yaml']);
  });

  it('mounts the key Secret read-only at /run/secrets; takes env: references and the Redis URL from a Secret', () => {
    const mount = (c['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === KEYS_MOUNT)!;
    expect(mount['readOnly']).toBe(true);
    const volume = (spec['volumes'] as Obj[]).find((v) => v['name'] === mount['name'])!;
    expect(volume['secret']['secretName']).toBe('ers-bridge-keys');
    expect(volume['secret']['defaultMode']).toBe(0o440); // not group- or world-writable, not world-readable
    expect(c['envFrom']).toEqual([{ secretRef: { name: 'ers-bridge-env' } }]);
    const env = Object.fromEntries((c['env'] as Obj[]).map((e) => [e['name'], e]));
    expect(env['ERS_BRIDGE_SESSION_STORE']['valueFrom']['secretKeyRef']).toEqual({
      name: 'ers-bridge-env',
      key: 'ERS_BRIDGE_SESSION_STORE',
    });
    expect(env['LOG_LEVEL']['value']).toBe('info');
    // Nothing secret written into the manifest itself.
    for (const e of c['env'] as Obj[]) if (e['value'] !== undefined) expect(e['name']).toBe('LOG_LEVEL');
  });

  it('only the mounts above; no writable volume (ers-bridge writes nothing)', () => {
    expect((c['volumeMounts'] as Obj[]).map((m) => m['mountPath']).sort()).toEqual([RULES_MOUNT, KEYS_MOUNT].sort());
    for (const v of spec['volumes'] as Obj[]) expect(v['configMap'] ?? v['secret'], v['name']).toBeDefined();
  });

  it('shuts down gracefully: preStop pause shorter than the 30 s grace period', () => {
    expect(spec['terminationGracePeriodSeconds']).toBe(30);
    const preStop = c['lifecycle']['preStop'];
    const seconds = preStop['sleep']?.['seconds'] ?? Number((preStop['exec']['command'] as string[]).at(-1));
    expect(preStop['sleep'] ?? preStop['exec']['command'][0]).toBeTruthy();
    expect(seconds).toBeGreaterThanOrEqual(2);
    expect(seconds).toBeLessThanOrEqual(10);
    expect(spec['terminationGracePeriodSeconds'] - seconds).toBeGreaterThanOrEqual(20);
  });

  it('no service account token, no service links', () => {
    expect(spec['automountServiceAccountToken']).toBe(false);
    expect(spec['enableServiceLinks']).toBe(false);
  });

  it('spreads its replicas across nodes', () => {
    const byNode = (spec['topologySpreadConstraints'] as Obj[]).find(
      (t) => t['topologyKey'] === 'kubernetes.io/hostname',
    )!;
    expect(byNode['maxSkew']).toBe(1);
    expect(byNode['whenUnsatisfiable']).toBe('DoNotSchedule');
    expect(matches(pod['metadata']['labels'], byNode['labelSelector']['matchLabels'])).toBe(true);
  });

  it('is scraped by Prometheus on /metrics at the ops port, never the legacy port', () => {
    const a = pod['metadata']['annotations'];
    const port = (name: string) => (c['ports'] as Obj[]).find((p) => p['name'] === name)!['containerPort'];
    expect(a['prometheus.io/scrape']).toBe('true');
    expect(a['prometheus.io/path']).toBe('/metrics');
    expect(a['prometheus.io/port']).toBe('8081');
    expect(a['prometheus.io/port']).toBe(String(port('ops')));
    expect(a['prometheus.io/port']).not.toBe(String(port('http')));
  });
});

describe.each(TARGETS.map((t) => t.name))('deploy/k8s %s: Service, HPA, PDB, NetworkPolicy', (target) => {
  let objs: Obj[];
  let deployment: Obj;
  let podLabels: Obj;
  beforeAll(() => {
    objs = rendered(target);
    deployment = one(objs, 'Deployment');
    podLabels = deployment['spec']['template']['metadata']['labels'];
  });

  it('the Service is a ClusterIP on 8080 targeting the named port http (the ops port is not in it)', () => {
    const svc = one(objs, 'Service');
    expect(svc['spec']['type'] ?? 'ClusterIP').toBe('ClusterIP');
    expect(matches(podLabels, svc['spec']['selector'])).toBe(true);
    expect(svc['spec']['ports']).toHaveLength(1);
    const port = svc['spec']['ports'][0];
    expect(port).toMatchObject({ port: 8080, targetPort: 'http', protocol: 'TCP' });
    const names = deployment['spec']['template']['spec']['containers'][0]['ports'].map((p: Obj) => p['name']);
    expect(names).toContain(port['targetPort']);
    expect(svc['spec']['ports'].map((p: Obj) => p['targetPort'])).not.toContain('ops');
  });

  it('the HPA (autoscaling/v2) scales the Deployment on CPU 70%, at least 2 replicas', () => {
    const hpa = one(objs, 'HorizontalPodAutoscaler');
    expect(hpa['apiVersion']).toBe('autoscaling/v2');
    expect(hpa['spec']['scaleTargetRef']).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'ers-bridge' });
    expect(hpa['spec']['minReplicas']).toBeGreaterThanOrEqual(2);
    expect(hpa['spec']['maxReplicas']).toBeGreaterThanOrEqual(hpa['spec']['minReplicas']);
    expect(hpa['spec']['metrics']).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
    ]);
    // Re-applying the manifests must not scale below the HPA's floor.
    expect(deployment['spec']['replicas']).toBe(hpa['spec']['minReplicas']);
  });

  it('the PDB selects the Deployment pods and still lets a drain evict one', () => {
    const pdb = one(objs, 'PodDisruptionBudget');
    expect(pdb['apiVersion']).toBe('policy/v1');
    expect(pdb['spec']['selector']['matchLabels']).toEqual(deployment['spec']['selector']['matchLabels']);
    expect(matches(podLabels, pdb['spec']['selector']['matchLabels'])).toBe(true);
    expect(pdb['spec']['minAvailable']).toBeGreaterThanOrEqual(1);
    expect(pdb['spec']['minAvailable']).toBeLessThan(one(objs, 'HorizontalPodAutoscaler')['spec']['minReplicas']);
  });

  it('the NetworkPolicy restricts ingress (8080 from legacy clients, 8081 from monitoring) and egress (53, 6379, 443)', () => {
    const np = one(objs, 'NetworkPolicy');
    expect(matches(podLabels, np['spec']['podSelector']['matchLabels'])).toBe(true);
    expect([...np['spec']['policyTypes']].sort()).toEqual(['Egress', 'Ingress']);

    const ingress = np['spec']['ingress'] as Obj[];
    expect(ingress.length).toBeGreaterThan(0);
    for (const rule of ingress) {
      // No rule open to every source, none to another port.
      expect(rule['from']?.length, 'ingress rule without from').toBeGreaterThan(0);
      for (const peer of rule['from'] as Obj[]) {
        expect(peer['ipBlock'], 'no ipBlock sources').toBeUndefined();
        const selectors = [peer['namespaceSelector'], peer['podSelector']].filter(Boolean) as Obj[];
        expect(selectors.length).toBeGreaterThan(0);
        for (const s of selectors)
          expect(Object.keys(s['matchLabels'] ?? {}).length, 'empty selector').toBeGreaterThan(0);
      }
      // One port per rule: the legacy API (8080) or the ops surface (8081), never both, nothing else.
      expect([[{ port: 8080, protocol: 'TCP' }], [{ port: 8081, protocol: 'TCP' }]]).toContainEqual(rule['ports']);
    }
    const isLegacyClient = (p: Obj) => p['namespaceSelector']?.['matchLabels']?.['ers-bridge/legacy-client'] === 'true';
    const isMonitoring = (p: Obj) =>
      p['namespaceSelector']?.['matchLabels']?.['kubernetes.io/metadata.name'] === 'monitoring';
    const portsOf = (peer: (p: Obj) => boolean) =>
      ingress
        .filter((r) => (r['from'] as Obj[]).some(peer))
        .flatMap((r) => (r['ports'] as Obj[]).map((p) => p['port']));
    // Legacy clients reach only the legacy API; Prometheus only the ops surface (/metrics).
    expect(portsOf(isLegacyClient)).toEqual([8080]);
    expect(portsOf(isMonitoring)).toEqual([8081]);
    // The 8080 rule admits no monitoring peer, the 8081 rule no legacy client.
    for (const rule of ingress) {
      const port = rule['ports'][0]['port'];
      if (port === 8080) expect((rule['from'] as Obj[]).some(isMonitoring)).toBe(false);
      if (port === 8081) expect((rule['from'] as Obj[]).some((p) => !isMonitoring(p))).toBe(false);
    }

    const egress = np['spec']['egress'] as Obj[];
    const allowed = new Set<string>();
    for (const rule of egress) {
      expect(rule['ports']?.length, 'egress rule without ports (would allow every port)').toBeGreaterThan(0);
      for (const p of rule['ports'] as Obj[]) {
        expect(p['endPort']).toBeUndefined();
        allowed.add(`${p['port']}/${p['protocol'] ?? 'TCP'}`);
      }
    }
    expect([...allowed].sort()).toEqual(['443/TCP', '53/TCP', '53/UDP', '6379/TCP']);
  });
});

describe('deploy/k8s overlays', () => {
  it.each(ENVS)('%s: namespace ers-bridge-<env> (restricted Pod Security) on every object', (env) => {
    const k = kustomizationOf(overlayDir(env));
    expect(k['namespace']).toBe(`ers-bridge-${env}`);
    expect(k['resources']).toContain('../../base');
    const objs = rendered(`overlays/${env}`);
    const ns = one(objs, 'Namespace');
    expect(ns['metadata']['name']).toBe(k['namespace']);
    expect(ns['metadata']['labels']['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const o of objs.filter((o) => o['kind'] !== 'Namespace')) {
      expect(o['metadata']['namespace'], `${o['kind']}`).toBe(k['namespace']);
      expect(o['metadata']['labels']['ers-bridge/environment'], `${o['kind']}`).toBe(env);
    }
    const pod = one(objs, 'Deployment')['spec']['template']['metadata']['labels'];
    expect(pod['ers-bridge/environment']).toBe(env);
  });

  it.each(ENVS)('%s: pins an image tag (never latest)', (env) => {
    const k = kustomizationOf(overlayDir(env));
    const entry = (k['images'] as Obj[]).find((i) => i['name'] === 'ers-bridge')!;
    expect(entry['newTag'] ?? entry['digest']).toBeTruthy();
    expect(String(entry['newTag'] ?? '')).not.toBe('latest');
    for (const spec of podSpecs(rendered(`overlays/${env}`))) {
      for (const c of spec['containers'] as Obj[]) {
        const image = imageName(c['image']);
        expect(image.tag ?? image.digest, c['image']).toBeTruthy();
        expect(image.tag, c['image']).not.toBe('latest');
        expect(c['imagePullPolicy']).toBe('IfNotPresent');
      }
    }
    // Not hidden anywhere else in the overlay either.
    expect(readFileSync(join(overlayDir(env), 'kustomization.yaml'), 'utf8')).not.toMatch(
      /:latest\b|newTag:\s*"?latest/,
    );
  });

  it('replica bounds per environment: at least 2 everywhere, at least 3 in prod', () => {
    for (const env of ENVS) {
      const hpa = one(rendered(`overlays/${env}`), 'HorizontalPodAutoscaler');
      expect(hpa['spec']['minReplicas'], env).toBeGreaterThanOrEqual(env === 'prod' ? 3 : 2);
    }
    expect(one(rendered('overlays/prod'), 'HorizontalPodAutoscaler')['spec']['maxReplicas']).toBe(10);
  });

  it.each(ENVS)('%s: generates the ConfigMap ers-bridge-rules from the overlay rules.yaml', (env) => {
    const k = kustomizationOf(overlayDir(env));
    expect(k['configMapGenerator']).toEqual([{ name: 'ers-bridge-rules', behavior: 'replace', files: ['rules.yaml'] }]);
    const cm = one(rendered(`overlays/${env}`), 'ConfigMap');
    expect(cm['data']['rules.yaml']).toBe(readFileSync(join(overlayDir(env), 'rules.yaml'), 'utf8'));
  });

  it('the base ConfigMap is hashed by kustomize, so a replaced rules file gets a new name and rolls the pods', () => {
    // A ConfigMap loaded from a file keeps its name even when a generator replaces it; this annotation makes
    // kustomize add the content hash (kubernetes-sigs/kustomize#4833).
    const cm = one(docsOf(join(BASE, 'configmap.yaml')), 'ConfigMap');
    expect(cm['metadata']['annotations']['internal.config.kubernetes.io/needsHashSuffix']).toBe('enabled');
  });
});

describe('deploy/k8s rules', () => {
  const repoRules = (env: string) =>
    parseRules(readFileSync(join(ROOT, 'rules', `${env}.yaml`), 'utf8'), `${env}.yaml`);
  const overlayRules = (env: string) => {
    const file = join(overlayDir(env), 'rules.yaml');
    return parseRules(readFileSync(file, 'utf8'), rel(file));
  };
  const secrets = () => docsOf(join(BASE, 'secret.example.yaml'));
  const secretKeys = (name: string) =>
    Object.keys(secrets().find((s) => s['metadata']['name'] === name)!['stringData']);

  it.each(ENVS)('overlays/%s/rules.yaml passes parseRules', (env) => {
    expect(() => overlayRules(env)).not.toThrow();
    expect(overlayRules(env).environment).toBe(env);
  });

  it('the base ConfigMap holds the INT rules (the same as overlays/int/rules.yaml), and they pass parseRules', () => {
    const cm = one(docsOf(join(BASE, 'configmap.yaml')), 'ConfigMap');
    expect(cm['metadata']['name']).toBe('ers-bridge-rules');
    expect(parseRules(cm['data']['rules.yaml'], 'base/configmap.yaml')).toEqual(overlayRules('int'));
  });

  it.each(ENVS)('%s: mirrors rules/<env>.yaml (hosts, APIM, ASIDs, CIS2 but its redirect URI)', (env) => {
    const mine = overlayRules(env);
    const repo = repoRules(env);
    expect(mine.environment).toBe(repo.environment);
    expect(mine.legacy.host).toBe(repo.legacy.host);
    expect(mine.apim).toEqual(repo.apim);
    expect(mine.asids).toEqual(repo.asids);
    const { redirectUri: _mine, ...cis2 } = mine.cis2 ?? ({} as any);
    const { redirectUri: _repo, ...repoCis2 } = repo.cis2 ?? ({} as any);
    expect(cis2).toEqual(repoCis2);
    expect(mine.sessions.idleTimeoutSeconds).toBe(repo.sessions.idleTimeoutSeconds);
    expect(mine.sessions.absoluteTimeoutSeconds).toBe(repo.sessions.absoluteTimeoutSeconds);
  });

  it.each(ENVS)('%s: fit for several replicas behind an ingress on port 8080, ops on 8081', (env) => {
    const r = overlayRules(env);
    expect(r.sessions.store).toBe('redis');
    // The same variable the Deployment sets from the Secret (which also overrides the rules).
    expect(r.sessions.redis?.url).toBe('env:ERS_BRIDGE_SESSION_STORE');
    expect(r.sessions.redis?.keyPrefix).toBe(`ers-bridge:${env}:`);
    expect(Object.keys(r.sessions.encryption?.keys ?? {})).toContain(r.sessions.encryption?.current);
    expect(r.admin?.token).toMatch(/^env:/);
    expect(r.admin?.open ?? false).toBe(false);
    expect(r.server.port).toBe(8080);
    // The ops surface where the Deployment's probes and Prometheus look: 8081, on the legacy port's address
    // (--host 0.0.0.0) unless the rules name another, which must not be loopback (the kubelet probes the pod IP).
    expect(r.server.opsPort).toBe(8081);
    if (r.server.opsHost !== undefined) expect(r.server.opsHost).toBe('0.0.0.0');
    expect(r.legacy.publicBaseUrl).toMatch(/^https:\/\/[^/]+\/ers-api$/);
    if (r.cis2) expect(new URL(r.cis2.redirectUri).host).toBe(new URL(r.legacy.publicBaseUrl!).host);
    // Nothing written to a read-only root filesystem.
    expect(r.comparison?.file).toBeUndefined();
    expect(r.record).toBeUndefined();
  });

  it.each(ENVS)(
    '%s: every secret reference is provided by the pod (env from ers-bridge-env, files under /run/secrets)',
    (env) => {
      const r = overlayRules(env);
      for (const path of fileRefs(r)) expect(path.startsWith(`${KEYS_MOUNT}/`), path).toBe(true);
      for (const name of envRefs(r))
        expect(name, 'not a Kubernetes-reserved or image variable').not.toMatch(
          /^(PATH|HOME|NODE_.*|PORT|KUBERNETES_.*)$/,
        );
      if (env === 'int') {
        // The example Secret is written for INT: it has exactly the keys the INT rules reference.
        expect(new Set(secretKeys('ers-bridge-env'))).toEqual(new Set(envRefs(r)));
        expect(new Set(secretKeys('ers-bridge-keys'))).toEqual(
          new Set(fileRefs(r).map((p) => p.slice(KEYS_MOUNT.length + 1))),
        );
      }
    },
  );

  it('the example Secrets are named as the Deployment uses them', () => {
    expect(
      secrets()
        .map((s) => s['metadata']['name'])
        .sort(),
    ).toEqual(['ers-bridge-env', 'ers-bridge-keys']);
    expect(secretKeys('ers-bridge-env')).toContain('ERS_BRIDGE_SESSION_STORE');
    const spec = one(rendered('base'), 'Deployment')['spec']['template']['spec'];
    const c = spec['containers'][0];
    const used = new Set<string>([
      ...(c['envFrom'] as Obj[]).map((e) => e['secretRef']['name']),
      ...(c['env'] as Obj[]).flatMap((e) => e['valueFrom']?.['secretKeyRef']?.['name'] ?? []),
      ...(spec['volumes'] as Obj[]).flatMap((v) => v['secret']?.['secretName'] ?? []),
    ]);
    expect([...used].sort()).toEqual(['ers-bridge-env', 'ers-bridge-keys']);
  });
});

describe('deploy/k8s secrets: placeholders only', () => {
  const file = join(BASE, 'secret.example.yaml');
  const text = readFileSync(file, 'utf8');
  const secrets = () => docsOf(file);

  it('is marked as an example not to apply with real values', () => {
    expect(text.split('\n')[0]).toMatch(/EXAMPLE ONLY: DO NOT APPLY WITH REAL VALUES/);
  });

  it('every value is an obvious placeholder, in stringData (no base64 data hiding a value)', () => {
    for (const s of secrets()) {
      expect(s['kind']).toBe('Secret');
      expect(s['data'], s['metadata']['name']).toBeUndefined();
      const values = Object.entries(s['stringData'] as Record<string, string>);
      expect(values.length).toBeGreaterThan(0);
      for (const [key, value] of values) {
        expect(value, key).toMatch(/REPLACE-ME/);
        // Nothing that looks like key material next to the placeholder: no long base64/hex run.
        expect(value, key).not.toMatch(/[A-Za-z0-9+/=]{40,}/);
      }
    }
    const all = secrets().flatMap((s) => Object.keys(s['stringData']));
    for (const kind of ['API_KEY', 'API_SECRET', 'SESSION_KEY', 'ADMIN_TOKEN', 'SESSION_STORE', '.pem']) {
      expect(
        all.some((k) => k.includes(kind)),
        kind,
      ).toBe(true);
    }
  });

  it('no PEM private key with a body anywhere under deploy/k8s', () => {
    // A header followed by base64 (after real or escaped line breaks), in the raw text or in any parsed Secret value.
    const pem = /-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----(\s|\\n)*[A-Za-z0-9+/=]{16,}/;
    for (const f of ALL_FILES) expect(readFileSync(f, 'utf8'), rel(f)).not.toMatch(pem);
    for (const s of secrets()) {
      for (const [key, value] of Object.entries(s['stringData'] as Record<string, string>)) {
        expect(value, key).not.toMatch(pem);
      }
    }
  });

  it('the Redis URL placeholder carries no real password and the rules none at all', () => {
    const env = secrets().find((s) => s['metadata']['name'] === 'ers-bridge-env')!;
    const url = new URL(env['stringData']['ERS_BRIDGE_SESSION_STORE']);
    expect(url.protocol).toMatch(/^rediss?:$/);
    expect(url.password).toMatch(/REPLACE-ME/);
    for (const e of ENVS)
      expect(readFileSync(join(overlayDir(e), 'rules.yaml'), 'utf8')).not.toMatch(/rediss?:\/\/\S*@/);
  });
});

describe('deploy/k8s: ingress-nginx verifies the Spine endpoint certificate and forwards it', () => {
  const overlayRulesOf = (env: string) => {
    const file = join(overlayDir(env), 'rules.yaml');
    return parseRules(readFileSync(file, 'utf8'), rel(file));
  };

  it.each(ENVS)('overlays/%s: the Ingress asks for client certificates and passes the verified one on', (env) => {
    const ingress = rendered(`overlays/${env}`).find((o) => o['kind'] === 'Ingress')!;
    expect(ingress, 'an Ingress').toBeDefined();
    const a = ingress['metadata']['annotations'] as Record<string, string>;
    expect(a['nginx.ingress.kubernetes.io/auth-tls-secret']).toBe(`ers-bridge-${env}/ers-bridge-client-ca`);
    // optional, not on: browsers opening /login have no Spine certificate; bound ASIDs refuse calls without one.
    expect(a['nginx.ingress.kubernetes.io/auth-tls-verify-client']).toBe('optional');
    expect(a['nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream']).toBe('true');
    const host = new URL(overlayRulesOf(env).legacy.publicBaseUrl!).host;
    expect(ingress['spec']['rules'][0]['host']).toBe(host);
    expect(ingress['spec']['tls'][0]['hosts']).toEqual([host]);
    const paths = (ingress['spec']['rules'][0]['http']['paths'] as Obj[]).map((p) => p['path']);
    expect(paths).toEqual(['/ers-api', '/login']); // never /admin, /metrics or the ops port
  });

  it.each(ENVS)('overlays/%s: the rules trust that header from the ingress only, and bind the ASID', (env) => {
    const rules = overlayRulesOf(env);
    expect(rules.server.trustedProxies?.clientCertificateHeader).toBe('ssl-client-cert');
    const appRestricted = Object.values(rules.asids).filter((c) => c.accessMode === 'application-restricted');
    expect(appRestricted.length).toBeGreaterThan(0);
    for (const cfg of appRestricted) expect(cfg.callerAuth?.certificates?.length).toBeGreaterThan(0);
  });
});

describe('DEP: one NHS pair of APIM URLs (rules/dep.yaml, and the overlay that mirrors it)', () => {
  // Each pair from one NHS source; a dep. host with -dep paths on both (what rules/dep.yaml once had) is neither.
  const GUIDE = {
    // NHS's migration guide "Migrating from HSCN/CIS1 to APIM/CIS2", "5. Change endpoint URLs"; APIM's token path.
    baseUrl: 'https://dep.api.service.nhs.uk/referrals-dep/FHIR',
    tokenUrl: 'https://dep.api.service.nhs.uk/oauth2/token',
  };
  const DEPLOYMENT_CONFIG = {
    // NHSDigital/e-referrals-service-api (ers_dep_release: Apigee env dev, referrals-dep) and identity-service-api
    // (identity-service-dep, oauth2-dep).
    baseUrl: 'https://dev.api.service.nhs.uk/referrals-dep/FHIR',
    tokenUrl: 'https://dev.api.service.nhs.uk/oauth2-dep/token',
  };
  const apimOf = (file: string) => {
    const r = parseRules(readFileSync(join(ROOT, file), 'utf8'), file);
    return { baseUrl: r.apim.baseUrl, tokenUrl: r.apim.tokenUrl };
  };

  it.each(['rules/dep.yaml', 'deploy/k8s/overlays/dep/rules.yaml'])(
    '%s: the migration guide’s pair, base and token URL on one host',
    (file) => {
      const apim = apimOf(file);
      expect(apim).toEqual(GUIDE);
      expect(new URL(apim.tokenUrl!).host).toBe(new URL(apim.baseUrl).host);
    },
  );

  it('rules/dep.yaml names both NHS sources and gives the other pair whole', () => {
    const text = readFileSync(join(ROOT, 'rules/dep.yaml'), 'utf8');
    expect(text).toContain('Migrating from HSCN/CIS1 to APIM/CIS2');
    expect(text).toContain('NHSDigital/e-referrals-service-api');
    expect(text).toContain('NHSDigital/identity-service-api');
    expect(text).toContain(DEPLOYMENT_CONFIG.baseUrl);
    expect(text).toContain(DEPLOYMENT_CONFIG.tokenUrl);
    expect(text).not.toMatch(/dep\.api\.service\.nhs\.uk\/oauth2-dep/);
  });

  it('MIGRATION.md gives the same pair for Deployment', () => {
    const row = readFileSync(join(ROOT, 'MIGRATION.md'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('| Deployment |'))!;
    expect(row).toContain(GUIDE.baseUrl);
    expect(row).toContain(GUIDE.tokenUrl);
  });
});

describe('headers with underscores: what to set on the proxies in front, documented', () => {
  // ers-bridge does not ship the ingress controller (or any proxy in front), so kustomize cannot set these: the
  // documentation must name each setting where operators look for it.
  const SETTINGS = [
    'enable-underscores-in-headers: "true"', // ingress-nginx's ConfigMap
    'underscores_in_headers on;', // plain nginx
    'routing.http.drop_invalid_header_fields.enabled=false', // AWS ALB
  ];
  const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

  it.each(['deploy/README.md', 'MIGRATION.md'])('%s names XAPI_ASID, HTTP_X_SESSION_KEY and each setting', (file) => {
    const text = read(file);
    for (const s of [...SETTINGS, 'XAPI_ASID', 'HTTP_X_SESSION_KEY', 'underscores_in_headers off']) {
      expect(text, s).toContain(s);
    }
  });

  it('deploy/README.md says it once, in the Kubernetes section, with the ConfigMap command', () => {
    const text = read('deploy/README.md');
    const k8s = text.slice(text.indexOf('## Kubernetes'));
    expect(k8s).toContain('ingress-nginx-controller');
    expect(text.split('enable-underscores-in-headers').length - 1).toBeLessThanOrEqual(3);
    expect(text.indexOf('enable-underscores-in-headers')).toBeGreaterThan(text.indexOf('## Kubernetes'));
  });

  it('the Ingress manifest points at the controller setting', () => {
    expect(read('deploy/k8s/base/ingress.yaml')).toContain('enable-underscores-in-headers: "true"');
  });
});
