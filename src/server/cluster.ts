/**
 * `portcullis start --workers N`: the ready-to-run server in N worker processes (node:cluster)
 * sharing one listening port. This module is both sides: {@link runCluster} runs in the primary,
 * and the module is also the workers' entry point (the primary forks it).
 *
 * - The primary serves no request. It forks worker 1 and waits until it listens: worker 1 alone
 *   does the first-start work (migrations, config clients and users, the demo clients and user,
 *   signing keys) and returns its banner, which the primary prints with a line naming the number
 *   of workers. Only then are workers 2..N forked, banner off: they find everything in storage.
 * - Workers get what they need over the IPC channel, never through files: the config the primary
 *   resolved, and, from worker 1, its issuer (with port 0: the port it got) and its demo sign-in
 *   flow (PKCE verifier, state, nonce), so that any worker can answer `/demo/callback`.
 * - Port 0: node:cluster keys the shared listening handle by the address and port asked for, so
 *   every worker asking for port 0 gets the one random port worker 1 got. The handle closes when
 *   no worker holds it any more: a worker forked then asks for that real port, so the issuer stays
 *   right.
 * - SIGTERM or SIGINT to the primary: every worker closes as `startServer` does (stops accepting,
 *   drains in-flight requests, closes the storage) and the primary exits 0 once all have exited
 *   (1 when one of them failed to close or had to be killed). A second signal kills the workers
 *   (SIGKILL) and exits 1 at once. Workers ignore SIGINT: a terminal's Ctrl-C reaches the whole
 *   process group, and the primary coordinates. SIGTERM to one worker closes that worker
 *   gracefully; the primary then replaces it.
 * - A worker that exits when not asked to is logged and replaced, after 0.5 s, doubling up to
 *   30 s while replacements keep dying within 30 s of listening. Worker 1 failing before it
 *   listens ends it all: {@link runCluster} rejects with its error and nothing more is forked.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { DatabaseConfig, ResolvedConfig } from './config.js';
import type { DemoFlow } from './demo.js';
import { isEntryModule } from './entry-point.js';
import { createServerLogger } from './logger.js';
import { startServer, type RunningServer } from './start.js';

export const MAX_WORKERS = 64;

/** Set in a worker's environment by the primary: this process is a Portcullis cluster worker. */
const WORKER_MARK = 'PORTCULLIS_CLUSTER_WORKER';
const WORKER_ENTRY = fileURLToPath(import.meta.url);
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that served at least this long before it died is replaced without backoff. */
const STABLE_AFTER_MS = 30_000;
/** `startServer`'s drain timeout, plus this, is how long the primary waits for the workers to stop. */
const DRAIN_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export type WorkerCount = { ok: true; count: number } | { ok: false; problem: string };

/** `1`..`64`, or `auto` (one worker per CPU the process may use, `os.availableParallelism()`). */
export function parseWorkerCount(value: string): WorkerCount {
  const text = value.trim().toLowerCase();
  if (text === 'auto') return { ok: true, count: Math.min(MAX_WORKERS, Math.max(1, availableParallelism())) };
  const count = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (count >= 1 && count <= MAX_WORKERS) return { ok: true, count };
  return { ok: false, problem: `must be an integer from 1 to ${MAX_WORKERS}, or auto (one per CPU) (got ${JSON.stringify(value)})` };
}

/** Why this storage cannot be shared by workers (it lives in one process's memory), or undefined. */
export function inMemoryStorageProblem(database: DatabaseConfig): string | undefined {
  if (database.kind === 'memory' || (database.kind === 'sqlite' && database.filename === ':memory:')) {
    return (
      `DATABASE_URL ${database.url} keeps everything in memory, so every worker would have its own database ` +
      '(its own clients, keys and tokens); use a file (sqlite:<path>) or PostgreSQL, or run without workers'
    );
  }
  return undefined;
}

export interface ClusterOptions {
  /** Worker processes, 1 to 64. */
  workers: number;
  /** The primary's logger (workers log with their own, at the config's level). */
  logger: Logger;
  /** Where the banner goes. Default: process.stdout. */
  write?: (text: string) => void;
}

type StartMessage = { type: 'portcullis:start'; config: ResolvedConfig; first: boolean; demoFlow?: DemoFlow };
type ToWorker = StartMessage | { type: 'portcullis:stop' };
type FromWorker =
  | { type: 'portcullis:hello' }
  | { type: 'portcullis:listening'; port: number; issuer: string; banner: string; demoFlow?: DemoFlow }
  | { type: 'portcullis:failed'; message: string; stack?: string };

