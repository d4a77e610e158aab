#!/usr/bin/env node
/**
 * `npm run bench`: Portcullis against oidc-provider, @jmondi/oauth2-server and bare node:http
 * limits, in one run on one machine. See docs/performance.md for the method; `--help` for options.
 *
 * Each target runs in its own process on 127.0.0.1 (a random free port); the load comes from a
 * separate process (bench/lib/load.mjs, autocannon). Targets are interleaved round by round
 * (A B C … A B C …). Two modes: shared (nothing pinned) and pinned (server `taskset -c 0`, load
 * generator `taskset -c 1`). Every child is killed by PID on exit, on SIGINT/SIGTERM and on errors.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, type as osType } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { basic, createIdentities } from './lib/clients.mjs';
import {
  CODE_SCOPE,
  REFRESH_BODY_TEMPLATE,
  REFRESH_SCOPE,
  codeBody,
  codeBodyTemplate,
  growDatabase,
  login,
  mintCodes,
  preparePortcullis,
  redeemCodes,
  baseEnv,
} from './lib/portcullis.mjs';
import {
  cpuMicros,
  freePort,
  hasTaskset,
  installCleanup,
  machineMicros,
  peakRssBytes,
  resetPeakRss,
  rssBytes,
  spawnChild,
  stopChild,
  tail,
  waitReady,
} from './lib/proc.mjs';
import {
  DEFAULT_PG_URL,
  backendMicros,
  backendPids,
  backendSnapshot,
  connect as pgConnect,
  databaseUrl,
  describeServer,
  dropSchemas,
  dropSchemasSync,
  growPostgres,
  schemaExists,
  schemaName,
} from './lib/postgres.mjs';
import { consoleTable, evaluateGoals, findRow, growthMarkdown, markdown, median, ratio, slope, summarize } from './lib/report.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH_DIR);
/** The package's bin (package.json "bin"), built before the run. */
const PORTCULLIS_BIN = join(ROOT, 'dist', 'cli', 'main.js');
const DOC = join(ROOT, 'docs', 'performance.md');
const START_MARK = '<!-- bench:start -->';
const END_MARK = '<!-- bench:end -->';
const GROWTH_START = '<!-- growth:start -->';
const GROWTH_END = '<!-- growth:end -->';

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: node bench/run.mjs [options]      (npm run bench -- [options])

  --duration S        measured seconds per run (default 10)
  --warmup S          warm-up seconds per run, discarded (default 3)
  --rounds N          rounds; targets are interleaved round by round (default 3)
  --mode M            shared | pinned | both (default both)
  --connections N     autocannon connections (default 10)
  --workloads a,b     ${'cc-jwt, cc-opaque, refresh, code, introspect-jwt, introspect-opaque, jwks'} (default all; "none" for none)
  --targets x,y       portcullis, oidc-provider, jmondi-es256, jmondi-hs256, limit, limit-coalesced, floor (default all)
  --memory            also: ${'60'} s of client_credentials on Portcullis, RSS sampled every second
  --memory-duration S length of that run (default 60)
  --growth            also: refresh and introspection with 1,000,000 refresh tokens in the database
  --growth-rows N     rows for --growth (default 1000000)
  --storage S         sqlite | postgres: the database of the Portcullis targets (default sqlite).
                      postgres: every server gets a fresh schema bench_<timestamp>_<target>_<mode>
                      in --pg-url, dropped at the end of the run
  --pg-url URL        PostgreSQL for --storage postgres (default $BENCH_PG_URL or
                      ${DEFAULT_PG_URL})
  --workers N         also: Portcullis with --workers 1 and --workers N (skipped when the server lacks it)
  --baseline DIR      also run the Portcullis of another checkout (DIR/dist/cli/main.js, built
                      there first) as 'portcullis-base', interleaved with this one: an A/B of a
                      change in one run. Implies --no-docs
  --no-docs           do not write docs/performance.md (the results section is rewritten by SQLite
                      runs that measure more than --growth's workloads; the storage-scale section,
                      per backend, by every --growth run)
  --max-minutes M     stop everything after M minutes (default: 3× the estimate + 10)
  --dry-run           print the plan and the estimated wall time, run nothing
  -h, --help
