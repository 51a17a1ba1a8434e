/**
 * The `ers-bridge` command line. Exit codes: 0 success, 1 failure at run time, 2 usage or configuration error
 * (one line naming the file and field).
 */
import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Metrics, rulesHash } from '../admin/metrics.js';
import type { ApimStandIn, StandInApp, StandInCis2Options, StandInTls } from '../apim-standin/index.js';
import { KeyError, publicJwkFromPrivatePem } from '../auth/keys.js';
import { summaryCsv } from '../comparison/csv.js';
import { optionsByCode, reapplyOptions } from '../comparison/engine.js';
import { progressBar, readRecordedCalls, replayCalls } from '../comparison/replay.js';
import { formatSummary, withAccessModes } from '../comparison/report.js';
import { ComparisonStore } from '../comparison/store.js';
import type { LegacyStandIn, LegacyStandInTls } from '../legacy-standin/index.js';
import { createLogger } from '../logging.js';
import { buildOpsServer } from '../ops/server.js';
import { checkTrust, loadRulesFile, RulesError } from '../rules/load.js';
import { RulesReloader } from '../rules/reload.js';
import type { Rules } from '../rules/schema.js';
import { secretResolver } from '../rules/secrets.js';
import { buildRuntime, closeRuntime, type Runtime } from '../runtime/runtime.js';
import { applyListenerSettings, buildServer, type RuntimeHolder } from '../server.js';
import { comparisonFileProblem } from './compare-file.js';
import { DEMO_MODES, demoModeOf, pointDemoAtLegacy } from './demo-legacy.js';
import type { DemoPki } from './demo-pki.js';
import { explain } from './explain.js';
import { retiredCodes } from './retire.js';
import { rulesFileProblems } from './rules-check.js';

/**
 * The stand-ins (APIM, CIS2, the legacy host) and the demo's PKI are loaded only by the commands that run them
 * (emulate-apim, emulate-legacy, demo): `serve` never holds their code (issue 15: memory).
 */
const standInModules = async () => ({
  ...(await import('../apim-standin/index.js')),
  ...(await import('../legacy-standin/index.js')),
  ...(await import('./standins.js')),
  ...(await import('./demo-pki.js')),
});

export class UsageError extends Error {}

