/**
 * Hot reload of the rules: on SIGHUP and when the rules file changes (debounced; a Kubernetes ConfigMap update swaps
 * a symlink, so the file's directory is watched and its content hash compared). A reload validates the new rules and
 * builds a new runtime first; only then does it swap it in. Invalid rules leave the old ones serving, with the error
 * logged and counted. Calls in flight finish on the runtime they started with, which is closed once they are done.
 * Settings that cannot change under a running process (listen addresses, session store) are refused: restart for them.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { type Metrics, rulesHash } from '../admin/metrics.js';
import { closeRuntime, type Runtime, type RuntimeHolder } from '../runtime/runtime.js';
import { type RulesInForce, rulesChanges } from './changes.js';
import { checkTrust, parseRules, RulesError } from './load.js';
import type { Rules } from './schema.js';

export interface ReloadResult {
  applied: boolean;
  error?: string;
}

export interface ReloaderOptions {
  file: string;
  holder: RuntimeHolder;
  /** Builds a runtime for new rules, carrying over what the old one shares. */
  build: (rules: Rules, previous: Runtime) => Promise<Runtime>;
  logger: Logger;
  metrics?: Metrics;
  debounceMs?: number;
  /** How long a replaced runtime may wait for its calls in flight before it is closed anyway. */
  drainMs?: number;
  /** Called with the new runtime once it serves (the server takes its certificates, timeouts and limits). */
  onApplied?: (next: Runtime) => void;
  /** The address the legacy port really listens on (`--host` may differ from the rules): trust is checked for it. */
  listenHost?: string;
}

function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Why new rules cannot be applied without a restart, if they cannot. */
function needsRestart(old: Rules, next: Rules): string | undefined {
  if (old.server.host !== next.server.host || old.server.port !== next.server.port) {
    return 'server.host/port changed: restart ers-bridge to listen elsewhere';
  }
  if (old.server.opsHost !== next.server.opsHost || old.server.opsPort !== next.server.opsPort) {
    return 'server.opsHost/opsPort changed: restart ers-bridge to serve /healthz, /readyz and /metrics elsewhere';
  }
  const tls = (r: Rules) => (r.server.tls ? r.server.tls.clientCertificates : 'no tls');
  if (tls(old) !== tls(next)) {
    return 'server.tls (on/off) or its clientCertificates mode changed: restart ers-bridge to apply (new certificates alone are reloaded)';
  }
  const store = (r: Rules) => JSON.stringify({ s: r.sessions.store, r: r.sessions.redis, e: r.sessions.encryption });
  if (store(old) !== store(next)) return 'sessions.store, redis or encryption changed: restart ers-bridge to apply';
  return undefined;
}

/** A runtime's rules and the material its secret references resolved to, for comparing two of them. */
function inForce(rt: Runtime): RulesInForce {
  const tls = rt.listener.tls;
  return {
    rules: rt.rules,
    resolved: {
      adminToken: rt.adminToken === undefined ? undefined : fingerprint(rt.adminToken),
      serverTls: tls ? fingerprint(`${tls.cert}\n${tls.key}\n${tls.ca ?? ''}`) : undefined,
    },
  };
}

/** Why the watcher reloads (the file changed): a refused edit is not refused (and counted) again for it. */
const WATCHER = 'file change';

/** The answer for content already in force (frozen: compared by identity for queued requests). */
const UNCHANGED: ReloadResult = Object.freeze({ applied: false });

export class RulesReloader {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReloadResult> | undefined;
  private queued: Promise<ReloadResult> | undefined;
  /** How many reloads were applied: a queued request knows whether one was applied after it was made. */
  private applies = 0;
  private lastApplied: string | undefined;
  /** The content last refused, and why: a watcher firing again on the same edit is not a second rejection. */
  private lastRejected: { print: string; error: string } | undefined;
  private readonly onSighup = () => void this.reload('SIGHUP');

  constructor(private readonly options: ReloaderOptions) {}