/**
 * Run the server in `options.workers` worker processes until SIGTERM or SIGINT. Resolves with the
 * exit code once every worker has stopped; rejects when worker 1 fails before it listens (its
 * error) or when the storage is in memory.
 */
export function runCluster(config: ResolvedConfig, options: ClusterOptions): Promise<number> {
  const problem = inMemoryStorageProblem(config.database);
  if (problem !== undefined) return Promise.reject(new ConfigError(`--workers: ${problem}`));
  if (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > MAX_WORKERS) {
    return Promise.reject(new ConfigError(`--workers: must be an integer from 1 to ${MAX_WORKERS}`));
  }
  if (!cluster.isPrimary) return Promise.reject(new Error('runCluster: this process is a cluster worker already'));
  return new Promise((resolvePromise, rejectPromise) => new Primary(config, options, resolvePromise, rejectPromise).start());
}

interface Slot {
  /** 1-based; worker 1 is the one that starts first. */
  readonly index: number;
  worker: Worker | undefined;
  /** It asked for its instructions (so a message sent now is heard). */
  greeted: boolean;
  /** When it reported listening. */
  listeningAt: number | undefined;
  /** Replacements in a row that died soon after starting (the backoff exponent). */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

class Primary {
  readonly #config: ResolvedConfig;
  readonly #logger: Logger;
  readonly #write: (text: string) => void;
  readonly #slots: Slot[];
  readonly #resolve: (code: number) => void;
  readonly #reject: (err: Error) => void;
  #phase: 'first' | 'running' | 'stopping' | 'done' = 'first';
  /** Learnt from worker 1 once it listens, for every later worker. */
  #issuer: string | undefined;
  #port: number | undefined;
  #demoFlow: DemoFlow | undefined;
  /** The port later workers ask for: the configured one, or the real one once no worker holds the shared handle. */
  #forkPort: number;
  #allListeningLogged = false;
  #cleanStop = true;
  #stopTimer: NodeJS.Timeout | undefined;
  readonly #onSignal = (signal: NodeJS.Signals): void => this.#signal(signal);