const HELP: Record<string, string> = {
  main: `ers-bridge — lets legacy NHS e-RS (HSCN/CIS1) clients work against the e-RS FHIR API on APIM.

Usage: ers-bridge <command> [options]

Commands:
  serve          Serve the legacy API, translating to APIM, with a rules file
  demo           Start the APIM stand-in and ers-bridge with rules/local.yaml (fresh keys; nothing secret on disk)
  rules check    Validate rules files
  explain        Show what a legacy call becomes: its mode and the APIM (or legacy host) request (sends nothing)
  emulate-apim   Run the APIM stand-in for the ASIDs of a rules file
  emulate-legacy Run the legacy HSCN e-RS API stand-in (A001–A003 and data calls), for passthrough/shadow/canary
  jwks           Print the public JWKS to register with APIM for one or more private keys
  compare report Summarise a comparison file (JSON lines) per A-code and per ASID
  replay         Replay recorded legacy traffic through the translation and compare the answers

Run 'ers-bridge <command> --help' for a command's options.
Exit codes: 0 success, 1 run-time failure, 2 usage or configuration error.`,
  serve: `Usage: ers-bridge serve --rules <file> [--host <addr>] [--port <n>] [--ops-port <n>] [--workers <n>|auto]

Serves the legacy e-RS API (/ers-api/...) and translates each call for APIM, with /admin beside it; /healthz,
/readyz and /metrics on a port of their own (the ops port). The rules file is reloaded on SIGHUP and when it
changes (invalid rules are refused and the old ones stay). SIGTERM or SIGINT: stop accepting, finish calls in
flight (up to 25 s), close the ops port last, exit 0.
  --rules <file>   rules file for the environment (default: $ERS_BRIDGE_RULES; the container image sets it to
                   /etc/ers-bridge/rules.yaml)
  --host <addr>    listen address (default: server.host in the rules, else 127.0.0.1); outside loopback the
                   rules must authenticate every application-restricted ASID (callerAuth) and name their hosts
  --port <n>       listen port (default: $PORT, else server.port in the rules, else 8080)
  --ops-port <n>   the ops port: /healthz, /readyz, /metrics (default: $OPS_PORT, else server.opsPort in the rules,
                   else 8081), on server.opsHost in the rules, else the listen address
  --workers <n>    one process per core sharing the port (default: $ERS_BRIDGE_WORKERS, else 1; auto = one per
                   core); needs the Redis session store
Environment: LOG_LEVEL (default info); ERS_BRIDGE_SESSION_STORE; the secrets the rules file references (env:NAME).`,
  demo: `Usage: ers-bridge demo [--port <n>] [--ops-port <n>] [--apim-port <n>] [--rules <file>] [--mtls [--pki-dir <dir>]]
                       [--mode shadow|canary|passthrough [--legacy-port <n>]] [--cis2-port <n>]

Starts the APIM stand-in on the address in rules/local.yaml (127.0.0.1:9000) and ers-bridge on 127.0.0.1:8080,
with RSA key pairs, API keys and secrets generated at start and passed in memory (nothing secret is written);
/healthz, /readyz and /metrics on 127.0.0.1:8081. For the rules' cis2 block (rules/local.yaml: the user-restricted
demo ASID 999000000002) it also starts the CIS2 stand-in on 127.0.0.1:9001 with a test user: sign in at
/login?asid=999000000002 in a browser, or GET /demo/id-token from the CIS2 stand-in (this machine only) for an ID
token to send as the A001 token.
  --port <n>        ers-bridge's port (default: $PORT, else 8080; 0 picks a free one)
  --ops-port <n>    the ops port: /healthz, /readyz, /metrics (default: $OPS_PORT, else 8081; 0 picks a free one)
  --apim-port <n>   the stand-in's port (default: the port in the rules' apim.baseUrl; 0 picks a free one)
  --rules <file>    another local rules file (default: rules/local.yaml)
  --mtls            serve the legacy port over TLS requiring client certificates, as HSCN did: makes a demo CA, a
                    server certificate for 127.0.0.1/localhost and client certificates for the demo ASID's system
                    and for one unbound system (needs openssl), binds the demo ASID to its system's certificate and
                    prints the curl commands
  --pki-dir <dir>   where --mtls writes ca.pem, client.pem + client-key.pem, other.pem + other-key.pem, server.pem
                    (default: a new temporary folder)
  --mode <mode>     also start the legacy stand-in (as 'ers-bridge emulate-legacy') and point the rules' legacy side
                    at it (legacy.baseUrl, production: false), with <mode> the default mode: shadow (the legacy
                    stand-in answers, APIM gets a compared copy: see /admin/compare/ui), canary (50% of sessions on
                    APIM, sticky per session) or passthrough (the legacy stand-in answers). The operations the
                    legacy stand-in does not answer (all but A004-A008, A013) translate. Default translate: APIM
                    answers, no legacy side
  --legacy-port <n> the legacy stand-in's port with --mode (default 9002; 0 picks a free one)
  --cis2-port <n>   the CIS2 stand-in's port (default: the port in the rules' cis2.issuer; 0 picks a free one)`,
  'emulate-legacy': `Usage: ers-bridge emulate-legacy [--host <addr>] [--port <n>] [--public-url <url>] [--asid <asid>]...
                             [--cert <file> --key <file> [--mtls-ca <file>]]

Runs the legacy stand-in: the withdrawn HSCN e-RS API (/ers-api) as legacy clients knew it, to practise the
migration modes (passthrough, shadow, canary: MIGRATION.md section 5) with ers-bridge's legacy.baseUrl pointing at
it. It answers A001/A002/A003 (POST/PUT/DELETE /ers-api/v1/ProfessionalSession: any CIS1 ticket is accepted but
'expired-ticket'; the user is a provider clinician at R69 and a referrer at R68) and the data calls A004
(CodeSystem), A005 (ReferralRequest), A006 (Binary), A007 ($ers.generateCRI), A008 ($ers.fetchworklist) and A013
($ers.acceptReferral) from the NHS example payloads (fixtures/ers-api), with legacy errors (eRS-OperationOutcome-1)
and X_ERS_TRANSACTION_ID. Holds no patient data; sessions are kept in memory. SIGTERM or SIGINT stops it.
  --host <addr>       listen address (default 127.0.0.1)
  --port <n>          listen port (default 9002; 0 picks a free one)
  --public-url <url>  the base URL its answers embed, as clients call it
                      (e.g. https://api.int1.ers.ncrs.nhs.uk/ers-api); default: its own address + /ers-api
  --asid <asid>       an ASID it knows (repeat for more); any other gets 403. Default: any ASID
  --cert <file>       serve HTTPS with this server certificate (PEM; with --key)
  --key <file>        the server certificate's private key (PEM)
  --mtls-ca <file>    mutual TLS, as HSCN required: refuse the TLS handshake without a client certificate issued by
                      this CA (PEM); needs --cert and --key. Give ers-bridge the client certificate as legacy.tls`,
  'rules check': `Usage: ers-bridge rules check <file>... [--resolve-secrets]

Validates rules files against the schema (schema/rules.schema.json) and the trust checks. Prints "ok <file>" for
each good file, or one line "<file>: <field>: <what was expected>" for every problem of each bad one (an unknown
field names the one it may have meant; a key given twice names both places), and exits 2 if any is bad. A file
that is not valid YAML is checked no further, and the trust checks run once the schema passes.
  --resolve-secrets   also resolve every secret reference (listing each one that fails) and, once all resolve,
                      import every private key and certificate as serve would`,
  explain: `Usage: ers-bridge explain <METHOD> <legacy-path> --rules <file> [--header 'Name: value']... [--role <BF>]
                       [--session <key>]

Prints the A-code of a legacy call and the APIM request ers-bridge would send for it, with secrets masked.
Sends nothing and needs no secrets. With --header 'XAPI_ASID: <asid>' it also applies that ASID's policy, the same
policy steps a real call runs. --role <business function> checks a user-restricted session's selected role too
(e.g. --role REFERRING_CLINICIAN). When the rules' modes send calls to the legacy host it also prints the call's
mode and each side's request: the legacy host's (the client's headers, the session key replaced), which side
answers and which gets the shadow copy (and whether a write is copied), and for a canary the side of the session
(--session <key>, else the call's HTTP_X_SESSION_KEY; the key is never printed) or of the ASID.
Example: ers-bridge explain GET /ers-api/STU3/v1/ReferralRequest/000000070000 --rules rules/int.yaml \\
           --header 'XAPI_ASID: 200000000220'`,
  jwks: `Usage: ers-bridge jwks <private-key.pem> --kid <key id> [<private-key.pem> --kid <key id>]...

Prints the JSON Web Key Set (public keys only) to publish for an APIM application, from the RSA private keys that
ers-bridge signs client assertions with: each key followed by its --kid (the n-th --kid names the n-th key), which
must match keyId in the rules file. Several keys make one JWKS, for rotation: publish the new key beside the old
one, switch keyId and privateKey in the rules, and drop the old key once nothing signs with it.
Keys must be RSA (APIM verifies RS512 signatures) of at least 2048 bits (4096 recommended); an EC, EdDSA or
RSA-PSS key, a shorter RSA key or a public key is refused (exit 2).
Example: ers-bridge jwks int-2025.pem --kid int-2025 int-2026.pem --kid int-2026`,
  'compare report': `Usage: ers-bridge compare report <file.jsonl> [--csv] [--rules <file>]

Prints the per-A-code comparison summary (compared, different, difference rate, status mismatches, errors, top
differing fields) and the migration readiness per ASID, from a comparison file written by ers-bridge (comparison.file
in the rules) or by replay --out. Rotated siblings (<file>.1, …) are read too. A file that is missing, unreadable,
empty or holds anything but comparison records is refused with one line naming it (exit 1); a last line cut short
by a writer stopped mid-write is left out.
  --csv   print the summary as CSV (RFC 4180, CRLF) instead: one row per A-code (section "operation") and one per
          ASID and A-code (section "readiness"), e.g. compare report compare.jsonl --csv > summary.csv
  --rules <file>  apply that rules file's shadow ignore rules (ignorePaths, ignoreHeaders) and presets setting to the
          records, as live shadow and replay do, and judge readiness by its ASIDs' access modes. Without it the
          known-difference presets still apply (A008 referralRequestVersion, A023 communicationRequestVersion)`,
  replay: `Usage: ers-bridge replay <recording.jsonl> --rules <file> [--out <compare.jsonl>] [--fail-on-difference]

Sends each recorded legacy call (recorded with record.file in the rules) through the translation to the APIM of the
rules file given, and compares each answer with the recorded one. Prints a progress bar and a summary per A-code.
Calls of user-restricted ASIDs (they need a CIS2 user) and file uploads (not kept in recordings) are skipped.
  --out <file>            also write the comparisons (redacted JSON lines) for 'compare report' or the admin page
  --fail-on-difference    exit 1 when any answer differs`,
  'emulate-apim': `Usage: ers-bridge emulate-apim --rules <file> [--host <addr>] [--port <n>] [--public-url <url>]
                           [--cis2-issuer <url> [--cis2-jwks <url|file>]] [--retire <A-codes>]
                           [--cert <file|env:NAME> --key <file|env:NAME>]

Runs the APIM stand-in: a local server as strict as APIM's token endpoint and e-RS API, answering with the NHS
example payloads. It registers one APIM application per ASID of the rules file, with the public key derived from
the ASID's private key (and, user-restricted, its API secret for refresh), so ers-bridge with the same rules file can
talk to it, on the rules' token URL path and base path. It knows the CIS2 stand-in's test user (555000000002) and
answers A030 with that user's roles.
  --port <n>             default: the port of apim.tokenUrl in the rules file (client assertions are addressed to
                         the token URL), else of apim.baseUrl, else 9000
  --public-url <url>     the origin clients use to reach it (token URL, links), e.g. http://apim-standin:9000;
                         default: the listening address (http://127.0.0.1:<port> when listening on 0.0.0.0)
  --cis2-issuer <url>    CIS2 token exchange, for user-restricted ASIDs: accept ID tokens whose iss is this issuer
                         (e.g. the rules' cis2.issuer), verified with the keys its discovery document names
                         (<url>/.well-known/openid-configuration, jwks_uri; read on first use). Without it a token
                         exchange is refused with an error naming this option
  --cis2-jwks <url|file> with --cis2-issuer: the issuer's keys from this JWKS URL, or from a JSON file holding the
                         JWKS, instead of discovery
  --retire <A-codes>     operations to answer as APIM answers removed ones (404), e.g. A006,A021,A032 as NHS
                         retired them; ers-bridge then reaches them through their successors (apim.successors)
  --cert, --key          serve HTTPS (and the A042 object store too) with this certificate chain and key (PEM), each
                         a file or env:NAME (a variable holding the PEM): for clients that reach the stand-in by a name
                         other than loopback, which the rules allow only over https; ers-bridge then trusts its CA
                         with apim.ca. With --public-url https://<that name>:<port>`,
};

