/**
 * `portcullis start --workers N` as real processes: a primary (node:cluster) and its workers on a
 * fresh SQLite file. Which worker answered a request is read from the process tree, never from
 * the response: the server end of the test's TCP connection (/proc/net/tcp) is a socket that one
 * worker holds among its file descriptors (/proc/<pid>/fd).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { basic, cleanup, runCli, spawnCli, stop, tempDir } from './helpers.js';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 60_000;
const SVC = { id: 'svc', secret: 'svc-secret-0123456789-abcdefghijklmnopqrstuvwxyz' };
const DEMO_WEB_SECRET = 'demo-web-secret-0123456789-abcdefghijklmnopqrstu';

/** Every worker pid seen, killed by PID in `after` should one outlive its primary. */
const seenWorkers = new Set<number>();
after(() => {
  for (const pid of seenWorkers) {
    if (!isAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  cleanup();
});

// -------------------------------------------------------------------------------------------------
// processes

/** A started `portcullis start --workers …`: its output so far, and waits on it. */
class Primary {
  stdout = '';
  stderr = '';
  readonly child: ChildProcess;

  constructor(args: string[], cwd: string, env: Record<string, string>) {
    this.child = spawnCli(args, { cwd, env });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The JSON log lines (pino) printed so far. */
  logs(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Wait until `check` returns a value (polled), failing with the output when it takes too long or the process exits. */
  async waitFor<T>(what: string, check: () => T | undefined, timeoutMs = START_TIMEOUT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the primary exited (${this.child.exitCode ?? this.child.signalCode}) while waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await sleep(25);
    }
  }

  waitForLog(msg: string, match: (line: Record<string, unknown>) => boolean = () => true, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.waitFor(`the log line "${msg}"`, () => this.logs().find((l) => l.msg === msg && match(l)), timeoutMs);
  }

  /** The worker processes: children of the primary running the cluster entry (tsx's esbuild service is a child too). */
  workers(): number[] {
    const pids = childrenOf(this.pid).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.endsWith(join('src', 'server', 'cluster.ts')));
      } catch {
        return false;
      }
    });
    for (const pid of pids) seenWorkers.add(pid);
    return pids;
  }
}