`;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'both' },
    connections: { type: 'string', default: '10' },
    workloads: { type: 'string' },
    targets: { type: 'string' },
    memory: { type: 'boolean', default: false },
    'memory-duration': { type: 'string', default: '60' },
    growth: { type: 'boolean', default: false },
    'growth-rows': { type: 'string', default: '1000000' },
    storage: { type: 'string', default: 'sqlite' },
    'pg-url': { type: 'string' },
    workers: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'max-minutes': { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

/** A URL without its password (for logs and the docs). */
function redact(url) {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.href;
  } catch {
    return '(not a URL)';
  }
}

function positive(name, value, { integer = false, min = 0 } = {}) {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    process.stderr.write(`bench: --${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}\n`);
    process.exit(2);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Targets and workloads

const TARGETS = {
  portcullis: { label: 'Portcullis', kind: 'portcullis', health: '/healthz', introspect: '/introspect', jwks: '/jwks' },
  'portcullis-1m': { label: 'Portcullis +1M', kind: 'portcullis', grown: true, health: '/healthz', introspect: '/introspect', jwks: '/jwks' },
  'portcullis-base': { label: 'Portcullis (baseline)', kind: 'portcullis', health: '/healthz', introspect: '/introspect', jwks: '/jwks' },
  'oidc-provider': { label: 'oidc-provider', script: 'targets/oidc-provider.mjs', health: '/jwks', introspect: '/token/introspection', jwks: '/jwks' },
  'jmondi-es256': { label: '@jmondi ES256', script: 'targets/jmondi.mjs', env: { BENCH_ALG: 'ES256' }, health: '/', alg: 'ES256' },
  'jmondi-hs256': { label: '@jmondi HS256', script: 'targets/jmondi.mjs', env: { BENCH_ALG: 'HS256' }, health: '/', alg: 'HS256' },
  limit: { label: 'limit', script: 'targets/limit.mjs', health: '/jwks', jwks: '/jwks' },
  'limit-coalesced': { label: 'limit, coalesced', script: 'targets/limit.mjs', env: { BENCH_COALESCE_WRITES: '1' }, health: '/jwks', jwks: '/jwks' },
  floor: { label: 'floor', script: 'targets/floor.mjs', health: '/', floor: true },
};

const WORKLOADS = [
  { name: 'cc-jwt', title: 'client_credentials, ES256 JWT', targets: ['portcullis', 'oidc-provider', 'jmondi-es256', 'jmondi-hs256', 'limit', 'limit-coalesced', 'floor'] },
  { name: 'cc-opaque', title: 'client_credentials, opaque token', targets: ['portcullis', 'oidc-provider'] },
  { name: 'refresh', title: 'refresh_token with rotation', targets: ['portcullis', 'portcullis-1m'] },
  { name: 'code', title: 'authorization_code redemption', targets: ['portcullis'] },
  { name: 'introspect-jwt', title: 'introspection of a JWT access token', targets: ['portcullis', 'portcullis-1m', 'oidc-provider'] },
  { name: 'introspect-opaque', title: 'introspection of an opaque access token', targets: ['portcullis', 'portcullis-1m', 'oidc-provider'] },
  { name: 'jwks', title: 'JWKS', targets: ['portcullis', 'oidc-provider', 'limit', 'limit-coalesced'] },
];
const PUBLIC_TARGETS = Object.keys(TARGETS).filter((t) => t !== 'portcullis-1m' && t !== 'portcullis-base');

function list(value, known, what) {
  if (value === undefined) return [...known];
  if (value.trim() === 'none') return [];
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!known.includes(n)) {
      process.stderr.write(`bench: unknown ${what} "${n}" (known: ${known.join(', ')})\n`);
      process.exit(2);
    }
  }
  return names;
}

const plan = {
  duration: positive('duration', args.duration, { min: 1 }),
  warmup: positive('warmup', args.warmup),
  rounds: positive('rounds', args.rounds, { integer: true, min: 1 }),
  connections: positive('connections', args.connections, { integer: true, min: 1 }),
  memoryDuration: positive('memory-duration', args['memory-duration'], { min: 5 }),
  growthRows: positive('growth-rows', args['growth-rows'], { integer: true, min: 1 }),
  workers: args.workers === undefined ? undefined : positive('workers', args.workers, { integer: true, min: 2 }),
  modes: { both: ['shared', 'pinned'], shared: ['shared'], pinned: ['pinned'] }[args.mode],
  labels: Object.fromEntries(Object.entries(TARGETS).map(([k, v]) => [k, v.label])),
  storage: args.storage,
  pgUrl: args['pg-url'] ?? process.env.BENCH_PG_URL ?? DEFAULT_PG_URL,
};
if (plan.modes === undefined) {
  process.stderr.write('bench: --mode must be shared, pinned or both\n');
  process.exit(2);
}
if (!['sqlite', 'postgres'].includes(plan.storage)) {
  process.stderr.write('bench: --storage must be sqlite or postgres\n');
  process.exit(2);
}
if (plan.storage === 'postgres') {
  try {
    if (!/^postgres(ql)?:$/.test(new URL(plan.pgUrl).protocol)) throw new Error('scheme');
  } catch {
    process.stderr.write('bench: --pg-url must be a postgres:// URL\n');
    process.exit(2);
  }
}
const STORAGE_LABEL = { sqlite: 'SQLite', postgres: 'PostgreSQL' }[plan.storage];
if (plan.storage !== 'sqlite') {
  TARGETS.portcullis.label = `Portcullis (${STORAGE_LABEL})`;
  TARGETS['portcullis-1m'].label = `Portcullis (${STORAGE_LABEL}) +1M`;
  plan.labels.portcullis = TARGETS.portcullis.label;
  plan.labels['portcullis-1m'] = TARGETS['portcullis-1m'].label;
}
const selectedTargets = list(args.targets, PUBLIC_TARGETS, 'target');
if (args.growth && selectedTargets.includes('portcullis')) selectedTargets.push('portcullis-1m');
/** --baseline: the other checkout's bin, run as 'portcullis-base' right after 'portcullis' in every workload. */
let BASELINE_BIN;
if (args.baseline !== undefined) {
  BASELINE_BIN = join(args.baseline, 'dist', 'cli', 'main.js');
  if (!existsSync(BASELINE_BIN)) {
    process.stderr.write(`bench: --baseline: ${BASELINE_BIN} is missing (run npm ci && npm run build there)\n`);
    process.exit(2);
  }
  args['no-docs'] = true;
  selectedTargets.push('portcullis-base');
  for (const w of WORKLOADS) if (w.targets.includes('portcullis')) w.targets.splice(w.targets.indexOf('portcullis') + 1, 0, 'portcullis-base');
}
plan.workloads = list(args.workloads, WORKLOADS.map((w) => w.name), 'workload')
  .map((name) => WORKLOADS.find((w) => w.name === name))
  .map((w) => ({ ...w, targets: w.targets.filter((t) => selectedTargets.includes(t)) }))
  .filter((w) => w.targets.length > 0);

const notes = { skipped: [], verified: 0 };

if (plan.modes.includes('pinned') && (cpus().length < 2 || !hasTaskset())) {
  const why = cpus().length < 2 ? 'this machine has one core' : 'taskset is missing (apt-get install -y util-linux)';
  notes.skipped.push({ target: 'all', workload: 'all', mode: 'pinned', reason: `pinned mode skipped: ${why}` });
  process.stderr.write(`bench: pinned mode skipped: ${why}\n`);
  plan.modes = plan.modes.filter((m) => m !== 'pinned');
  if (plan.modes.length === 0) process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Wall-time estimate and the overall deadline

function estimateSeconds() {
  // Measured on this harness: about 0.7 s per run besides the load (loader start, token minting).
  const perRun = plan.warmup + plan.duration + 0.7;
  const series = plan.workloads.reduce((n, w) => n + w.targets.length, 0);
  let s = series === 0 ? 0 : plan.modes.length * (20 + plan.rounds * series * perRun);
  // Minting codes before each code run: about a third of the run's requests per second of minting.
  if (plan.workloads.some((w) => w.name === 'code')) s += plan.modes.length * plan.rounds * (plan.warmup + plan.duration) * 1.3;
  if (args.memory) s += plan.warmup + plan.memoryDuration + 20;
  // Growth, measured here: SQLite about 25,000 rows/s; PostgreSQL (INSERT … SELECT, VACUUM, CHECKPOINT) about 40,000.
  if (args.growth) s += 60 + plan.growthRows / (plan.storage === 'postgres' ? 40_000 : 25_000);
  if (plan.workers !== undefined) s += 30 + plan.rounds * 2 * perRun;
  return s;
}
const estimate = estimateSeconds();
const maxMinutes = args['max-minutes'] === undefined ? (estimate * 3) / 60 + 10 : positive('max-minutes', args['max-minutes'], { min: 1 });
if (args['dry-run']) {
  process.stdout.write(`modes: ${plan.modes.join(', ')}; ${plan.rounds} round(s) of ${plan.warmup} s warm-up + ${plan.duration} s; ${plan.connections} connections\n`);
  process.stdout.write(`storage of the Portcullis targets: ${plan.storage}${plan.storage === 'postgres' ? ` (${redact(plan.pgUrl)}, fresh schemas, dropped at the end)` : ''}\n`);
  for (const w of plan.workloads) process.stdout.write(`  ${w.name.padEnd(18)} ${w.targets.join(', ')}\n`);
  if (args.memory) process.stdout.write(`  memory: ${plan.memoryDuration} s of cc-jwt on Portcullis\n`);
  if (args.growth) process.stdout.write(`  growth: ${plan.growthRows.toLocaleString('en-US')} refresh tokens\n`);
  if (plan.workers !== undefined) process.stdout.write(`  workers: 1 and ${plan.workers}\n`);
  process.stdout.write(`estimated wall time: ${Math.ceil(estimate / 60)} min (stops after ${Math.ceil(maxMinutes)} min at most)\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Run-wide state

installCleanup();
const deadline = setTimeout(() => {
  process.stderr.write(`\nbench: still running after ${maxMinutes.toFixed(0)} minutes (--max-minutes): stopping\n`);
  process.exit(1); // the exit handler kills every child by PID
}, maxMinutes * 60_000);
deadline.unref();

// Portcullis runs as its package installs it: the `portcullis` bin, compiled (dist/), not through tsx.
if (plan.workloads.some((w) => w.targets.includes('portcullis')) || args.memory || args.growth || plan.workers !== undefined) {
  log('building Portcullis (npm run build) …');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
}

const ids = createIdentities();
const workDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
process.on('exit', () => rmSync(workDir, { recursive: true, force: true }));
const runs = [];
const extra = { skipped: notes.skipped };
const started = new Date();

// --storage postgres: the schemas this run created (dropped at its end; on any other exit, by the
// exit handler below, which runs after proc.mjs has killed the servers), and one monitoring
// connection that finds each server's backends.
const pgSchemas = new Set();
const pgPrefix = `bench_${started.toISOString().replace(/\.\d+Z$/, '').replace(/\D/g, '')}`;
let pgMonitor;
process.on('exit', () => {
  if (pgSchemas.size === 0) return;
  const error = dropSchemasSync(plan.pgUrl, [...pgSchemas], pgPrefix);
  process.stderr.write(error === '' ? `bench: dropped schemas ${[...pgSchemas].join(', ')}\n` : `bench: could not drop schemas ${[...pgSchemas].join(', ')}: ${error}\n`);
});

function newSchema(...parts) {
  const schema = schemaName(pgPrefix, ...parts);
  pgSchemas.add(schema);
  return schema;
}

async function monitor() {
  pgMonitor ??= await pgConnect(plan.pgUrl, 'portcullis-bench-monitor');
  return pgMonitor;
}

function log(line) {
  process.stdout.write(`${line}\n`);
}

// ---------------------------------------------------------------------------------------------
// Starting and verifying targets

const startupWarningsShown = new Set();