type Flags = Record<string, string | boolean | string[] | undefined>;

function parse(
  args: string[],
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>,
): { values: Flags; positionals: string[] } {
  try {
    const r = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: r.values as Flags, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function portFrom(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${what}: expected a port number, got ${value}`);
  return n;
}

/** The ops port (/healthz, /readyz, /metrics): --ops-port, else $OPS_PORT, else server.opsPort in the rules. */
function opsPortFrom(flag: string | undefined, rules: Rules, legacyPort: number): number {
  const port = portFrom(flag, '--ops-port') ?? portFrom(process.env['OPS_PORT'], 'OPS_PORT') ?? rules.server.opsPort;
  if (port !== 0 && port === legacyPort) {
    throw new UsageError(`--ops-port: the ops surface needs a port of its own, not the legacy port ${legacyPort}`);
  }
  return port;
}

async function rulesCheck(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { 'resolve-secrets': { type: 'boolean' } });
  if (values['help']) return print(HELP['rules check']!);
  if (positionals.length === 0) throw new UsageError('rules check: expected at least one rules file');
  let bad = 0;
  for (const file of positionals) {
    const problems = await rulesFileProblems(file, { resolveSecrets: values['resolve-secrets'] === true });
    if (problems.length === 0) console.log(`ok ${file}`);
    else bad++;
    for (const p of problems) console.error(p.message);
  }
  return bad > 0 ? 2 : 0;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const done = (sig: string) => resolve(sig);
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
}

async function startBridge(
  file: string,
  rules: Rules,
  host: string,
  port: number,
  opsPort: number,
  env: NodeJS.ProcessEnv = process.env,
  options: { reload?: boolean } = {},
) {
  const logger = createLogger();
  const metrics = new Metrics();
  const build = (r: Rules, previous?: Runtime) =>
    buildRuntime(file, r, {
      resolveSecret: secretResolver(env),
      env,
      logger,
      metrics,
      ...(previous ? { previous } : {}),
    });
  const holder: RuntimeHolder = { current: await build(rules) };
  // The rules in force, by their file's hash, in the metrics (a reloader says so itself, and again on each reload).
  if (!options.reload) metrics.setRules(rules.environment, rulesHash(readFileSync(file, 'utf8')));
  const app = await buildServer(holder, { logger, metrics });
  const ops = await buildOpsServer(holder, { logger, metrics });
  let address: string;
  let opsAddress: string;
  try {
    address = await app.listen({ host, port });
    opsAddress = await ops.listen({
      host: rules.server.opsHost ?? host,
      port: opsPort,
      listenTextResolver: (a) => `Ops surface (/healthz, /readyz, /metrics) listening at ${a}`,
    });
  } catch (e) {
    await Promise.all([app.close(), ops.close()]);
    await closeRuntime(holder.current);
    throw e;
  }
  const reloader = options.reload
    ? new RulesReloader({
        file,
        holder,
        logger,
        metrics,
        build: (r, previous) => build(r, previous),
        onApplied: (next) => applyListenerSettings(app, next),
        listenHost: host,
      })
    : undefined;
  await reloader?.start();
  return {
    address,
    /** Where /healthz, /readyz and /metrics are served. */
    opsAddress,
    /** Stops accepting, lets calls in flight finish (up to the deadline), then closes pools and the store. */
    async close(deadlineMs = 25_000) {
      reloader?.stop();
      const timer = setTimeout(() => {
        logger.warn({ deadlineMs }, 'shutdown deadline passed; closing the remaining connections');
        app.server.closeAllConnections();
      }, deadlineMs);
      // Connections that fall idle while calls finish would otherwise be kept alive until their timeout (72 s).
      const idle = setInterval(() => app.server.closeIdleConnections(), 100);
      await app.close();
      clearInterval(idle);
      clearTimeout(timer);
      // The ops surface last: probes and scrapes are answered while the legacy calls drain.
      await ops.close();
      await closeRuntime(holder.current);
      logger.info('ers-bridge stopped');
    },
  };
}

async function serve(args: string[]): Promise<number> {
  const { values } = parse(args, {
    rules: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'ops-port': { type: 'string' },
    workers: { type: 'string' },
  });
  if (values['help']) return print(HELP['serve']!);
  const file = (values['rules'] as string | undefined) ?? process.env['ERS_BRIDGE_RULES'];
  if (!file) throw new UsageError('serve: expected --rules <file> or ERS_BRIDGE_RULES');
  if (values['rules'] === undefined && !existsSync(file)) {
    // The container image's default (ERS_BRIDGE_RULES=/etc/ers-bridge/rules.yaml): say what to mount where.
    throw new UsageError(
      `serve: no rules file at ${file} (the path ERS_BRIDGE_RULES names): mount the environment's rules file there (docker run -v <your rules.yaml>:${file}:ro …), set ERS_BRIDGE_RULES to another path, or give --rules <file>`,
    );
  }
  const rules = await loadRulesFile(file);
  const port =
    portFrom(values['port'] as string | undefined, '--port') ??
    portFrom(process.env['PORT'], 'PORT') ??
    rules.server.port;
  const host = (values['host'] as string | undefined) ?? rules.server.host;
  // The rules were checked for the host they name; --host may open ers-bridge wider, so check again for it.
  checkTrust(rules, file, host);
  const opsPort = opsPortFrom(values['ops-port'] as string | undefined, rules, port);
  const workers = workersFrom((values['workers'] as string | undefined) ?? process.env['ERS_BRIDGE_WORKERS']);
  if (workers > 1 && cluster.isPrimary) {
    const store = process.env['ERS_BRIDGE_SESSION_STORE'] || rules.sessions.store; // empty: not set
    if (!/^redis/.test(store)) {
      throw new UsageError(
        'serve --workers: several processes need a shared session store; set sessions.store: redis (or ERS_BRIDGE_SESSION_STORE=redis://…)',
      );
    }
    return runPrimary(workers);
  }
  const bridge = await startBridge(file, rules, host, port, opsPort, process.env, { reload: true });
  console.error(
    `ers-bridge serving environment ${rules.environment} on ${bridge.address} (APIM ${rules.apim.baseUrl})`,
  );
  console.error(`ers-bridge ops surface (/healthz, /readyz, /metrics) on ${bridge.opsAddress}`);
  await waitForSignal();
  await bridge.close();
  // A cluster worker's channel to the primary would keep it alive: let go of it once closed.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
}