function childrenOf(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state, fields[1] the parent pid.
      if (Number(fields[1]) === parent && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

/** Running (not gone, not a zombie waiting for its parent). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// -------------------------------------------------------------------------------------------------
// HTTP over one TCP connection at a time

interface Reply {
  status: number;
  body: string;
}

/** One keep-alive TCP connection to the server (each request on it reuses it). */
class Connection {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1 });
  localPort: number | undefined;

  constructor(readonly port: number) {}

  send(method: string, path: string, options: { headers?: Record<string, string>; form?: Record<string, string> } = {}): Promise<Reply> {
    const body = options.form === undefined ? undefined : new URLSearchParams(options.form).toString();
    const headers: Record<string, string | number> = { ...options.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = Buffer.byteLength(body);
    }
    return new Promise((resolve, reject) => {
      const req = request({ host: HOST, port: this.port, method, path, headers, agent: this.#agent, timeout: 10_000 }, (res) => {
        const localPort = res.socket.localPort;
        if (this.localPort === undefined) this.localPort = localPort;
        else if (localPort !== this.localPort) reject(new Error('the request did not reuse the connection'));
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** The worker holding the server end of this connection: the socket inode from /proc/net/tcp, found among the workers' fds. */
function ownerOf(connection: Connection, workers: readonly number[]): number {
  assert.ok(connection.localPort !== undefined, 'the connection was used');
  const hexPort = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');
  const local = `0100007F:${hexPort(connection.port)}`;
  const remote = `0100007F:${hexPort(connection.localPort)}`;
  const row = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[1] === local && fields[2] === remote);
  assert.ok(row !== undefined, `the server end of 127.0.0.1:${connection.localPort} → ${connection.port} is in /proc/net/tcp`);
  const socket = `socket:[${row[9]}]`;
  const owners = workers.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === socket;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
  assert.equal(owners.length, 1, `exactly one worker holds ${socket} (workers ${workers.join(', ')}; holders ${owners.join(', ')})`);
  return owners[0]!;
}

/** A fresh connection whose worker satisfies `wanted` (asked with GET /healthz), trying up to 12 connections. */
async function connectionTo(port: number, workers: readonly number[], wanted: (pid: number) => boolean): Promise<{ connection: Connection; pid: number }> {
  const seen: number[] = [];
  for (let i = 0; i < 12; i++) {
    const connection = new Connection(port);
    const health = await connection.send('GET', '/healthz');
    assert.equal(health.status, 200);
    const pid = ownerOf(connection, workers);
    if (wanted(pid)) return { connection, pid };
    seen.push(pid);
    connection.close();
  }
  throw new Error(`no connection reached the wanted worker (reached ${seen.join(', ')})`);
}

async function clientCredentials(connection: Connection): Promise<{ status: number; token: string; body: string }> {
  const res = await connection.send('POST', '/token', { headers: { authorization: basic(SVC.id, SVC.secret) }, form: { grant_type: 'client_credentials' } });
  const token = res.status === 200 ? ((JSON.parse(res.body) as { access_token: string }).access_token) : '';
  return { status: res.status, token, body: res.body };
}

async function introspect(connection: Connection, token: string): Promise<Record<string, unknown>> {
  const res = await connection.send('POST', '/introspect', { headers: { authorization: basic(SVC.id, SVC.secret) }, form: { token } });
  assert.equal(res.status, 200, `introspection: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as Record<string, unknown>;
}

/** A POST /token whose body is only half sent: in flight until `finish()`. */
function inFlightToken(port: number): { finish: () => void; response: Promise<number> } {
  const body = 'grant_type=client_credentials';
  let finish = (): void => undefined;
  const response = new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: HOST,
        port,
        method: 'POST',
        path: '/token',
        headers: { authorization: basic(SVC.id, SVC.secret), 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length },
        timeout: 20_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the in-flight request timed out')));
    req.on('error', reject);
    req.write(body.slice(0, 5));
    finish = () => req.end(body.slice(5));
  });
  return { finish: () => finish(), response };
}

// -------------------------------------------------------------------------------------------------

/** A temp dir with a config file (a client_credentials client, and demo-web so the demo pages are on) and a fresh SQLite path. */
function project(): { cwd: string; env: Record<string, string> } {
  const cwd = tempDir('portcullis-workers-');
  writeFileSync(
    join(cwd, 'portcullis.config.json'),
    JSON.stringify({
      clients: [
        { client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read' },
        {
          client_id: 'demo-web',
          client_secret: DEMO_WEB_SECRET,
          grant_types: ['authorization_code'],
          // A loopback redirect URI matches on any port (RFC 8252 §7.3): the demo pages are on whatever port 0 picks.
          redirect_uris: ['http://127.0.0.1/demo/callback'],
          scope: 'openid profile email',
        },
      ],
    }),
  );
  // Round-robin (node:cluster's default on Linux), pinned so that fresh connections alternate between workers.
  return { cwd, env: { DATABASE_URL: `sqlite:${join(cwd, 'data', 'portcullis.db')}`, NODE_CLUSTER_SCHED_POLICY: 'rr' } };
}

describe('portcullis start --workers 2 on one SQLite file', () => {
  let primary: Primary;
  let port: number;
  let workers: number[];

  before(async () => {
    const { cwd, env } = project();
    primary = new Primary(['start', '--port', '0', '--workers', '2'], cwd, env);
    const listening = await primary.waitFor('the banner', () => /^ {2}listening: +http:\/\/127\.0\.0\.1:(\d+)$/m.exec(primary.stdout) ?? undefined);
    port = Number(listening[1]);
    await primary.waitForLog('all workers listening');
    workers = primary.workers();
  });

  after(async () => {
    if (primary.child.exitCode === null && primary.child.signalCode === null) await stop(primary.child, 'SIGKILL');
  });

  test('the banner names 2 workers, and the primary has two worker processes', () => {
    assert.match(primary.stdout, /^ {2}workers: +2 \(node:cluster processes sharing this port; primary pid \d+\)$/m);
    assert.equal(primary.stdout.match(/Portcullis authorization server is running/g)?.length, 1, 'one banner, from worker 1');
    assert.equal(workers.length, 2, `workers: ${workers.join(', ')}`);
    assert.ok(!workers.includes(primary.pid));
  });

  test('with port 0 every worker listens on the one random port', () => {
    const reported = primary.logs().filter((l) => l.msg === 'worker listening').map((l) => l.port);
    assert.deepEqual(reported, [port, port]);
  });

  test('tokens come from the shared port, answered by more than one worker over fresh connections', async () => {
    const answered = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const connection = new Connection(port);
      const res = await clientCredentials(connection);
      assert.equal(res.status, 200, res.body);
      answered.add(ownerOf(connection, workers));
      connection.close();
    }
    assert.deepEqual([...answered].sort((a, b) => a - b), workers);
  });

  test('a token issued by one worker is active when introspected through another, and revoked through another', async () => {
    const tokens: { token: string; issuer: number }[] = [];
    for (let i = 0; i < 20; i++) {
      const connection = new Connection(port);
      const res = await clientCredentials(connection);
      assert.equal(res.status, 200, res.body);
      tokens.push({ token: res.token, issuer: ownerOf(connection, workers) });
      connection.close();
    }
    for (const { token, issuer } of tokens) {
      const { connection } = await connectionTo(port, workers, (pid) => pid !== issuer);
      const claims = await introspect(connection, token);
      connection.close();
      assert.equal(claims.active, true);
      assert.equal(claims.client_id, SVC.id);
    }
    const { token, issuer } = tokens[0]!;
    const other = await connectionTo(port, workers, (pid) => pid !== issuer);
    const revoked = await other.connection.send('POST', '/revoke', { headers: { authorization: basic(SVC.id, SVC.secret) }, form: { token } });
    other.connection.close();
    assert.equal(revoked.status, 200);
    const back = await connectionTo(port, workers, (pid) => pid === issuer);
    assert.deepEqual(await introspect(back.connection, token), { active: false });
    back.connection.close();
  });

  test('every worker answers /demo/callback with the sign-in flow of the banner', async () => {
    const state = /[?&]state=([^&\s]+)/.exec(primary.stdout)?.[1];
    const verifier = /code_verifier: +(\S+)/.exec(primary.stdout)?.[1];
    assert.ok(state !== undefined && verifier !== undefined, 'the banner has a sign-in link and its code_verifier');
    for (const pid of workers) {
      const { connection } = await connectionTo(port, workers, (p) => p === pid);
      const page = await connection.send('GET', `/demo/callback?code=the-code&state=${state}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.includes(`code_verifier=${verifier}`), `worker ${pid} shows the banner's code_verifier`);
      const other = await connection.send('GET', '/demo/callback?code=the-code&state=another-state');
      assert.ok(!other.body.includes(verifier), `worker ${pid} shows no verifier for another state`);
      connection.close();
    }
  });

  test('a worker killed with SIGKILL is replaced within seconds, and requests keep succeeding', async () => {
    const [victim, survivor] = workers as [number, number];
    process.kill(victim, 'SIGKILL');
    // Reaped by the primary: it knows the worker is gone.
    await until('the killed worker to be reaped', () => (existsSync(`/proc/${victim}`) ? undefined : true), 5000);
    await sleep(200);
    for (let i = 0; i < 4; i++) {
      const connection = new Connection(port);
      const res = await clientCredentials(connection);
      assert.equal(res.status, 200, res.body);
      connection.close();
    }
    const replacement = await until(
      'a replacement worker',
      () => {
        const now = primary.workers();
        return now.length === 2 && now.includes(survivor) && !now.includes(victim) ? now.find((p) => p !== survivor) : undefined;
      },
      10_000,
    );
    await primary.waitForLog('worker listening', (l) => l.worker_pid === replacement, 20_000);
    const died = primary.logs().find((l) => l.msg === 'worker died; replacing it');
    assert.equal(died?.worker_pid, victim);
    assert.equal(died?.signal, 'SIGKILL');
    workers = primary.workers();
    const { connection } = await connectionTo(port, workers, (pid) => pid === replacement);
    const res = await clientCredentials(connection);
    connection.close();
    assert.equal(res.status, 200, res.body);
  });

  test('SIGTERM to the primary drains the in-flight request, stops every worker and exits 0', async () => {
    const everyWorker = primary.workers();
    assert.equal(everyWorker.length, 2);
    const inFlight = inFlightToken(port);
    await sleep(300);
    const exited = stop(primary.child, 'SIGTERM', 20_000);
    await primary.waitForLog('shutting down: every worker finishes its in-flight requests', () => true, 5000);
    await sleep(200);
    inFlight.finish();
    assert.equal(await inFlight.response, 200, 'the request in flight was answered');
    const { code, signal } = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, primary.stdout.slice(-2000));
    for (const pid of everyWorker) assert.equal(isAlive(pid), false, `worker ${pid} is gone`);
    assert.equal(childrenOf(primary.pid).length, 0);
  });
});