/** Start one target (pinned to core 0 in pinned mode) and wait until it answers. */
async function startTarget(name, mode, { template, extraArgs = [] } = {}) {
  const spec = TARGETS[name] ?? TARGETS.portcullis;
  const port = await freePort();
  const pin = mode === 'pinned' ? 0 : undefined;
  const base = `http://127.0.0.1:${port}`;
  let entry;
  const state = { name, spec, base, port, mode };
  if (spec.kind === 'portcullis') {
    let pg;
    if (plan.storage === 'postgres') {
      // A fresh schema per server; the grown one is built once (buildGrownTemplate) and reused.
      const schema = template ?? newSchema(name, mode);
      const app = schemaName(pgPrefix, name, mode, 'app');
      pg = { schema, app, databaseUrl: databaseUrl(plan.pgUrl, schema, app) };
      state.pg = pg;
    }
    const prepared = preparePortcullis({ dir: workDir, name: `${name}-${mode}`, ids, port, template: pg === undefined ? template : undefined, pg });
    // BENCH_CPU_PROFILE_DIR=<dir>: write a V8 CPU profile of each Portcullis server there (on its exit).
    const profile = process.env.BENCH_CPU_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE_DIR}`] : [];
    const bin = name === 'portcullis-base' ? BASELINE_BIN : PORTCULLIS_BIN;
    entry = spawnChild(process.execPath, [...profile, bin, 'start', ...extraArgs], { env: prepared.env, cwd: ROOT, pin, name });
    state.dbFile = prepared.dbFile;
  } else {
    const env = { ...baseEnv(), ...(spec.env ?? {}), PORT: String(port), HOST: '127.0.0.1', BENCH_CLIENTS: JSON.stringify(ids) };
    entry = spawnChild(process.execPath, [join(BENCH_DIR, spec.script)], { env, cwd: BENCH_DIR, pin, name });
  }
  state.entry = entry;
  state.pid = entry.child.pid;
  await waitReady(`${base}${spec.health}`, entry, 90_000);
  const ready = entry.stdout.split('\n').find((l) => l.startsWith('{"ready"'));
  if (ready !== undefined) state.ready = JSON.parse(ready);
  // What a target printed on stderr at start (oidc-provider: "Unsupported runtime" on Node 20).
  const warnings = entry.stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 5);
  if (warnings.length > 0) {
    (extra.startupWarnings ??= {})[name] = warnings;
    if (!startupWarningsShown.has(name)) {
      startupWarningsShown.add(name);
      for (const w of warnings) log(`    ${name} says: ${w}`);
    }
  }
  return state;
}

async function http(state, method, path, { headers = {}, body } = {}) {
  const res = await fetch(`${state.base}${path}`, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const ccBody = () => `grant_type=client_credentials&scope=${encodeURIComponent(ids.scope)}&resource=${encodeURIComponent(ids.resource)}`;

async function clientCredentials(state, client, secret) {
  return http(state, 'POST', '/token', { headers: { ...FORM, authorization: basic(client, secret) }, body: ccBody() });
}

/** The target does not offer this at all (reported as such, not as a failure). */
class Unsupported extends Error {}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function refused(res) {
  return (res.status === 401 || res.status === 400) && res.json?.error === 'invalid_client';
}

/** Check a JWT access token: header, claims, and the signature against the target's keys. */
async function checkJwt(state, token, expectAlg) {
  const parts = token.split('.');
  check(parts.length === 3, `not a JWT: ${token.slice(0, 40)}…`);
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
  const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  check(header.alg === expectAlg, `alg ${header.alg}, expected ${expectAlg}`);
  check(typeof payload.exp === 'number' && payload.exp > Date.now() / 1000, 'exp missing or past');
  check(String(payload.scope ?? '').split(' ').includes(ids.scope), `scope ${payload.scope}`);
  let jwk;
  if (state.spec.jwks !== undefined) {
    const set = await http(state, 'GET', state.spec.jwks);
    jwk = set.json?.keys?.find((k) => k.kid === header.kid);
    check(jwk !== undefined, `kid ${header.kid} not in ${state.spec.jwks}`);
  } else if (state.ready?.publicJwk !== undefined) {
    jwk = state.ready.publicJwk;
  }
  let signature = 'not checked (HS256: the secret stays in the server)';
  if (jwk !== undefined) {
    const ok = verifySignature('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(parts[2], 'base64url'));
    check(ok, 'signature does not verify');
    signature = 'verified';
  }
  return `${header.alg}${header.typ ? ` typ ${header.typ}` : ''}, signature ${signature}`;
}

async function introspect(state, client, token, secret) {
  return http(state, 'POST', state.spec.introspect, { headers: { ...FORM, authorization: basic(client, secret) }, body: `token=${encodeURIComponent(token)}` });
}

/** Per workload: the check run once per target and mode before measuring. Returns a description. */
const VERIFY = {
  async 'cc-jwt'(state) {
    if (state.spec.floor) {
      const res = await clientCredentials(state, ids.jwt);
      check(res.status === 200, `status ${res.status}`);
      return 'answers 200 (the floor checks nothing: no real token, no refusal)';
    }
    const res = await clientCredentials(state, ids.jwt);
    check(res.status === 200 && typeof res.json?.access_token === 'string', `status ${res.status}: ${res.text.slice(0, 200)}`);
    const jwt = await checkJwt(state, res.json.access_token, state.spec.alg ?? 'ES256');
    const bad = await clientCredentials(state, ids.jwt, 'wrong-secret-0123456789');
    check(refused(bad), `a wrong secret got ${bad.status} ${bad.text.slice(0, 120)}`);
    return `token ${jwt}; wrong secret → ${bad.status} invalid_client`;
  },
  async 'cc-opaque'(state) {
    const res = await clientCredentials(state, ids.opaque);
    check(res.status === 200 && typeof res.json?.access_token === 'string', `status ${res.status}: ${res.text.slice(0, 200)}`);
    const token = res.json.access_token;
    check(token.split('.').length !== 3, 'got a JWT, expected an opaque token');
    const info = await introspect(state, ids.opaque, token);
    check(info.json?.active === true, `the token does not introspect as active: ${info.text.slice(0, 200)}`);
    const bad = await clientCredentials(state, ids.opaque, 'wrong-secret-0123456789');
    check(refused(bad), `a wrong secret got ${bad.status} ${bad.text.slice(0, 120)}`);
    return `opaque token (${token.length} chars) introspects active; wrong secret → ${bad.status} invalid_client`;
  },
  async refresh(state) {
    const pool = readFileSync(state.refreshPool, 'utf8').split('\n').filter(Boolean);
    check(pool.length >= 2, 'refresh pool empty');
    const bad = await http(state, 'POST', '/token', { headers: { ...FORM, authorization: basic(ids.web, 'wrong-secret-0123456789') }, body: REFRESH_BODY_TEMPLATE.replace('{TOKEN}', encodeURIComponent(pool[1])) });
    check(refused(bad), `a wrong secret got ${bad.status} ${bad.text.slice(0, 120)}`);
    const res = await http(state, 'POST', '/token', { headers: { ...FORM, authorization: basic(ids.web) }, body: REFRESH_BODY_TEMPLATE.replace('{TOKEN}', encodeURIComponent(pool[0])) });
    check(res.status === 200 && typeof res.json?.refresh_token === 'string' && res.json.refresh_token !== pool[0], `status ${res.status}: ${res.text.slice(0, 200)}`);
    const jwt = await checkJwt(state, res.json.access_token, 'ES256');
    pool[0] = res.json.refresh_token;
    writeFileSync(state.refreshPool, `${pool.join('\n')}\n`);
    return `rotated: new refresh token, access token ${jwt}; wrong secret → ${bad.status} invalid_client`;
  },
  async code(state) {
    const [good, other] = await mintCodes(state.base, ids, state.session, 2);
    const bad = await http(state, 'POST', '/token', { headers: { ...FORM, authorization: basic(ids.web, 'wrong-secret-0123456789') }, body: codeBody(ids, other) });
    check(refused(bad), `a wrong secret got ${bad.status} ${bad.text.slice(0, 120)}`);
    const res = await http(state, 'POST', '/token', { headers: { ...FORM, authorization: basic(ids.web) }, body: codeBody(ids, good) });
    check(res.status === 200 && typeof res.json?.id_token === 'string', `status ${res.status}: ${res.text.slice(0, 200)}`);
    const jwt = await checkJwt(state, res.json.access_token, 'ES256');
    const again = await http(state, 'POST', '/token', { headers: { ...FORM, authorization: basic(ids.web) }, body: codeBody(ids, good) });
    check(again.status === 400, `a redeemed code was accepted again (${again.status})`);
    return `access token ${jwt} + ID token; code single-use; wrong secret → ${bad.status} invalid_client`;
  },
  async 'introspect-jwt'(state) {
    const token = await mintIntrospectionToken(state, 'introspect-jwt');
    const res = await introspect(state, ids.jwt, token);
    if (res.json?.error === 'unsupported_token_type') throw new Unsupported(`${res.json.error}: ${res.json.error_description}`);
    check(res.status === 200 && res.json?.active === true, `status ${res.status}: ${res.text.slice(0, 200)}`);
    const bad = await introspect(state, ids.jwt, token, 'wrong-secret-0123456789');
    check(refused(bad), `a wrong secret got ${bad.status} ${bad.text.slice(0, 120)}`);
    return `active:true for client ${res.json.client_id}; wrong secret → ${bad.status} invalid_client`;
  },
  async 'introspect-opaque'(state) {
    const token = await mintIntrospectionToken(state, 'introspect-opaque');
    const res = await introspect(state, ids.opaque, token);
    check(res.status === 200 && res.json?.active === true, `status ${res.status}: ${res.text.slice(0, 200)}`);
    const bad = await introspect(state, ids.opaque, token, 'wrong-secret-0123456789');
    check(refused(bad), `a wrong secret got ${bad.status} ${bad.text.slice(0, 120)}`);
    return `active:true for client ${res.json.client_id}; wrong secret → ${bad.status} invalid_client`;
  },
  async jwks(state) {
    const res = await http(state, 'GET', state.spec.jwks);
    const keys = res.json?.keys ?? [];
    check(res.status === 200 && keys.length > 0, `status ${res.status}: ${res.text.slice(0, 200)}`);
    check(keys.every((k) => k.d === undefined), 'a private key member is published');
    return `${keys.length} key(s): ${keys.map((k) => `${k.kty}/${k.crv ?? k.alg}`).join(', ')}`;
  },
};

async function mintIntrospectionToken(state, workload) {
  const client = workload === 'introspect-jwt' ? ids.jwt : ids.opaque;
  const res = await clientCredentials(state, client);
  check(res.status === 200 && typeof res.json?.access_token === 'string', `minting the token to introspect: ${res.status} ${res.text.slice(0, 200)}`);
  return res.json.access_token;
}

/** What the load generator sends for a (workload, target); prepares pools and tokens first. */
async function loadRequest(workload, state, rates) {
  const form = (client) => ({ ...FORM, authorization: basic(client) });
  switch (workload) {
    case 'cc-jwt':
      return { request: { method: 'POST', path: '/token', headers: form(ids.jwt), body: ccBody() }, expect: '"access_token"' };
    case 'cc-opaque':
      return { request: { method: 'POST', path: '/token', headers: form(ids.opaque), body: ccBody() }, expect: '"access_token"' };
    case 'refresh':
      return {
        request: { method: 'POST', path: '/token', headers: form(ids.web), body: REFRESH_BODY_TEMPLATE },
        expect: '"refresh_token"',
        pool: { file: state.refreshPool, mode: 'rotate', field: 'refresh_token' },
      };
    case 'code': {
      const estimate = rates.code ?? rates.refresh ?? 3000;
      const n = Math.ceil(estimate * (plan.warmup + plan.duration) * 1.3) + 500;
      const t0 = Date.now();
      const codes = await mintCodes(state.base, ids, state.session, n, CODE_SCOPE);
      const file = join(workDir, `codes-${state.name}-${state.mode}.txt`);
      writeFileSync(file, `${codes.join('\n')}\n`);
      log(`    ${n.toLocaleString('en-US')} codes minted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return {
        request: { method: 'POST', path: '/token', headers: form(ids.web), body: codeBodyTemplate(ids) },
        expect: '"id_token"',
        pool: { file, mode: 'single-use' },
      };
    }
    case 'introspect-jwt':
    case 'introspect-opaque': {
      const token = await mintIntrospectionToken(state, workload);
      const client = workload === 'introspect-jwt' ? ids.jwt : ids.opaque;
      return { request: { method: 'POST', path: state.spec.introspect, headers: form(client), body: `token=${encodeURIComponent(token)}` }, expect: '"active":true' };
    }
    case 'jwks':
      return { request: { method: 'GET', path: state.spec.jwks }, expect: '"keys"' };
    default:
      throw new Error(`unknown workload ${workload}`);
  }
}