function workersFrom(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new UsageError(`--workers: expected a number of processes or auto, got ${value}`);
  return n;
}

/**
 * One process per core sharing the listening port (node:cluster): the primary forks the workers, restarts one that
 * dies, passes SIGHUP on (reload) and, on SIGTERM/SIGINT, stops them gracefully and exits 0 when all have.
 */
async function runPrimary(count: number): Promise<number> {
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < count; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`ers-bridge worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    setTimeout(fork, 500);
  });
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  await waitForSignal();
  stopping = true;
  const alive = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.all(
    alive.map(
      (w) =>
        new Promise<void>((resolve) => {
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
        }),
    ),
  );
  // The primary holds the shared listening handle; with every worker gone there is nothing left to serve.
  setImmediate(() => process.exit(0));
  return 0;
}

/** The APIM applications the stand-in registers for a rules file: one per ASID, public key from its private key. */
async function standInAppsFor(file: string, rules: Rules, env: NodeJS.ProcessEnv): Promise<StandInApp[]> {
  const resolve = secretResolver(env);
  const apps: StandInApp[] = [];
  for (const [asid, cfg] of Object.entries(rules.asids)) {
    if (!cfg.apim) continue;
    let apiKey: string;
    let pem: string;
    try {
      apiKey = await resolve(cfg.apim.apiKey);
      pem = await resolve(cfg.apim.privateKey);
    } catch (e) {
      throw new RulesError(file, `asids."${asid}".apim`, (e as Error).message);
    }
    const app: StandInApp = {
      apiKey,
      asid,
      jwks: { keys: [publicJwkFromPrivatePem(pem, cfg.apim.keyId)] },
      accessMode: cfg.accessMode,
    };
    if (cfg.accessMode === 'application-restricted') {
      app.odsCode = cfg.organisation.odsCode;
      app.businessFunction = cfg.businessFunction;
    } else {
      try {
        app.apiSecret = await resolve(cfg.apim.apiSecret);
      } catch (e) {
        throw new RulesError(file, `asids."${asid}".apim.apiSecret`, (e as Error).message);
      }
    }
    apps.push(app);
  }
  return apps;
}

async function emulateApim(args: string[]): Promise<number> {
  const { startApimStandIn, cis2OptionsFrom, standInTlsFrom, StandInUsageError, standInLayoutFor, standInUsers } =
    await standInModules();
  const { values } = parse(args, {
    rules: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'public-url': { type: 'string' },
    'cis2-issuer': { type: 'string' },
    'cis2-jwks': { type: 'string' },
    retire: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  });
  if (values['help']) return print(HELP['emulate-apim']!);
  const file = values['rules'] as string | undefined;
  if (!file) throw new UsageError('emulate-apim: expected --rules <file>');
  const retire = retiredCodes(values['retire'] as string | undefined);
  if (retire.problem) throw new UsageError(retire.problem);
  let cis2: StandInCis2Options | undefined;
  let tls: StandInTls | undefined;
  try {
    cis2 = cis2OptionsFrom(values['cis2-issuer'] as string | undefined, values['cis2-jwks'] as string | undefined);
    tls = standInTlsFrom(values['cert'] as string | undefined, values['key'] as string | undefined);
  } catch (e) {
    if (e instanceof StandInUsageError) throw new UsageError(e.message);
    throw e;
  }
  const rules = await loadRulesFile(file);
  const layout = standInLayoutFor(rules);
  const standIn = await startApimStandIn({
    host: (values['host'] as string | undefined) ?? '127.0.0.1',
    port: portFrom(values['port'] as string | undefined, '--port') ?? layout.port,
    ...(layout.tokenUrlPath ? { tokenUrlPath: layout.tokenUrlPath } : {}),
    basePath: layout.basePath,
    apps: await standInAppsFor(file, rules, process.env),
    users: standInUsers(),
    ...(cis2 ? { cis2 } : {}),
    ...(values['public-url'] ? { publicUrl: values['public-url'] as string } : {}),
    ...(retire.codes ? { retire: retire.codes } : {}),
    ...(tls ? { tls } : {}),
  });
  console.error(
    `APIM stand-in on ${standIn.origin}${tls ? ' (TLS)' : ''}: e-RS at ${standIn.baseUrl}, token endpoint ${standIn.tokenUrl}`,
  );
  console.error(
    cis2
      ? `CIS2 token exchange: ID tokens from ${cis2.issuer} (keys from ${cis2.jwksUri ?? cis2.discoveryUri ?? 'the --cis2-jwks file'})`
      : `CIS2 token exchange: off; start with --cis2-issuer <url>${rules.cis2 ? ` (the rules' cis2.issuer is ${rules.cis2.issuer})` : ''} to accept ID tokens`,
  );
  await waitForSignal();
  await standIn.close();
  return 0;
}

/** The legacy stand-in's default port (the APIM stand-in's is 9000, the demo CIS2 stand-in's 9001). */
const LEGACY_STANDIN_PORT = 9002;

/** `emulate-legacy`'s TLS: HTTPS with --cert and --key, and client certificates required with --mtls-ca. */
function legacyTlsFrom(values: Flags): LegacyStandInTls | undefined {
  const [cert, key, ca] = (['cert', 'key', 'mtls-ca'] as const).map((f) => values[f] as string | undefined);
  if (cert === undefined && key === undefined) {
    if (ca !== undefined)
      throw new UsageError('emulate-legacy: --mtls-ca needs --cert and --key (the server certificate)');
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new UsageError('emulate-legacy: --cert and --key go together');
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(
        `emulate-legacy: ${flag}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  return {
    cert: read(cert, '--cert'),
    key: read(key, '--key'),
    ...(ca !== undefined ? { ca: read(ca, '--mtls-ca'), requireClientCert: true } : {}),
  };
}