  /** Starts watching the file and listening for SIGHUP. */
  async start(): Promise<void> {
    const text = await readFile(this.options.file, 'utf8');
    this.lastApplied = fingerprint(text);
    this.options.metrics?.setRules(this.options.holder.current.rules.environment, rulesHash(text));
    process.on('SIGHUP', this.onSighup);
    const name = basename(this.options.file);
    try {
      this.watcher = watch(dirname(this.options.file), { persistent: false }, (_event, changed) => {
        // ConfigMaps change `..data` (a symlink), not the file's own name: any change in the directory is looked at.
        if (changed === null || changed === name || String(changed).startsWith('..')) this.schedule();
      });
      this.watcher.on('error', (e) =>
        this.options.logger.warn({ err: { message: e.message } }, 'rules file watch failed'),
      );
    } catch (e) {
      this.options.logger.warn(
        { err: { message: (e as Error).message } },
        'rules file cannot be watched; SIGHUP still reloads',
      );
    }
  }

  stop(): void {
    process.off('SIGHUP', this.onSighup);
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(WATCHER), this.options.debounceMs ?? 300);
  }

  /**
   * Reloads now, one at a time. A request made while a reload runs gets the result of the run after it, which reads
   * the file as it is now (the running one may have read it before the caller's edit). If that finds the file as
   * the running one applied it, the request's edit is in force: it is told so.
   */
  async reload(why: string): Promise<ReloadResult> {
    if (this.running) {
      const since = this.applies;
      this.queued ??= this.running.then(() => {
        this.queued = undefined;
        return this.reload(why);
      });
      return this.queued.then((r) => (r === UNCHANGED && this.applies > since ? { applied: true } : r));
    }
    this.running = this.reloadOnce(why).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async reloadOnce(why: string): Promise<ReloadResult> {
    const { file, holder, logger, metrics } = this.options;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      return this.reject(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, why);
    }
    const print = fingerprint(text);
    // Unchanged content is not applied again (the watcher fires more than once per edit); SIGHUP always reloads.
    if (print === this.lastApplied && why !== 'SIGHUP') return UNCHANGED;
    if (print === this.lastRejected?.print && why === WATCHER) {
      return { applied: false, error: this.lastRejected.error };
    }
    let next: Runtime;
    try {
      const rules = parseRules(text, file);
      if (this.options.listenHost !== undefined) checkTrust(rules, file, this.options.listenHost);
      const old = holder.current;
      const restart = needsRestart(old.rules, rules);
      if (restart) return this.reject(`${file}: ${restart}`, why, print);
      next = await this.options.build(rules, old);
    } catch (e) {
      return this.reject(e instanceof RulesError ? e.message : `${file}: ${(e as Error).message}`, why, print);
    }
    const old = holder.current;
    holder.current = next;
    this.options.onApplied?.(next);
    this.lastApplied = print;
    this.lastRejected = undefined;
    this.applies++;
    metrics?.reloads.inc({ outcome: 'applied' });
    metrics?.setRules(next.rules.environment, rulesHash(text));
    // What changed, by name (modes and limits with their values; never a secret or what it resolves to).
    const changes = rulesChanges(inForce(old), inForce(next));
    logger.info({ why, environment: next.rules.environment, changes }, 'rules reloaded');
    void this.retire(old);
    return { applied: true };
  }

  private reject(error: string, why: string, print?: string): ReloadResult {
    if (print !== undefined) this.lastRejected = { print, error };
    this.options.metrics?.reloads.inc({ outcome: 'rejected' });
    this.options.logger.error({ why, error }, 'rules reload rejected; the previous rules stay in force');
    return { applied: false, error };
  }

  /** Closes a replaced runtime's own connections once its calls in flight are done (or after the drain time). */
  private async retire(old: Runtime): Promise<void> {
    const clock = old.shared.clock;
    const until = clock.now() + (this.options.drainMs ?? 30_000);
    while (old.inFlight > 0 && clock.now() < until) await clock.sleep(50);
    await closeRuntime(old, false).catch(() => undefined);
  }
}