/** Portcullis needs a browser session (codes) and a pool of refresh tokens. */
async function preparePortcullisState(state) {
  const { cookie } = await login(state.base, ids);
  state.session = cookie;
  const codes = await mintCodes(state.base, ids, cookie, 2000, REFRESH_SCOPE);
  const tokens = await redeemCodes(state.base, ids, codes, 'refresh_token');
  state.refreshPool = join(workDir, `refresh-${state.name}-${state.mode}.txt`);
  writeFileSync(state.refreshPool, `${tokens.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// One measured run

/** Run the loader against a target: warm-up, CPU/RSS snapshot, measured window, snapshot. */
async function measure({ mode, round, workload, state, duration = plan.duration, rates, phase = 'main', sampleRss = false }) {
  const { request, expect, pool } = await loadRequest(workload, state, rates);
  const job = { url: state.base, connections: plan.connections, warmup: plan.warmup, duration, request, expect, pool, timeoutSec: 10 };
  const loader = spawnChild(process.execPath, [join(BENCH_DIR, 'lib', 'load.mjs')], { pin: mode === 'pinned' ? 1 : undefined, cwd: BENCH_DIR, stdin: 'pipe', name: 'load generator' });
  const events = createInterface({ input: loader.child.stdout });
  const queue = [];
  let waiting;
  events.on('line', (line) => {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    if (waiting !== undefined) {
      const w = waiting;
      waiting = undefined;
      w(event);
    } else queue.push(event);
  });
  const next = (timeoutMs, what) =>
    new Promise((resolve, reject) => {
      if (queue.length > 0) return resolve(queue.shift());
      const timer = setTimeout(() => reject(new Error(`load generator: no ${what} after ${timeoutMs / 1000} s`)), timeoutMs);
      loader.exit.then(() => setTimeout(() => reject(new Error(`load generator exited (${loader.code}) before ${what}:\n${tail(loader)}`)), 200));
      waiting = (event) => {
        clearTimeout(timer);
        resolve(event);
      };
    });

  try {
    loader.child.stdin.write(`${JSON.stringify(job)}\n`);
    const warm = await next((plan.warmup + 60) * 1000, 'end of warm-up');
    if (warm.event !== 'warm') throw new Error(`load generator: ${warm.message ?? JSON.stringify(warm)}`);
    const dbPids = state.pg === undefined ? undefined : await backendPids(await monitor(), state.pg.app);
    resetPeakRss(state.pid);
    const rssStart = rssBytes(state.pid);
    const db0 = dbPids === undefined ? undefined : backendSnapshot(dbPids);
    const cpu0 = cpuMicros(state.pid);
    const loaderCpu0 = cpuMicros(loader.child.pid);
    const machine0 = machineMicros();
    const t0 = performance.now();
    const samples = [];
    let sampler;
    if (sampleRss) {
      samples.push({ t: 0, rss: rssStart });
      sampler = setInterval(() => samples.push({ t: (performance.now() - t0) / 1000, rss: rssBytes(state.pid) }), 1000);
    }
    loader.child.stdin.write('go\n');
    const done = await next((duration + 60) * 1000, 'result');
    const cpu1 = cpuMicros(state.pid);
    const loaderCpu1 = cpuMicros(loader.child.pid);
    const machine1 = machineMicros();
    const wall = (performance.now() - t0) / 1000;
    let dbMicros;
    if (db0 !== undefined) {
      const db1 = backendSnapshot(dbPids);
      // Backends opened during the window count whole.
      for (const pid of await backendPids(await monitor(), state.pg.app)) if (!db1.has(pid)) backendSnapshot([pid]).forEach((us, p) => db1.set(p, us));
      dbMicros = db0.size === 0 && db1.size === 0 ? undefined : backendMicros(db0, db1);
    }
    if (sampler !== undefined) {
      clearInterval(sampler);
      samples.push({ t: (performance.now() - t0) / 1000, rss: rssBytes(state.pid) });
    }
    if (done.event !== 'done') throw new Error(`load generator: ${done.message ?? JSON.stringify(done)}`);
    const r = done.result;
    const reasons = [];
    if (r.non2xx > 0) reasons.push(`${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)})`);
    if (r.errors > 0) reasons.push(`${r.errors} errors`);
    if (r.timeouts > 0) reasons.push(`${r.timeouts} timeouts`);
    if (r.mismatches > 0) reasons.push(`${r.mismatches} bodies without ${expect}`);
    if (done.pool?.exhausted) reasons.push('ran out of pre-minted codes');
    if (r.ok === 0) reasons.push('no successful request');
    const run = {
      phase,
      mode,
      round,
      workload,
      target: state.name,
      valid: reasons.length === 0,
      reason: reasons.join('; ') || undefined,
      seconds: r.seconds,
      requests: r.requests,
      ok: r.ok,
      rps: r.rps,
      latency: r.latency,
      statusCodes: r.statusCodes,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      mismatches: r.mismatches,
      cpuMicros: cpu1 - cpu0,
      cpuPerRequestUs: r.requests > 0 ? (cpu1 - cpu0) / r.requests : undefined,
      cpuUtilization: (cpu1 - cpu0) / 1e6 / r.seconds,
      loaderCpuUtilization: (loaderCpu1 - loaderCpu0) / 1e6 / r.seconds,
      // --storage postgres: the CPU of the PostgreSQL backends serving this server (same machine).
      dbCpuMicros: dbMicros,
      dbCpuPerRequestUs: dbMicros !== undefined && r.requests > 0 ? dbMicros / r.requests : undefined,
      dbCpuUtilization: dbMicros === undefined ? undefined : dbMicros / 1e6 / r.seconds,
      // Cores busy with anything else (other processes, and kernel network work not charged to
      // either side) over the window: a noisy machine shows here.
      otherCpuUtilization:
        machine0 === undefined || machine1 === undefined
          ? undefined
          : Math.max(0, (machine1.busy - machine0.busy - (cpu1 - cpu0) - (loaderCpu1 - loaderCpu0) - (dbMicros ?? 0)) / 1e6 / wall),
      // Cores the hypervisor took from this VM over the window (/proc/stat steal).
      stealCores: machine0 === undefined || machine1 === undefined ? undefined : Math.max(0, (machine1.steal - machine0.steal) / 1e6 / wall),
      peakRssBytes: peakRssBytes(state.pid),
      rssStartBytes: rssStart,
      rssEndBytes: rssBytes(state.pid),
      warmup: warm.warm === undefined ? undefined : { rps: warm.warm.rps, non2xx: warm.warm.non2xx },
      pool: done.pool,
      ...(sampleRss ? { rssSamples: samples.map((s) => ({ t: Math.round(s.t * 10) / 10, rssBytes: s.rss })) } : {}),
    };
    await loader.exit;
    return run;
  } finally {
    events.close();
    await stopChild(loader, 1000);
  }
}

function describe(run) {
  const status = run.valid ? '' : `  DISCARDED: ${run.reason}`;
  return (
    `${Math.round(run.rps).toLocaleString('en-US').padStart(7)} req/s  p50 ${run.latency.p50?.toFixed(2)} ms  p99 ${run.latency.p99?.toFixed(2)} ms  ` +
    `${Math.round(run.cpuPerRequestUs ?? 0)} µs CPU/req${run.dbCpuPerRequestUs === undefined ? '' : ` (+${Math.round(run.dbCpuPerRequestUs)} db)`}  ` +
    `cores busy: server ${run.cpuUtilization.toFixed(2)}, load ${run.loaderCpuUtilization.toFixed(2)}, ${run.dbCpuUtilization === undefined ? '' : `db ${run.dbCpuUtilization.toFixed(2)}, `}other ${run.otherCpuUtilization?.toFixed(2) ?? '?'}, steal ${run.stealCores?.toFixed(2) ?? '?'}  ${Math.round(run.peakRssBytes / 2 ** 20)} MB peak${status}`
  );
}

/** Measure, and measure again once with a bigger pool when the codes ran out. */
async function measureWithRetry(options) {
  let run = await measure(options);
  if (!run.valid && run.pool?.exhausted && options.workload === 'code') {
    options.rates.code = Math.max(options.rates.code ?? 0, (run.requests / run.seconds) * 1.5);
    log(`    codes ran out at ${Math.round(run.rps)} req/s: minting more and measuring again`);
    runs.push({ ...run, retried: true });
    run = await measure(options);
  }
  return run;
}

/** A run that could not happen (the target died, minting failed…) is recorded as discarded; the bench goes on. */
async function safeMeasure(options) {
  const { mode, round, workload, state, phase = 'main' } = options;
  const failed = (reason) => ({ phase, mode, round, workload, target: state.name, valid: false, failed: true, reason });
  if (state.entry.exited) {
    const output = tail(state.entry, 5);
    return failed(`the target had exited (${state.entry.code})${output === '' ? '' : `; its last output:\n${output}`}`);
  }
  try {
    return await measureWithRetry(options);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return failed(state.entry.exited ? `the target exited (${state.entry.code}) during the run: ${reason}` : reason);
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

async function startAll(names, mode, templates = {}) {
  const states = {};
  try {
    for (const name of names) {
      log(`  starting ${name}${mode === 'pinned' ? ' (taskset -c 0)' : ''}`);
      states[name] = await startTarget(name, mode, { template: templates[name] });
      if (TARGETS[name]?.kind === 'portcullis') await preparePortcullisState(states[name]);
    }
  } catch (err) {
    await stopAll(states);
    throw err;
  }
  return states;
}

async function stopAll(states) {
  await Promise.all(Object.values(states).map((s) => stopChild(s.entry)));
}

/** Verify every (workload, target) once; returns the series that passed. */
async function verifyAll(states, mode, workloads) {
  const ok = [];
  for (const w of workloads) {
    for (const t of w.targets) {
      const state = states[t];
      if (state === undefined) continue;
      try {
        const detail = await VERIFY[w.name](state);
        notes.verified++;
        (extra.verification ??= []).push({ mode, workload: w.name, target: t, ok: true, detail });
        log(`  ✓ ${w.name.padEnd(18)} ${t.padEnd(14)} ${detail}`);
        ok.push({ workload: w.name, target: t });
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        const unsupported = err instanceof Unsupported;
        (extra.verification ??= []).push({ mode, workload: w.name, target: t, ok: false, unsupported, detail: reason });
        notes.skipped.push({ mode, workload: w.name, target: t, reason: unsupported ? `not supported by the target (${reason})` : `verification failed: ${reason}` });
        log(`  ${unsupported ? '-' : '✗'} ${w.name.padEnd(18)} ${t.padEnd(14)} not measured: ${unsupported ? 'not supported: ' : ''}${reason}`);
      }
    }
  }
  return ok;
}

async function mainPhase(mode, templates) {
  const names = [...new Set(plan.workloads.flatMap((w) => w.targets))];
  if (names.length === 0) return;
  log(`\n== ${mode} mode: ${mode === 'pinned' ? 'servers on core 0, load generator on core 1' : 'nothing pinned'}`);
  const states = await startAll(names, mode, templates);
  try {
    const series = await verifyAll(states, mode, plan.workloads);
    const rates = Object.fromEntries(names.map((n) => [n, {}]));
    for (let round = 1; round <= plan.rounds; round++) {
      log(`\n-- ${mode}, round ${round} of ${plan.rounds}`);
      for (const w of plan.workloads) {
        for (const s of series.filter((x) => x.workload === w.name)) {
          const run = await safeMeasure({ mode, round, workload: w.name, state: states[s.target], rates: rates[s.target] });
          if (run.valid) rates[s.target][w.name] = run.rps;
          runs.push(run);
          log(`  ${w.name.padEnd(18)} ${s.target.padEnd(14)} ${run.failed ? `FAILED: ${run.reason}` : describe(run)}`);
        }
      }
    }
    if (args.memory && mode === memoryMode && states.portcullis !== undefined) await memoryRun(mode, states.portcullis);
  } finally {
    await stopAll(states);
  }
}

const memoryMode = plan.modes.includes('pinned') ? 'pinned' : 'shared';

async function memoryRun(mode, state) {
  const workload = 'cc-jwt';
  log(`\n-- memory: ${plan.memoryDuration} s of ${workload} on Portcullis (${mode}), RSS every second`);
  const run = await safeMeasure({ mode, round: 0, workload, state, duration: plan.memoryDuration, rates: {}, phase: 'memory', sampleRss: true });
  runs.push(run);
  if (run.failed) {
    log(`  FAILED: ${run.reason}`);
    extra.skipped.push({ mode, workload: 'memory', target: 'portcullis', reason: run.reason });
    return;
  }
  const MB = 2 ** 20;
  const points = run.rssSamples.map((s) => ({ x: s.t / 60, y: s.rssBytes / MB }));
  const half = points.filter((p) => p.x >= points[points.length - 1].x / 2);
  extra.memory = {
    mode,
    workload,
    seconds: plan.memoryDuration,
    valid: run.valid,
    reason: run.reason,
    rps: run.rps,
    startMB: points[0].y,
    peakMB: Math.max(run.peakRssBytes / MB, ...points.map((p) => p.y)),
    endMB: points[points.length - 1].y,
    slopeMBPerMin: slope(points),
    slopeSecondHalfMBPerMin: slope(half),
    samples: points.length,
  };
  const m = extra.memory;
  log(`  ${describe(run)}\n  RSS start ${m.startMB.toFixed(1)} MB, peak ${m.peakMB.toFixed(1)} MB, end ${m.endMB.toFixed(1)} MB, slope ${m.slopeMBPerMin.toFixed(2)} MB/min (second half ${m.slopeSecondHalfMBPerMin.toFixed(2)})`);
}

/**
 * --growth: a database with N refresh tokens, built once. SQLite: a file, copied for every mode.
 * PostgreSQL: a schema, shared by the modes one after the other (a later mode also sees the
 * tokens the earlier one rotated: a few tens of thousands against N).
 */
async function buildGrownTemplate() {
  log(`\n== growth: building a ${STORAGE_LABEL} database with ${plan.growthRows.toLocaleString('en-US')} refresh tokens`);
  const template = plan.storage === 'postgres' ? newSchema('grown') : undefined;
  const state = await startTarget('portcullis-1m', 'shared', { template });
  try {
    await preparePortcullisState(state);
  } finally {
    await stopChild(state.entry);
  }
  if (plan.storage === 'postgres') {
    const result = await growPostgres(plan.pgUrl, template, plan.growthRows, log);
    extra.growth = {
      storage: 'postgres',
      rows: plan.growthRows,
      seconds: result.seconds,
      insertSeconds: result.insertSeconds,
      size: result.size,
      checkpoint: result.checkpoint,
      refreshTokens: result.refreshTokens,
      ratios: [],
    };
    log(`  ${result.refreshTokens.toLocaleString('en-US')} refresh tokens in schema ${template} (${result.seconds.toFixed(0)} s)`);
    return template;
  }
  const crypto = await import(pathToFileURL(join(ROOT, 'dist', 'core', 'crypto.js')).href);
  const result = growDatabase(state.dbFile, plan.growthRows, crypto, log);
  const file = join(workDir, 'grown-template.db');
  renameSync(state.dbFile, file);
  extra.growth = { storage: 'sqlite', rows: plan.growthRows, seconds: result.seconds, refreshTokens: result.refreshTokens, ratios: [] };
  log(`  ${result.refreshTokens.toLocaleString('en-US')} refresh tokens in the database (${result.seconds.toFixed(0)} s)`);
  return file;
}

/** --workers N: does `portcullis start` take --workers? */
function workersSupported() {
  try {
    const help = execFileSync(process.execPath, [PORTCULLIS_BIN, 'start', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: baseEnv() });
    return /--workers\b/.test(help);
  } catch {
    return false;
  }
}

async function workersPhase() {
  const n = plan.workers;
  const mode = 'shared';
  const workload = 'cc-jwt';
  log(`\n== workers: Portcullis with --workers 1 and --workers ${n} (${workload}, ${mode})`);
  if (!workersSupported()) {
    extra.workers = { supported: false, reason: '`portcullis start --workers` is not supported by this server yet: the workers measurement was skipped.' };
    log(`  skipped: ${extra.workers.reason}`);
    return;
  }
  const counts = [1, n];
  const states = {};
  try {
    for (const count of counts) {
      const name = `portcullis-w${count}`;
      log(`  starting ${name}`);
      states[count] = await startTarget(name, mode, { extraArgs: ['--workers', String(count)] });
      states[count].name = name;
      await VERIFY[workload](states[count]);
      notes.verified++;
    }
    for (let round = 1; round <= plan.rounds; round++) {
      for (const count of counts) {
        const run = await safeMeasure({ mode, round, workload, state: states[count], rates: {}, phase: 'workers' });
        run.workers = count;
        runs.push(run);
        log(`  round ${round} workers ${count}: ${run.failed ? `FAILED: ${run.reason}` : describe(run)}`);
      }
    }
  } finally {
    await stopAll(states);
  }
  const rowsOut = counts.map((count) => {
    const valid = runs.filter((r) => r.phase === 'workers' && r.workers === count && r.valid);
    return { workers: count, rps: median(valid.map((r) => r.rps)), cpuPerRequest: median(valid.map((r) => r.cpuPerRequestUs)), peakRssMB: valid.length ? Math.max(...valid.map((r) => r.peakRssBytes / 2 ** 20)) : undefined };
  });
  extra.workers = { supported: true, n, workload, mode, rows: rowsOut, scaling: ratio(rowsOut[1].rps, rowsOut[0].rps) };
}

// ---------------------------------------------------------------------------------------------
// Machine, results, docs

function machine() {
  let cpu = cpus()[0]?.model ?? 'unknown CPU';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m !== null) cpu = m[1].trim();
  } catch {
    // not Linux
  }
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // keep os.cpus()
  }
  let memory;
  try {
    memory = `${Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) / 2 ** 20)} GiB`;
  } catch {
    memory = undefined;
  }
  return { cpu, nproc, memory, node: process.version, os: `${osType()} ${release()}` };
}

/**
 * --baseline: Portcullis ÷ baseline per round (the two ran one after the other, so each pair saw
 * about the same machine), and the median of those ratios: steadier than a ratio of medians when
 * the machine drifts between rounds.
 */
function baselineComparison(allRuns) {
  const lines = ['Portcullis ÷ baseline, per round (pinned and shared modes apart); the median of the per-round ratios first:', ''];
  const main = allRuns.filter((r) => r.phase === 'main' && r.valid);
  for (const mode of plan.modes) {
    for (const w of plan.workloads) {
      const pairs = [];
      for (const a of main.filter((r) => r.mode === mode && r.workload === w.name && r.target === 'portcullis')) {
        const b = main.find((r) => r.mode === mode && r.workload === w.name && r.target === 'portcullis-base' && r.round === a.round);
        if (b !== undefined) pairs.push({ rps: a.rps / b.rps, cpu: a.cpuPerRequestUs / b.cpuPerRequestUs, p99: a.latency.p99 / b.latency.p99 });
      }
      if (pairs.length === 0) continue;
      const fmt = (key) => `${median(pairs.map((p) => p[key])).toFixed(2)}× (${pairs.map((p) => p[key].toFixed(2)).join(' / ')})`;
      lines.push(`  ${mode.padEnd(7)} ${w.name.padEnd(18)} req/s ${fmt('rps')}   CPU µs/req ${fmt('cpu')}   p99 ${fmt('p99')}`);
    }
  }
  return lines.join('\n');
}

/** How busy the machine is before anything starts: CPU time of everything over 2 s, in cores. */
async function measureIdle() {
  const a = machineMicros();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 2000));
  const b = machineMicros();
  const seconds = (performance.now() - t0) / 1000;
  let loadavg;
  try {
    loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    loadavg = undefined;
  }
  return {
    otherCores: a === undefined || b === undefined ? 0 : (b.busy - a.busy) / 1e6 / seconds,
    stealCores: a === undefined || b === undefined ? 0 : (b.steal - a.steal) / 1e6 / seconds,
    loadavg,
  };
}

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

function peerVersions() {
  return ['oidc-provider', '@jmondi/oauth2-server', 'express', 'autocannon'].map((name) => {
    try {
      return { name, version: JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')).version };
    } catch {
      return { name, version: 'not installed' };
    }
  });
}

const DOC_INTRO = `# Performance