async function emulateLegacy(args: string[]): Promise<number> {
  const { startLegacyStandIn } = await standInModules();
  const { values } = parse(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    'public-url': { type: 'string' },
    asid: { type: 'string', multiple: true },
    cert: { type: 'string' },
    key: { type: 'string' },
    'mtls-ca': { type: 'string' },
  });
  if (values['help']) return print(HELP['emulate-legacy']!);
  const tls = legacyTlsFrom(values);
  const asids = values['asid'] as string[] | undefined;
  for (const a of asids ?? []) {
    if (!/^\d{6,15}$/.test(a)) throw new UsageError(`emulate-legacy: --asid: expected 6 to 15 digits, got ${a}`);
  }
  const publicUrl = values['public-url'] as string | undefined;
  if (publicUrl !== undefined && !URL.canParse(publicUrl)) {
    throw new UsageError(`emulate-legacy: --public-url: expected a URL, got ${publicUrl}`);
  }
  const standIn = await startLegacyStandIn({
    host: (values['host'] as string | undefined) ?? '127.0.0.1',
    port: portFrom(values['port'] as string | undefined, '--port') ?? LEGACY_STANDIN_PORT,
    ...(tls ? { tls } : {}),
    ...(asids ? { asids } : {}),
    ...(publicUrl ? { networkBaseUrl: publicUrl } : {}),
    // A long-running stand-in keeps no request records (tests read them in-process).
    maxRecorded: 0,
  });
  const a001 = `-X POST ${standIn.baseUrl}/v1/ProfessionalSession -H 'XAPI_ASID: ${asids?.[0] ?? '999000000001'}' -H 'Content-Type: application/json' -d '{"typeInfo":"uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession","token":"any-ticket"}'`;
  const certs = tls?.requireClientCert ? ' --cacert <ca.pem> --cert <client.pem> --key <client-key.pem>' : '';
  console.log(
    [
      `legacy stand-in (HSCN e-RS API) on ${standIn.baseUrl}${tls ? (tls.requireClientCert ? ' (mutual TLS: client certificates required)' : ' (TLS)') : ''}`,
      `Point ers-bridge at it: legacy.baseUrl: ${standIn.baseUrl}${tls?.requireClientCert ? ' and legacy.tls with a client certificate of that CA' : ''}; production: false.`,
      `Try: curl -i${tls && !tls.requireClientCert ? ' --cacert <ca.pem>' : certs} ${a001}`,
      'Ctrl-C stops it.',
    ].join('\n'),
  );
  await waitForSignal();
  await standIn.close();
  return 0;
}

