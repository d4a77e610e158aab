/** Helpers for the server and CLI tests: temp dirs and tracked `portcullis` subprocesses. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
/** tsx by absolute URL, so the CLI runs from any cwd. */
export const TSX = import.meta.resolve('tsx');

const children = new Set<ChildProcess>();
const dirs: string[] = [];

export function tempDir(prefix = 'portcullis-cli-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Kill every child still running (by PID) and remove the temp dirs. Call from `after`. */
export function cleanup(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The environment of a child: the parent's, minus anything that would configure Portcullis. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(PORTCULLIS_|PORT$|HOST$|DATABASE_URL$|LOG_LEVEL$|DEBUG$|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn `node --import tsx src/cli/main.ts …`, tracked so that `cleanup` can kill it. */
export function spawnCli(args: string[], options: { cwd: string; env: Record<string, string>; stdin?: 'ignore' | 'pipe' }): ChildProcess {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Run the CLI to completion (killed after `timeoutMs`). */
export function runCli(
  args: string[],
  options: { cwd: string; env: Record<string, string>; input?: string; timeoutMs?: number },
): Promise<CliResult> {
  const child = spawnCli(args, { cwd: options.cwd, env: options.env, stdin: options.input === undefined ? 'ignore' : 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (options.input !== undefined) child.stdin!.end(options.input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`portcullis ${args.join(' ')} did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Collect a child's stdout and wait until it contains a match of `pattern`. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<{ match: RegExpMatchArray; output: () => string; errors: () => string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output matching ${pattern} in time\nstdout: ${stdout}\nstderr: ${stderr}`)), timeoutMs);
    const onData = (d: string): void => {
      stdout += d;
      const match = stdout.match(pattern);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ match, output: () => stdout, errors: () => stderr });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the process exited (code ${code}) before printing ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/** Send `signal` and wait for the exit; rejects if it takes longer than `timeoutMs`. */
export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, ms: 0 });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`the process did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, ms: Date.now() - started });
    });
    child.kill(signal);
  });
}

/** The protected header of a compact JWS. */
export function jwtHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}
