/**
 * Start the ready-to-run server as the README does (`node --import tsx src/cli/main.ts start`),
 * as a child process on 127.0.0.1, with a fresh SQLite data directory and a config file written
 * for the test. Every child is tracked and killed in an `after` hook (and on process exit), even
 * when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 30_000;
const KILL_AFTER_MS = 5_000;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** The config file's content, built from the address the server will listen on. */
  config: (where: { issuer: string; port: number }) => Record<string, unknown>;
  /** Extra environment variables (override the defaults below). */
  env?: Record<string, string>;
}

export interface SpawnedServer {
  /** The issuer the server printed in its banner. */
  readonly issuer: string;
  /** Where it listens (from the banner), e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly port: number;
  /** The pid of the current process (changes on restart). */
  readonly pid: number;
  readonly dataDir: string;
  readonly configPath: string;
  readonly databaseUrl: string;
  /** Everything the server wrote on stdout / stderr so far (over all its runs). */
  readonly stdout: string;
  readonly stderr: string;
  /** SIGTERM, wait for the exit, SIGKILL after 5 s. Resolves with how the process ended. */
  stop(): Promise<ExitInfo>;
  /** Stop, then start again on the same port, data directory and config file. */
  restart(): Promise<SpawnedServer>;
}

const children = new Set<ChildProcess>();
const dataDirs = new Set<string>();

/** Kill every server this process started (SIGTERM, then SIGKILL) and remove their data directories. */
export async function killAllServers(): Promise<void> {
  await Promise.all([...children].map((child) => terminate(child)));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  dataDirs.clear();
}

after(killAllServers);
process.on('exit', () => {
  for (const child of children) if (isRunning(child)) child.kill('SIGKILL');
});

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

export async function spawnServer(options: SpawnOptions): Promise<SpawnedServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-'));
  dataDirs.add(dataDir);
  const configPath = join(dataDir, 'portcullis.config.json');
  const databaseUrl = `sqlite:${join(dataDir, 'db.sqlite')}`;
  const out = { stdout: '', stderr: '' };

  let port = 0;
  let current: Launched | undefined;
  for (let attempt = 1; current === undefined; attempt++) {
    port = await freePort();
    writeFileSync(configPath, JSON.stringify(options.config({ issuer: `http://${HOST}:${port}`, port }), null, 2));
    try {
      current = await launch({ port, configPath, databaseUrl, env: options.env ?? {}, out });
    } catch (err) {
      // Someone took the port between the probe and the listen: pick another one.
      if (!(err instanceof PortInUseError) || attempt >= 5) throw err;
    }
  }

  let running: Launched = current;
  const handle: SpawnedServer = {
    get issuer() {
      return running.issuer;
    },
    get url() {
      return running.url;
    },
    port,
    get pid() {
      return running.child.pid!;
    },
    dataDir,
    configPath,
    databaseUrl,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    stop: () => terminate(running.child),
    async restart() {
      await terminate(running.child);
      for (let attempt = 1; ; attempt++) {
        try {
          running = await launch({ port, configPath, databaseUrl, env: options.env ?? {}, out });
          return handle;
        } catch (err) {
          // The old socket may linger for a moment: try the same port again.
          if (!(err instanceof PortInUseError) || attempt >= 20) throw err;
          await sleep(250);
        }
      }
    },
  };
  return handle;
}

interface Launched {
  child: ChildProcess;
  issuer: string;
  url: string;
}

class PortInUseError extends Error {}

async function launch(input: {
  port: number;
  configPath: string;
  databaseUrl: string;
  env: Record<string, string>;
  out: { stdout: string; stderr: string };
}): Promise<Launched> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Nothing from the test runner's environment may change the server's configuration.
  for (const key of Object.keys(env)) {
    if (key.startsWith('PORTCULLIS_') || key === 'NODE_TEST_CONTEXT' || key === 'NODE_OPTIONS' || key === 'DEBUG') delete env[key];
  }
  Object.assign(env, {
    PORT: String(input.port),
    HOST,
    DATABASE_URL: input.databaseUrl,
    PORTCULLIS_CONFIG: input.configPath,
    LOG_LEVEL: 'warn',
    ...input.env,
  });

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    input.out.stdout += chunk;
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    input.out.stderr += chunk;
  });

  const deadline = Date.now() + START_TIMEOUT_MS;
  const failure = (why: string): Error => {
    const text = `portcullis server ${why}\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`;
    return /already in use/.test(stderr) ? new PortInUseError(text) : new Error(text);
  };
  try {
    // 1. The banner names the issuer and the listening URL.
    let issuer: string | undefined;
    let url: string | undefined;
    while (issuer === undefined || url === undefined) {
      if (!isRunning(child)) throw failure(`exited before it was ready (${describeExit(child)})`);
      if (Date.now() > deadline) throw failure(`did not print its issuer within ${START_TIMEOUT_MS / 1000} s`);
      issuer = /^\s*issuer:\s+(\S+)\s*$/m.exec(stdout)?.[1];
      url = /^\s*listening:\s+(\S+)\s*$/m.exec(stdout)?.[1];
      if (issuer === undefined || url === undefined) await sleep(25);
    }
    const listening = new URL(url);
    if (listening.hostname !== HOST || listening.port !== String(input.port)) {
      throw failure(`listens on ${url}, not on ${HOST}:${input.port}`);
    }
    // 2. /healthz answers 200.
    for (;;) {
      if (!isRunning(child)) throw failure(`exited before /healthz answered (${describeExit(child)})`);
      if (Date.now() > deadline) throw failure(`/healthz did not answer 200 within ${START_TIMEOUT_MS / 1000} s`);
      try {
        const res = await fetch(`http://${HOST}:${input.port}/healthz`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not yet
      }
      await sleep(50);
    }
    return { child, issuer, url };
  } catch (err) {
    await terminate(child);
    throw err;
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function describeExit(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${String(child.exitCode)}`;
}

/** SIGTERM, wait for the exit; SIGKILL when it has not exited after 5 s. */
function terminate(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolveExit) => {
    const done = (): void => resolveExit({ code: child.exitCode, signal: child.signalCode });
    if (!isRunning(child)) return done();
    const timer = setTimeout(() => {
      if (isRunning(child)) child.kill('SIGKILL');
    }, KILL_AFTER_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      children.delete(child);
      done();
    });
    child.kill('SIGTERM');
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