async function demo(args: string[]): Promise<number> {
  const {
    startApimStandIn,
    startLegacyStandIn,
    cis2PortOf,
    demoCis2Lines,
    demoUserSecrets,
    registerCallback,
    standInCis2For,
    standInUsers,
    startDemoCis2,
    DEMO_CLIENT_FQDN,
    makeDemoPki,
  } = await standInModules();
  const { values } = parse(args, {
    port: { type: 'string' },
    'ops-port': { type: 'string' },
    'apim-port': { type: 'string' },
    rules: { type: 'string' },
    mtls: { type: 'boolean' },
    'pki-dir': { type: 'string' },
    mode: { type: 'string' },
    'legacy-port': { type: 'string' },
    'cis2-port': { type: 'string' },
  });
  if (values['help']) return print(HELP['demo']!);
  if (values['pki-dir'] && !values['mtls']) throw new UsageError('demo: --pki-dir goes with --mtls');
  const mode = demoModeOf(values['mode'] as string | undefined);
  if (!mode) throw new UsageError(`demo: --mode: expected one of ${DEMO_MODES.join(', ')}, got ${values['mode']}`);
  if (values['legacy-port'] && mode === 'translate') throw new UsageError('demo: --legacy-port goes with --mode');
  const legacyPort = portFrom(values['legacy-port'] as string | undefined, '--legacy-port') ?? LEGACY_STANDIN_PORT;
  const file = (values['rules'] as string | undefined) ?? new URL('../../rules/local.yaml', import.meta.url).pathname;
  const rules = await loadRulesFile(file);
  const port =
    portFrom(values['port'] as string | undefined, '--port') ??
    portFrom(process.env['PORT'], 'PORT') ??
    rules.server.port;
  const opsPort = opsPortFrom(values['ops-port'] as string | undefined, rules, port);
  const base = new URL(rules.apim.baseUrl);
  const apimPort = portFrom(values['apim-port'] as string | undefined, '--apim-port') ?? Number(base.port || 9000);
  const cis2Port = portFrom(values['cis2-port'] as string | undefined, '--cis2-port') ?? cis2PortOf(rules);

  // Fresh credentials for this run only, handed over in memory through the environment the rules reference.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ERS_DEMO_API_KEY: randomBytes(16).toString('hex'),
    ERS_DEMO_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ...demoUserSecrets(),
  };
  const pki = values['mtls']
    ? withDemoMtls(rules, (values['pki-dir'] as string | undefined) ?? undefined, { makeDemoPki, DEMO_CLIENT_FQDN })
    : undefined;
  // The CIS2 stand-in first: the APIM stand-in verifies its ID tokens in token exchange.
  const cis2 = rules.cis2 ? await startDemoCis2(file, rules.cis2, env, cis2Port) : undefined;
  let standIn: ApimStandIn;
  try {
    standIn = await startApimStandIn({
      host: base.hostname,
      port: apimPort,
      apps: await standInAppsFor(file, rules, env),
      users: standInUsers(),
      ...(cis2 ? { cis2: standInCis2For(cis2) } : {}),
    });
  } catch (e) {
    await cis2?.close();
    throw e;
  }
  // The stand-in may have been given another port: point the rules at where it really is.
  rules.apim.baseUrl = standIn.baseUrl;
  rules.apim.tokenUrl = standIn.tokenUrl;
  let legacy: LegacyStandIn | undefined;
  let bridge: Awaited<ReturnType<typeof startBridge>>;
  try {
    if (mode !== 'translate') {
      // The legacy side: the legacy stand-in, as `emulate-legacy` runs it, behind the demo's rules.
      legacy = await startLegacyStandIn({ host: '127.0.0.1', port: legacyPort, maxRecorded: 0 });
      pointDemoAtLegacy(rules, mode, legacy.baseUrl);
    }
    bridge = await startBridge(file, rules, '127.0.0.1', port, opsPort, env);
  } catch (e) {
    await legacy?.close();
    await standIn.close();
    await cis2?.close();
    throw e;
  }
  const address = bridge.address;
  // The CIS2 callback is on the port ers-bridge really listens on: registered with the CIS2 stand-in and the rules.
  if (cis2) registerCallback(rules, cis2, address);
  if (rules.legacy.publicBaseUrl) rules.legacy.publicBaseUrl = `${address}/ers-api`;
  const asid = Object.keys(rules.asids)[0]!;
  const a001 = `-X POST ${address}/ers-api/v1/ProfessionalSession -H 'XAPI_ASID: ${asid}' \\\n       -H 'Content-Type: application/json' -d '{"typeInfo":"uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession","token":"demo"}'`;
  console.log(
    [
      `APIM stand-in: ${standIn.baseUrl} (token endpoint ${standIn.tokenUrl})`,
      `ers-bridge:    ${address}/ers-api  (demo ASID ${asid}${pki ? `, bound to the client certificate of ${DEMO_CLIENT_FQDN}` : ''})`,
      `ops:           ${bridge.opsAddress}  (/healthz, /readyz, /metrics)`,
      ...(cis2 ? demoCis2Lines(rules, cis2, address) : []),
      ...(legacy ? demoModeLines(mode, legacy.baseUrl, address, rules.admin?.open === true) : []),
      ...(pki
        ? [
            `Mutual TLS: certificates in ${pki.dir} (ca.pem, client.pem + client-key.pem, other.pem + other-key.pem)`,
            "With the demo system's certificate, A001 → 201:",
            `  curl -i --cacert ${pki.ca} --cert ${pki.client} --key ${pki.clientKey} ${a001}`,
            'With no certificate, the TLS handshake fails:',
            `  curl -i --cacert ${pki.ca} ${a001}`,
            "With another system's certificate, 403 CALLER_CERTIFICATE_REFUSED:",
            `  curl -i --cacert ${pki.ca} --cert ${pki.other} --key ${pki.otherKey} ${a001}`,
          ]
        : [`Try: curl -i ${a001}`]),
      `README.md walks through A001 → A002 → A005 → A003${cis2 ? ', and as a CIS2 user A001 → A002 → A015 → A003' : ''}. Ctrl-C stops ${legacy || cis2 ? 'them all' : 'both'}.`,
    ].join('\n'),
  );
  await waitForSignal();
  await bridge.close();
  await legacy?.close();
  await standIn.close();
  await cis2?.close();
  return 0;
}