  constructor(config: ResolvedConfig, options: ClusterOptions, resolvePromise: (code: number) => void, rejectPromise: (err: Error) => void) {
    this.#config = config;
    this.#logger = options.logger;
    this.#write = options.write ?? ((text: string) => void process.stdout.write(text));
    this.#slots = Array.from({ length: options.workers }, (_, i) => ({
      index: i + 1,
      worker: undefined,
      greeted: false,
      listeningAt: undefined,
      failures: 0,
      restartTimer: undefined,
    }));
    this.#forkPort = config.port;
    this.#resolve = resolvePromise;
    this.#reject = rejectPromise;
  }

  start(): void {
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], serialization: 'advanced' });
    process.on('SIGTERM', this.#onSignal);
    process.on('SIGINT', this.#onSignal);
    this.#logger.info({ workers: this.#slots.length }, 'starting worker 1, then the others once it listens');
    this.#fork(this.#slots[0]!);
  }

  #fork(slot: Slot): void {
    // No worker holds the shared handle (it closed with the last one): ask for the real port again.
    if (this.#config.port === 0 && this.#port !== undefined && this.#alive().length === 0) this.#forkPort = this.#port;
    const port = this.#forkPort;
    const first = this.#phase === 'first';
    const worker = cluster.fork({ [WORKER_MARK]: '1' });
    slot.worker = worker;
    slot.greeted = false;
    slot.listeningAt = undefined;
    let failure: { message: string; stack?: string } | undefined;
    worker.on('message', (message: unknown) => {
      if (!isFromWorker(message) || slot.worker !== worker) return;
      switch (message.type) {
        case 'portcullis:hello':
          slot.greeted = true;
          if (this.#phase === 'stopping') this.#send(worker, { type: 'portcullis:stop' });
          else this.#send(worker, this.#startMessage(first, port));
          return;
        case 'portcullis:listening':
          this.#listening(slot, worker, message);
          return;
        case 'portcullis:failed':
          failure = message.stack === undefined ? { message: message.message } : { message: message.message, stack: message.stack };
          return;
      }
    });
    worker.on('error', (err: Error) => this.#logger.warn({ err, worker: slot.index, worker_pid: worker.process.pid }, 'worker channel error'));
    // Act once the process has exited AND its channel is read to the end (a last message may follow the exit).
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let disconnected = false;
    const settle = (): void => {
      if (exit !== undefined && disconnected) this.#exited(slot, worker, exit.code, exit.signal, failure);
    };
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      exit = { code, signal };
      settle();
    });
    worker.on('disconnect', () => {
      disconnected = true;
      settle();
    });
  }

  #startMessage(first: boolean, port: number): StartMessage {
    if (first) return { type: 'portcullis:start', config: this.#config, first: true };
    const config: ResolvedConfig = { ...this.#config, port };
    // With port 0 and no configured issuer, worker 1 computed the issuer from its port: keep it.
    if (config.issuer === undefined) config.issuer = this.#issuer;
    const message: StartMessage = { type: 'portcullis:start', config, first: false };
    if (this.#demoFlow !== undefined) message.demoFlow = this.#demoFlow;
    return message;
  }

  #listening(slot: Slot, worker: Worker, message: Extract<FromWorker, { type: 'portcullis:listening' }>): void {
    slot.listeningAt = Date.now();
    if (this.#phase === 'stopping' || this.#phase === 'done') return;
    this.#logger.info({ worker: slot.index, worker_pid: worker.process.pid, port: message.port }, 'worker listening');
    if (this.#phase === 'first') {
      this.#phase = 'running';
      this.#issuer = message.issuer;
      this.#port = message.port;
      this.#demoFlow = message.demoFlow;
      this.#write(withWorkersLine(message.banner, `  workers:    ${this.#slots.length} (node:cluster processes sharing this port; primary pid ${process.pid})`));
      for (const later of this.#slots.slice(1)) this.#fork(later);
    }
    if (!this.#allListeningLogged && this.#slots.every((s) => s.listeningAt !== undefined)) {
      this.#allListeningLogged = true;
      this.#logger.info({ workers: this.#slots.length, worker_pids: this.#alive().map((w) => w.process.pid) }, 'all workers listening');
    }
  }

  #exited(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null, failure: { message: string; stack?: string } | undefined): void {
    if (slot.worker !== worker) return;
    const pid = worker.process.pid;
    const listeningAt = slot.listeningAt;
    slot.worker = undefined;
    slot.greeted = false;
    slot.listeningAt = undefined;

    if (this.#phase === 'done') return;
    if (this.#phase === 'stopping') {
      if (code !== 0) this.#cleanStop = false;
      if (this.#alive().length === 0) this.#finish(this.#cleanStop ? 0 : 1);
      return;
    }
    if (this.#phase === 'first') {
      // Worker 1 never listened: fork nothing more, report why.
      const err = new Error(failure?.message ?? `worker 1 (pid ${pid}) ${describeExit(code, signal)} before it was listening`);
      if (failure?.stack !== undefined) err.stack = failure.stack;
      this.#finish(1, err);
      return;
    }
    if (listeningAt !== undefined && Date.now() - listeningAt >= STABLE_AFTER_MS) slot.failures = 0;
    slot.failures += 1;
    const delay = Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (slot.failures - 1));
    const entry = {
      worker: slot.index,
      worker_pid: pid,
      exit_code: code,
      signal,
      ...(failure !== undefined ? { error: failure.message } : {}),
      restart_in_ms: delay,
    };
    if (code === 0 && signal === null) this.#logger.warn(entry, 'worker exited; replacing it');
    else this.#logger.error(entry, listeningAt === undefined ? 'worker died before it was listening; replacing it' : 'worker died; replacing it');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.#phase === 'running') this.#fork(slot);
    }, delay);
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#phase === 'stopping') {
      this.#logger.warn({ signal }, 'second signal: killing the workers without waiting for in-flight requests');
      this.#killAll();
      process.exit(1);
    }
    this.#phase = 'stopping';
    const alive = this.#alive();
    this.#logger.info({ signal, workers: alive.length }, 'shutting down: every worker finishes its in-flight requests');
    for (const slot of this.#slots) {
      if (slot.restartTimer !== undefined) clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      // A worker that has not asked for its instructions yet is told to stop when it does.
      if (slot.worker !== undefined && slot.greeted) this.#send(slot.worker, { type: 'portcullis:stop' });
    }
    if (alive.length === 0) {
      this.#finish(0);
      return;
    }
    this.#stopTimer = setTimeout(() => {
      this.#logger.error({ worker_pids: this.#alive().map((w) => w.process.pid) }, 'workers still running after the drain timeout: killing them');
      this.#cleanStop = false;
      this.#killAll();
    }, DRAIN_TIMEOUT_MS + STOP_GRACE_MS);
  }

  #send(worker: Worker, message: ToWorker): void {
    if (!worker.isConnected()) return;
    worker.send(message, undefined, (err: Error | null) => {
      if (err !== null) this.#logger.warn({ err, worker_pid: worker.process.pid }, 'could not reach a worker');
    });
  }

  #alive(): Worker[] {
    return this.#slots.flatMap((s) => (s.worker !== undefined ? [s.worker] : []));
  }

  #killAll(): void {
    for (const worker of this.#alive()) {
      try {
        worker.process.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  #finish(code: number, err?: Error): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    process.off('SIGTERM', this.#onSignal);
    process.off('SIGINT', this.#onSignal);
    if (this.#stopTimer !== undefined) clearTimeout(this.#stopTimer);
    for (const slot of this.#slots) if (slot.restartTimer !== undefined) clearTimeout(slot.restartTimer);
    if (err !== undefined) {
      this.#reject(err);
      return;
    }
    this.#logger.info({ exit_code: code }, 'portcullis stopped (all workers)');
    this.#resolve(code);
  }
}

/** The banner with `line` after its `listening:` line (at the end when there is none). */
function withWorkersLine(banner: string, line: string): string {
  const match = /^ {2}listening: .*\n/m.exec(banner);
  if (match === null) return `${banner}${line}\n`;
  const at = match.index + match[0].length;
  return `${banner.slice(0, at)}${line}\n${banner.slice(at)}`;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
}

function isFromWorker(message: unknown): message is FromWorker {
  if (typeof message !== 'object' || message === null) return false;
  const type = (message as { type?: unknown }).type;
  return type === 'portcullis:hello' || type === 'portcullis:listening' || type === 'portcullis:failed';
}

function isToWorker(message: unknown): message is ToWorker {
  if (typeof message !== 'object' || message === null) return false;
  const type = (message as { type?: unknown }).type;
  return type === 'portcullis:start' || type === 'portcullis:stop';
}

// -------------------------------------------------------------------------------------------------
// Worker side

function runWorker(): void {
  delete process.env[WORKER_MARK];
  let state: 'waiting' | 'starting' | 'running' | 'stopping' = 'waiting';
  let stopWanted = false;
  let running: RunningServer | undefined;
  let logger: Logger | undefined;

  const send = (message: FromWorker): Promise<void> =>
    new Promise((resolveSend) => {
      if (process.send === undefined || !process.connected) return resolveSend();
      process.send(message, undefined, {}, () => resolveSend());
    });

  const stop = (): void => {
    stopWanted = true;
    if (state === 'waiting') process.exit(0);
    if (state !== 'running' || running === undefined) return; // starting: it stops once it listens
    state = 'stopping';
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger?.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };

  const start = async (message: StartMessage): Promise<void> => {
    if (state !== 'waiting') return;
    state = 'starting';
    logger = createServerLogger({ level: message.config.logLevel });
    let banner = '';
    try {
      running = await startServer(message.config, {
        logger,
        printBanner: message.first,
        write: (text) => {
          banner += text;
        },
        ...(message.demoFlow !== undefined ? { demoFlow: message.demoFlow } : {}),
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      await send({ type: 'portcullis:failed', message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) });
      process.exit(1);
    }
    state = 'running';
    const { port } = running.server.address() as AddressInfo;
    const listening: FromWorker = { type: 'portcullis:listening', port, issuer: running.portcullis.issuer, banner };
    if (running.demoFlow !== undefined) listening.demoFlow = running.demoFlow;
    await send(listening);
    if (stopWanted) stop();
  };

  // A terminal's Ctrl-C reaches every process of the group: the primary decides, and tells us.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', stop);
  process.on('message', (message: unknown) => {
    if (!isToWorker(message)) return;
    if (message.type === 'portcullis:stop') stop();
    else void start(message);
  });
  void send({ type: 'portcullis:hello' });
}

if (cluster.isWorker && process.env[WORKER_MARK] === '1' && isEntryModule(import.meta.url)) runWorker();