describe('portcullis start with PORTCULLIS_WORKERS=1', () => {
  test('one worker runs under a primary; its replacement keeps the port 0 picked; Ctrl-C reaching the worker is left to the primary; a second signal exits 1 at once', async () => {
    const { cwd, env } = project();
    const primary = new Primary(['start', '--port', '0'], cwd, { ...env, PORTCULLIS_WORKERS: '1' });
    const listening = await primary.waitFor('the banner', () => /^ {2}listening: +http:\/\/127\.0\.0\.1:(\d+)$/m.exec(primary.stdout) ?? undefined);
    const port = Number(listening[1]);
    assert.match(primary.stdout, /^ {2}workers: +1 \(node:cluster/m);
    await primary.waitForLog('all workers listening');
    const [first] = primary.workers();
    assert.ok(first !== undefined);

    // The only worker dies: the shared handle closes with it, and the replacement must get the same port (the issuer names it).
    process.kill(first, 'SIGKILL');
    const replaced = await primary.waitForLog('worker listening', (l) => l.worker_pid !== first, 20_000);
    assert.equal(replaced.port, port);
    const [worker] = primary.workers();
    assert.ok(worker !== undefined && worker === replaced.worker_pid);
    const discovery = new Connection(port);
    const metadata = await discovery.send('GET', '/.well-known/openid-configuration');
    discovery.close();
    assert.equal((JSON.parse(metadata.body) as { issuer: string }).issuer, `http://127.0.0.1:${port}`);

    // A terminal sends Ctrl-C to the whole process group: the worker leaves it to the primary.
    process.kill(worker, 'SIGINT');
    await sleep(500);
    assert.ok(isAlive(worker), 'the worker ignores SIGINT');
    const connection = new Connection(port);
    assert.equal((await clientCredentials(connection)).status, 200);
    assert.equal(ownerOf(connection, [worker]), worker);
    connection.close();

    const stalled = inFlightToken(port);
    stalled.response.catch(() => undefined); // never finished: the connection is cut
    await sleep(300);
    const exited = stop(primary.child, 'SIGINT', 5000);
    await primary.waitForLog('shutting down: every worker finishes its in-flight requests', () => true, 5000);
    await sleep(300);
    assert.equal(primary.child.exitCode, null, 'the primary waits for the request in flight');
    primary.child.kill('SIGINT');
    const { code } = await exited;
    assert.equal(code, 1);
    await until('the worker to be gone', () => (isAlive(worker) ? undefined : true), 3000);
    assert.ok(primary.logs().some((l) => l.msg === 'second signal: killing the workers without waiting for in-flight requests'));
  });
});

describe('portcullis start --workers: refused settings', () => {
  const cwd = tempDir('portcullis-workers-bad-');
  const env = { DATABASE_URL: `sqlite:${join(cwd, 'portcullis.db')}` };

  test('start --help lists --workers', async () => {
    const res = await runCli(['start', '--help'], { cwd, env });
    assert.equal(res.code, 0);
    assert.match(res.stdout, /--workers <n> +worker processes sharing the port, 1 to 64, or auto/);
  });

  for (const value of ['0', 'abc', '65', '1.5', '']) {
    test(`--workers ${JSON.stringify(value)} exits 1 naming the option`, async () => {
      const res = await runCli(['start', '--port', '0', '--workers', value], { cwd, env });
      assert.equal(res.code, 1);
      assert.equal(res.stdout, '');
      assert.equal(res.stderr, `portcullis: --workers: must be an integer from 1 to 64, or auto (one per CPU) (got ${JSON.stringify(value)})\n`);
    });
  }

  test('PORTCULLIS_WORKERS is checked the same way, and --workers wins over it', async () => {
    const fromEnv = await runCli(['start', '--port', '0'], { cwd, env: { ...env, PORTCULLIS_WORKERS: 'many' } });
    assert.equal(fromEnv.code, 1);
    assert.match(fromEnv.stderr, /^portcullis: PORTCULLIS_WORKERS: must be an integer from 1 to 64, or auto/);
    const flagWins = await runCli(['start', '--port', '0', '--workers', '0'], { cwd, env: { ...env, PORTCULLIS_WORKERS: '2' } });
    assert.equal(flagWins.code, 1);
    assert.match(flagWins.stderr, /^portcullis: --workers: must be an integer/);
  });

  for (const url of ['sqlite::memory:', 'memory:']) {
    test(`--workers 2 with DATABASE_URL=${url} exits 1: every worker would have its own database`, async () => {
      const res = await runCli(['start', '--port', '0', '--workers', '2'], { cwd, env: { DATABASE_URL: url } });
      assert.equal(res.code, 1);
      assert.equal(res.stdout, '');
      assert.match(res.stderr, new RegExp(`^portcullis: --workers: DATABASE_URL ${url.replace(/[.:]/g, '\\$&')} keeps everything in memory, so every worker would have its own database`));
    });
  }

  test('worker 1 failing before it listens (port in use) ends the primary with its error, and no other worker is forked', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, HOST, resolve));
    const takenPort = (taken.address() as { port: number }).port;
    try {
      const res = await runCli(['start', '--port', String(takenPort), '--workers', '2'], { cwd, env, timeoutMs: START_TIMEOUT_MS });
      assert.equal(res.code, 1, res.stdout + res.stderr);
      assert.match(res.stderr, new RegExp(`^portcullis: cannot listen on 127\\.0\\.0\\.1:${takenPort}: the address is already in use`));
      assert.doesNotMatch(res.stdout, /Portcullis authorization server is running/);
      const pids = new Set(
        res.stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => (JSON.parse(l) as { pid: number }).pid),
      );
      assert.equal(pids.size, 2, `log lines from the primary and worker 1 only: ${[...pids].join(', ')}`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