/** What `demo --mode` prints about the legacy side: where it is, what the mode does, where to look. */
function demoModeLines(mode: string, legacyBase: string, address: string, adminOpen: boolean): string[] {
  const what: Record<string, string> = {
    shadow: 'the legacy stand-in answers; APIM gets a copy of each call and the answers are compared',
    canary: 'half of the sessions are answered by APIM, the rest by the legacy stand-in (each session sticks to one)',
    passthrough: 'the legacy stand-in answers every call, unchanged but for the session key',
  };
  return [
    `legacy:        ${legacyBase}  (the legacy stand-in; mode ${mode}: ${what[mode]})`,
    ...(mode === 'shadow' && adminOpen
      ? [`comparisons:   ${address}/admin/compare/ui  (and ${address}/admin/compare as JSON)`]
      : []),
  ];
}

/**
 * `demo --mtls`: a demo PKI in `dir` (or a new temporary folder), the legacy port on TLS requiring client
 * certificates from the demo CA, and the demo ASID bound to the demo system's certificate.
 */
function withDemoMtls(
  rules: Rules,
  dir: string | undefined,
  pkiModule: { makeDemoPki: (dir: string) => DemoPki; DEMO_CLIENT_FQDN: string },
): DemoPki {
  const { makeDemoPki, DEMO_CLIENT_FQDN } = pkiModule;
  const pki = makeDemoPki(dir ?? mkdtempSync(join(tmpdir(), 'ers-bridge-demo-pki-')));
  rules.server.tls = {
    certificate: `file:${pki.serverCert}`,
    privateKey: `file:${pki.serverKey}`,
    minVersion: 'TLSv1.2',
    clientCertificates: 'required',
    clientCa: `file:${pki.ca}`,
  };
  const asid = Object.keys(rules.asids)[0]!;
  rules.asids[asid]!.callerAuth = { certificates: [{ subject: DEMO_CLIENT_FQDN }] };
  if (rules.legacy.publicBaseUrl) rules.legacy.publicBaseUrl = rules.legacy.publicBaseUrl.replace(/^http:/, 'https:');
  return pki;
}

async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    rules: { type: 'string' },
    header: { type: 'string', multiple: true },
    role: { type: 'string' },
    session: { type: 'string' },
  });
  if (values['help']) return print(HELP['explain']!);
  const [method, path] = positionals;
  if (!method || !path || positionals.length > 2) throw new UsageError('explain: expected <METHOD> <legacy-path>');
  const file = (values['rules'] as string | undefined) ?? process.env['ERS_BRIDGE_RULES'];
  if (!file) throw new UsageError('explain: expected --rules <file>');
  const rules = await loadRulesFile(file);
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  for (const h of (values['header'] as string[] | undefined) ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new UsageError(`explain: --header expects 'Name: value', got ${JSON.stringify(h)}`);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    rawHeaders.push(h.slice(0, i).trim(), h.slice(i + 1).trim());
  }
  const role = values['role'] as string | undefined;
  const session = values['session'] as string | undefined;
  const out = explain(rules, method.toUpperCase(), path, headers, {
    rawHeaders,
    ...(role ? { businessFunction: role } : {}),
    ...(session ? { sessionKey: session } : {}),
  });
  console.log(out.text);
  return out.ok ? 0 : 1;
}