How fast Portcullis answers, measured against the packages our users would otherwise pick
(\`oidc-provider\` 9 and \`@jmondi/oauth2-server\` 4 with Express) and against two bare
\`node:http\` servers that bound what is possible on the machine. Issue 7 sets the goals.

## How to run

\`\`\`sh
(cd bench && npm ci --no-audit --no-fund)   # the peers and autocannon: dev dependencies of bench/ only
npm run bench                               # full matrix: both modes, 3 rounds of 3 s warm-up + 10 s
npm run bench -- --memory --growth --workers 2   # plus the memory, growth and workers measurements
npm run bench -- --duration 2 --rounds 1 --mode shared   # a smoke run
\`\`\`

Options: \`--duration S\`, \`--warmup S\`, \`--rounds N\`, \`--mode shared|pinned|both\`,
\`--workloads a,b\`, \`--targets x,y\`, \`--connections N\`, \`--memory\`, \`--growth\`, \`--workers N\`,
\`--no-docs\`, \`--baseline DIR\` and \`--dry-run\` (\`node bench/run.mjs --help\`). Run it on an idle machine. Raw results go to
\`bench/results/<timestamp>.json\` (not committed); the summary below is replaced by each run.

## Method

- **One invocation, one machine.** Every target runs in its own process on 127.0.0.1 (a random free
  port). The load comes from a separate process (\`bench/lib/load.mjs\`, autocannon, 10 connections,
  HTTP/1.1 keep-alive). Each run has a warm-up whose results are discarded, then the measured window.
- **Interleaved.** Round by round, every target of every workload runs once (A B C … A B C …), so
  drift of the machine shows in the per-round numbers instead of favouring one target.
- **Two modes.** *Shared*: nothing pinned, the OS schedules server and load generator on both cores.
  *Pinned*: every server under \`taskset -c 0\`, the load generator under \`taskset -c 1\`: one core
  per side, the fairest comparison of server cost. The goals are read in pinned mode.
- **Verified first.** Before it is measured, every target is checked once: a real token comes back
  (JWT signatures are verified against the target's keys) and a wrong client secret is refused with
  \`invalid_client\`. Every response of a run is checked for the expected body; a run with any non-2xx
  response, error, timeout or unexpected body is discarded and listed.
- **Per target:** req/s (the median of the rounds, and each round's), latency p50/p99 (every response time the load generator saw, exact: autocannon's own
  histogram has 1 ms buckets),
  server CPU per request (utime + stime of the server process from \`/proc/<pid>/stat\`, before and
  after the measured window, divided by the requests), peak RSS (\`VmHWM\` from \`/proc/<pid>/status\`,
  reset at the start of each measured window through \`/proc/<pid>/clear_refs\`). Ratios compare
  medians of the same run only.
- **Is the server the limit?** *cores busy* is the server's CPU time over the window (1.00: one
  core saturated; above 1 in shared mode when GC and libuv threads run beside the main thread). The
  raw results also hold the load generator's CPU and the rest of the machine's (*other*: other
  processes, and kernel network work charged to neither side); the summary names the noisiest
  window and marks with † each round's figure whose window had 0.25 cores or more busy elsewhere.
  The run starts by measuring how busy the machine is and says so when it is not idle. Kernel time
  spent in softirq context is not charged to the server, so CPU µs per request is a slight
  underestimate for every target alike. On a virtual machine the run also reads the hypervisor's
  *steal* (\`/proc/stat\`: time this VM's cores were given to someone else) per window; when its
  median reaches 0.1 cores the summary says so at the top: absolute figures from such a run are
  low and noisy, ratios within it still compare like with like.

### Targets

- **Portcullis**: the ready-to-run server as the package installs it (its \`portcullis\` bin,
  \`node dist/cli/main.js start\`, compiled by \`npm run build\` at the start of the run), SQLite
  (\`DATABASE_URL=sqlite:<tmp>/….db\`, a fresh file per mode), \`PORTCULLIS_KEY_SECRET\` set,
  \`NODE_ENV=production\`, and \`LOG_LEVEL=warn\`: the per-request access log (info) is **off** in the
  bench, as it would be behind a proxy that logs. Clients come from a \`PORTCULLIS_CONFIG\` file
  (\`bench/lib/portcullis.mjs\`): a JWT client_credentials client, an opaque one
  (\`access_token_format: "opaque"\`, tokens written to SQLite), and a first-party web client for
  codes and refresh tokens. Authorization codes live 600 s instead of 60 s (\`ttl.authorizationCode\`)
  because they are minted before the run.
- **oidc-provider 9** (\`bench/targets/oidc-provider.mjs\`): client_credentials through a resource
  indicator whose resource server takes ES256 JWT access tokens; the *opaque* variant (per client)
  keeps its tokens in the default in-memory adapter. It prints "Unsupported runtime" on Node 20 and
  works. It refuses to introspect JWT access tokens ("Structured JWT Tokens cannot be introspected"),
  so it has no introspect-jwt row.
- **@jmondi/oauth2-server 4 + Express 5** (\`bench/targets/jmondi.mjs\`): client_credentials with
  in-memory repositories; *ES256*: a \`JwtService\` over an ES256 private key object; *HS256*: the
  library's default string secret. It serves no JWKS and no opaque tokens.
- **limit** (\`bench/targets/limit.mjs\`): bare \`node:http\`; parses the form, checks Basic auth in
  constant time, signs the same ES256 \`at+jwt\` payload as Portcullis with \`node:crypto\`, and writes
  each response as soon as it is ready. The least a token endpoint must do.
- **limit, coalesced**: the same server with \`BENCH_COALESCE_WRITES=1\`: it writes the responses
  finished in one turn of the event loop together at the end of the turn, as Portcullis's
  ready-to-run server does (\`coalesceWrites\`, src/adapters/node-http.ts). Written one by one, each
  response wakes the load generator's idle core, and on this virtual machine that wake-up (an
  inter-processor interrupt) is charged to the server as kernel time; so *limit* is not the
  machine's limit, and Portcullis ÷ *limit, coalesced* is the ratio that shows what Portcullis's own
  work costs.
- **floor** (\`bench/targets/floor.mjs\`): bare \`node:http\` answering a constant JSON body of a token
  response's size: the cost of HTTP and of the load generator alone.

### Workloads

| workload | request | targets |
| --- | --- | --- |
| cc-jwt | \`POST /token\` client_credentials, Basic auth, \`scope=api:read\`, \`resource=https://api.example.com\`; ES256 JWT | all |
| cc-opaque | the same for the opaque client | Portcullis (SQLite), oidc-provider (memory) |
| refresh | \`POST /token\` refresh_token with rotation; every request presents a refresh token never used before: 2,000 are minted beforehand through the code flow, and the new refresh token of each response goes back into the pool (so the pool never runs dry, whatever the rate) | Portcullis |
| code | \`POST /token\` authorization_code + PKCE, scope \`openid api:read\` (access + ID token); before each run, codes for 1.3× the expected requests are minted through \`GET /authorize\` with a signed-in session (first-party client, so no consent page); a run that runs out is discarded and measured again with more | Portcullis |
| introspect-jwt / introspect-opaque | \`POST\` to the introspection endpoint, the token's own client | Portcullis, oidc-provider (opaque only) |
| jwks | \`GET /jwks\` | Portcullis, oidc-provider, limit, limit coalesced |

\`--memory\` runs client_credentials (JWT) on Portcullis for 60 s and samples RSS every second (start,
peak, end, least-squares slope). \`--growth\` writes 1,000,000 refresh tokens, each with its grant,
into a copy of the Portcullis database (better-sqlite3, one transaction per 100,000, copies of rows
the server wrote) and measures refresh and introspection against it and an almost empty database in
the same rounds. \`--workers N\` measures \`portcullis start --workers 1\` against \`--workers N\` when
the server supports the option.

## Results

${START_MARK}
${END_MARK}
`;

const GROWTH_WORKLOADS = ['refresh', 'introspect-jwt', 'introspect-opaque'];

const GROWTH_INTRO = `## Storage scale (1,000,000 refresh tokens)

Issue 6: with 1,000,000 refresh tokens stored, refresh and introspection latency within 1.5× of an
almost empty database. \`--growth\` starts two Portcullis servers on the same backend side by side,
one on an almost empty database (the 2,000 refresh tokens of the workload's pool) and one on a
database holding 1,000,000 more, each with its grant, and measures both in the same rounds,
interleaved. The rows are copies of a refresh token and its grant that the server wrote itself,
with fresh ids (base64url SHA-256, as the server stores them) and creation times spread over ten
days:

- **SQLite** (\`--storage sqlite\`, the default): written with better-sqlite3 into a copy of the
  server's file, one transaction per 100,000; each mode gets its own copy.
- **PostgreSQL** (\`--storage postgres\`): every server gets a fresh schema
  \`bench_<timestamp>_<target>_<mode>\` (\`--pg-url\`, default
  \`postgres://postgres@127.0.0.1:5432/test\`), created by the server's migrations; the rows are
  written server-side, \`INSERT … SELECT … FROM generate_series(…)\` in statements of 100,000,
  then \`VACUUM (ANALYZE)\` and a \`CHECKPOINT\`. All schemas are dropped at the end of the run.
  PostgreSQL itself is not pinned in pinned mode: its backends share the two cores with the
  server and the load generator; their CPU is measured apart (*db*, found through
  \`pg_stat_activity.application_name\`).

*ratio* is the +1M figure divided by the almost-empty one (latency: above 1 is slower; req/s:
below 1 is slower). Each backend's block is replaced by its next \`--growth\` run. What it measures
is the cost of the bigger tables and indexes (deeper B-trees, bigger files) on lookups of live
tokens; on these machines the whole database fits in the OS page cache, so a database larger than
memory (cold reads from disk) is not measured.

${GROWTH_START}
${GROWTH_END}
`;

function writeGrowthDoc(storage, block) {
  let text = existsSync(DOC) ? readFileSync(DOC, 'utf8') : DOC_INTRO;
  if (!text.includes(GROWTH_START) || !text.includes(GROWTH_END)) text = `${text.trimEnd()}\n\n${GROWTH_INTRO}`;
  const start = text.indexOf(GROWTH_START) + GROWTH_START.length;
  const end = text.indexOf(GROWTH_END);
  let inner = text.slice(start, end);
  const subStart = `<!-- growth-${storage}:start -->`;
  const subEnd = `<!-- growth-${storage}:end -->`;
  const wrapped = `${subStart}\n${block}\n${subEnd}`;
  if (inner.includes(subStart) && inner.includes(subEnd)) {
    inner = `${inner.slice(0, inner.indexOf(subStart))}${wrapped}${inner.slice(inner.indexOf(subEnd) + subEnd.length)}`;
  } else {
    // SQLite first, then PostgreSQL.
    const other = storage === 'sqlite' ? '<!-- growth-postgres:start -->' : undefined;
    inner = other !== undefined && inner.includes(other)
      ? `${inner.slice(0, inner.indexOf(other)).trimEnd()}\n${wrapped}\n\n${inner.slice(inner.indexOf(other))}`
      : `${inner.trimEnd()}\n${wrapped}\n`;
  }
  text = `${text.slice(0, start)}\n${inner.trim()}\n${text.slice(end)}`;
  writeFileSync(DOC, text);
}

function writeDoc(section) {
  let text = existsSync(DOC) ? readFileSync(DOC, 'utf8') : DOC_INTRO;
  if (!text.includes(START_MARK) || !text.includes(END_MARK)) text = `${text.trimEnd()}\n\n## Results\n\n${START_MARK}\n${END_MARK}\n`;
  const before = text.slice(0, text.indexOf(START_MARK) + START_MARK.length);
  const after = text.slice(text.indexOf(END_MARK));
  writeFileSync(DOC, `${before}\n${section}\n${after}`);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const series = plan.workloads.reduce((n, w) => n + w.targets.length, 0);
  log(`Portcullis bench: ${plan.modes.join(' + ')} mode, ${plan.rounds} round(s) × ${series} series × (${plan.warmup} s warm-up + ${plan.duration} s)`);
  log(`estimated wall time: ${Math.ceil(estimate / 60)} min (stops after ${Math.ceil(maxMinutes)} min at most); work dir ${workDir}`);
  const idleCheck = await measureIdle();
  log(`machine before the run: ${idleCheck.otherCores.toFixed(2)} cores busy with other work${idleCheck.otherCores >= 0.25 ? ' — NOT idle: numbers will be noisy' : ''}`);
  if (idleCheck.stealCores >= 0.1) log(`machine before the run: the hypervisor took ${idleCheck.stealCores.toFixed(2)} cores (steal) — a contended VM: absolute numbers will be low and noisy, compare ratios within the run`);
  const peers = peerVersions();
  const missing = peers.filter((p) => p.version === 'not installed');
  if (missing.length > 0) throw new Error(`not installed in bench/: ${missing.map((p) => p.name).join(', ')} (run: cd bench && npm ci --no-audit --no-fund)`);

  if (plan.storage === 'postgres') {
    const server = await describeServer(plan.pgUrl);
    extra.postgres = { url: redact(plan.pgUrl), prefix: pgPrefix, ...server };
    log(`PostgreSQL ${server.version} at ${redact(plan.pgUrl)} (shared_buffers ${server.shared_buffers}, autovacuum ${server.autovacuum}); schemas ${pgPrefix}_*`);
    if (await schemaExists(plan.pgUrl, schemaName(pgPrefix, 'grown'))) throw new Error(`schemas ${pgPrefix}_* exist already: wait a second and run again`);
  }
  const templates = {};
  if (args.growth && selectedTargets.includes('portcullis-1m') && plan.workloads.some((w) => w.targets.includes('portcullis-1m'))) {
    templates['portcullis-1m'] = await buildGrownTemplate();
  }
  for (const mode of plan.modes) await mainPhase(mode, templates);
  if (args.memory && !plan.workloads.some((w) => w.targets.includes('portcullis'))) {
    // Memory asked without the Portcullis workloads: start it just for this.
    const states = await startAll(['portcullis'], memoryMode);
    try {
      await memoryRun(memoryMode, states.portcullis);
    } finally {
      await stopAll(states);
    }
  }
  if (plan.workers !== undefined) await workersPhase();

  const rows = summarize(runs, plan);
  if (extra.growth !== undefined) {
    for (const mode of plan.modes) {
      for (const w of plan.workloads) {
        const empty = findRow(rows, mode, w.name, 'portcullis');
        const grown = findRow(rows, mode, w.name, 'portcullis-1m');
        if (empty === undefined || grown === undefined) continue;
        extra.growth.ratios.push({
          mode,
          workload: w.name,
          emptyRps: empty.rps,
          grownRps: grown.rps,
          slowdown: ratio(empty.rps, grown.rps),
          emptyP50: empty.p50,
          grownP50: grown.p50,
          emptyP99: empty.p99,
          grownP99: grown.p99,
          p50Ratio: ratio(grown.p50, empty.p50),
          p99Ratio: ratio(grown.p99, empty.p99),
        });
      }
    }
  }
  const meta = {
    date: started.toISOString().replace(/\.\d+Z$/, 'Z'),
    finished: new Date().toISOString(),
    machine: machine(),
    portcullis: gitInfo(),
    peers,
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    idleCheck,
    storage: plan.storage,
  };
  if (pgSchemas.size > 0) {
    // Every server has stopped (each phase stops its own): the schemas go now.
    const schemas = [...pgSchemas];
    await pgMonitor?.end();
    pgMonitor = undefined;
    await dropSchemas(plan.pgUrl, schemas, pgPrefix);
    pgSchemas.clear();
    log(`dropped schemas ${schemas.join(', ')}`);
  }
  const goals = evaluateGoals(rows, extra);
  const section = markdown({ meta, plan, rows, runs, extra: { ...extra, skipped: notes.skipped, verified: notes.verified }, goals });

  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${meta.date.replace(/[:]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ meta, plan, summary: rows, goals, extra: { ...extra, skipped: notes.skipped }, runs }, null, 2));

  log(`\n${consoleTable(rows, plan)}\n`);
  log(section);
  if (BASELINE_BIN !== undefined) log(`\n${baselineComparison(runs)}\n`);
  const growthSection = extra.growth !== undefined && extra.growth.ratios.length > 0 ? growthMarkdown({ meta, plan, rows, runs, extra }) : undefined;
  if (growthSection !== undefined) log(`\n${growthSection}`);
  if (!args['no-docs']) {
    // The results section describes the SQLite matrix: a PostgreSQL run, or a run of --growth's
    // workloads on Portcullis alone, leaves it as it is and writes only its storage-scale block.
    const growthOnly =
      args.growth && plan.workloads.every((w) => GROWTH_WORKLOADS.includes(w.name)) && selectedTargets.every((t) => TARGETS[t].kind === 'portcullis');
    if (plan.storage === 'sqlite' && !growthOnly) {
      writeDoc(section);
      log(`\nsummary written to ${relative(process.cwd(), DOC)}`);
    }
    if (growthSection !== undefined) {
      writeGrowthDoc(plan.storage, growthSection);
      log(`storage-scale summary (${plan.storage}) written to ${relative(process.cwd(), DOC)}`);
    }
  }
  log(`raw results: ${relative(process.cwd(), file)}`);
  log(`wall time: ${((Date.now() - started.getTime()) / 60000).toFixed(1)} min`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`\nbench: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