async function jwksCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { kid: { type: 'string', multiple: true } });
  if (values['help']) return print(HELP['jwks']!);
  const kids = (values['kid'] as string[] | undefined) ?? [];
  if (positionals.length === 0) throw new UsageError('jwks: expected <private-key.pem> --kid <key id>');
  if (kids.length !== positionals.length) {
    throw new UsageError(
      `jwks: expected one --kid per key (the keyId in the rules file), got ${positionals.length} ${positionals.length === 1 ? 'key' : 'keys'} and ${kids.length} --kid`,
    );
  }
  const twice = kids.find((k, i) => kids.indexOf(k) !== i);
  if (twice !== undefined) throw new UsageError(`jwks: --kid ${twice} is given twice: each key needs a kid of its own`);
  const keys = positionals.map((file, i) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`jwks: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      return publicJwkFromPrivatePem(pem, kids[i]!, file);
    } catch (e) {
      if (e instanceof KeyError) throw new UsageError(`jwks: ${e.message}`);
      throw e;
    }
  });
  console.log(JSON.stringify({ keys }, null, 2));
  return 0;
}

async function compareCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') return print(HELP['compare report']!);
  if (sub !== 'report')
    throw new UsageError(`compare: unknown subcommand ${JSON.stringify(sub)}; expected 'compare report <file>'`);
  const { values, positionals } = parse(rest, { csv: { type: 'boolean' }, rules: { type: 'string' } });
  if (values['help']) return print(HELP['compare report']!);
  if (positionals.length !== 1) throw new UsageError('compare report: expected one <file.jsonl>');
  const file = positionals[0]!;
  // A missing, unreadable, empty or foreign file is a failure (exit 1), not a report of 0 comparisons.
  const problem = await comparisonFileProblem(file);
  if (problem) throw new Error(`compare report: ${problem}`);
  // The same ignore rules and presets as live shadow and replay (src/comparison/engine.ts): the rules' with --rules,
  // else the presets alone.
  const rulesFile = values['rules'] as string | undefined;
  const rules = rulesFile ? await loadRulesFile(rulesFile) : undefined;
  const optionsOf = optionsByCode(rules?.modes);
  let store: ComparisonStore;
  try {
    store = await ComparisonStore.load(file, { transform: (r) => reapplyOptions(r, optionsOf(r.aCode)) });
  } catch (e) {
    throw new Error(`compare report: ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const summary = withAccessModes(store.summary(), (asid) => rules?.asids[asid]?.accessMode);
  if (values['csv']) process.stdout.write(summaryCsv(summary));
  else console.log(formatSummary(summary));
  return 0;
}

async function replayCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    rules: { type: 'string' },
    out: { type: 'string' },
    'fail-on-difference': { type: 'boolean' },
  });
  if (values['help']) return print(HELP['replay']!);
  if (positionals.length !== 1) throw new UsageError('replay: expected one <recording.jsonl>');
  const file = (values['rules'] as string | undefined) ?? process.env['ERS_BRIDGE_RULES'];
  if (!file) throw new UsageError('replay: expected --rules <file>');
  let calls: Awaited<ReturnType<typeof readRecordedCalls>>;
  try {
    calls = await readRecordedCalls(positionals[0]!);
  } catch (e) {
    throw new UsageError(`replay: cannot read ${positionals[0]} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const rules = await loadRulesFile(file);
  // Replay goes through the translation, whatever the rules' modes, and neither records nor shadows; it compares
  // with the modes' own shadow ignore rules and presets, as live shadow does (src/comparison/engine.ts).
  const compareModes = rules.modes;
  rules.modes = { ...rules.modes, default: 'translate', routes: {} };
  delete rules.record;
  delete rules.comparison;
  const rt = await buildRuntime(file, rules, {
    resolveSecret: secretResolver(),
    env: { ERS_BRIDGE_SESSION_STORE: 'memory' },
  });
  const out = values['out'] as string | undefined;
  const store = new ComparisonStore(out ? { file: out } : {});
  const tty = process.stderr.isTTY === true;
  let lastShown = -1;
  try {
    const outcome = await replayCalls(rt, calls, {
      store,
      modes: compareModes,
      onProgress: (done, total, aCode) => {
        const tenth = total === 0 ? 10 : Math.floor((done / total) * 10);
        if (tty) process.stderr.write(`\r${progressBar(done, total)} ${aCode.padEnd(5)}`);
        else if (tenth !== lastShown) {
          lastShown = tenth;
          process.stderr.write(`${progressBar(done, total)}\n`);
        }
      },
    });
    if (tty) process.stderr.write('\n');
    console.log(formatSummary(store.summary()));
    const skipped = Object.entries(outcome.skipped);
    console.log(
      `replayed ${outcome.replayed} of ${outcome.total} recorded calls${skipped.length ? `; skipped: ${skipped.map(([w, n]) => `${n} (${w})`).join(', ')}` : ''}`,
    );
    const differing = store.summary().codes.reduce((n, c) => n + c.different, 0);
    return values['fail-on-difference'] && differing > 0 ? 1 : 0;
  } finally {
    await store.close();
    await closeRuntime(rt);
  }
}

function print(text: string): number {
  console.log(text);
  return 0;
}

/** The commands, by name: each takes the arguments after its name and resolves with the exit code. */
const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve,
  demo,
  'emulate-apim': emulateApim,
  'emulate-legacy': emulateLegacy,
  explain: explainCommand,
  jwks: jwksCommand,
  compare: compareCommand,
  replay: replayCommand,
  rules: rulesCommand,
};

async function rulesCommand(args: string[]): Promise<number> {
  if (args[0] === 'check') return rulesCheck(args.slice(1));
  if (args[0] === '--help' || args[0] === '-h' || args[0] === undefined) return print(HELP['rules check']!);
  throw new UsageError(`rules: unknown subcommand ${JSON.stringify(args[0])}; expected 'rules check <file>...'`);
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      return print(HELP['main']!);
    }
    if (command === '--version') {
      return print(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
    }
    const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)}; run 'ers-bridge --help'`);
    return await run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ers-bridge: ${e.message}`);
      return 2;
    }
    if (e instanceof RulesError) {
      console.error(e.message);
      return 2;
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') {
      console.error(`ers-bridge: ${err.message} — another process is using that port; stop it or choose another port`);
      return 1;
    }
    console.error(`ers-bridge: ${err.message ?? String(e)}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
