/**
 * The load generator: its own process (pinned to core 1 in pinned mode), driven by run.mjs.
 *
 * stdin, line 1: the job as JSON (see run.mjs `loadJob`). The loader runs the warm-up (discarded),
 * prints {"event":"warm"} and waits for a line "go" on stdin (run.mjs samples the server's CPU
 * time in between), runs the measured window, prints {"event":"done", ...} and exits.
 *
 * Token pools (a file of one token per line, `{TOKEN}` in the body template):
 *  - "single-use" (authorization codes): each request takes the next token; when none is left the
 *    run stops and reports `exhausted` (run.mjs then mints more and measures again).
 *  - "rotate" (refresh tokens): each request takes a token, and the new refresh token of each
 *    successful response goes back into the pool, so the pool never runs dry. Tokens taken by a
 *    request whose response never arrived (the end of a run) are dropped, never reused (reuse would
 *    revoke the grant). The pool left at the end is written back to the file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

const lines = createInterface({ input: process.stdin });
const iterator = lines[Symbol.asyncIterator]();
const first = await iterator.next();
const job = JSON.parse(first.value);

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

let pool;
if (job.pool !== undefined) {
  const tokens = readFileSync(job.pool.file, 'utf8').split('\n').filter((t) => t !== '');
  pool = { queue: tokens, head: 0, taken: new Set(), exhausted: false, returned: 0, failed: 0 };
}

function take() {
  if (pool.head < pool.queue.length) return pool.queue[pool.head++];
  return undefined;
}

function buildRequest(instanceRef) {
  const base = {
    method: job.request.method,
    path: job.request.path,
    headers: job.request.headers,
  };
  if (pool === undefined) return { ...base, ...(job.request.body !== undefined ? { body: job.request.body } : {}) };
  const template = job.request.body;
  return {
    ...base,
    setupRequest(req, context) {
      let token = take();
      if (token === undefined) {
        if (!pool.exhausted) {
          pool.exhausted = true;
          setImmediate(() => instanceRef.current?.stop());
        }
        token = 'exhausted';
      } else {
        pool.taken.add(token);
      }
      context.token = token;
      return { ...req, body: template.replace('{TOKEN}', encodeURIComponent(token)) };
    },
    onResponse(status, body, context) {
      const token = context.token;
      if (token === undefined) return;
      pool.taken.delete(token);
      if (job.pool.mode !== 'rotate') return;
      if (status === 200) {
        try {
          const next = JSON.parse(body)[job.pool.field];
          if (typeof next === 'string') {
            pool.queue.push(next);
            pool.returned++;
            return;
          }
        } catch {
          // counted below
        }
      }
      pool.failed++;
    },
  };
}

/**
 * Latencies are kept exactly (autocannon's histogram has 1 ms buckets, too coarse for sub-ms
 * answers): every response time, in ms, from the instance's "response" event.
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function run(duration) {
  return new Promise((resolve, reject) => {
    const ref = {};
    const latencies = [];
    const opts = {
      url: job.url,
      connections: job.connections,
      pipelining: 1,
      duration,
      timeout: job.timeoutSec ?? 10,
      requests: [buildRequest(ref)],
      ...(job.expect !== undefined ? { verifyBody: (body) => body.includes(job.expect) } : {}),
    };
    ref.current = autocannon(opts, (err, result) => {
      if (err) return reject(err);
      const sorted = Float64Array.from(latencies).sort();
      const sum = latencies.reduce((a, b) => a + b, 0);
      result.exactLatency = {
        count: sorted.length,
        mean: sorted.length ? sum / sorted.length : undefined,
        p50: percentile(sorted, 50),
        p90: percentile(sorted, 90),
        p99: percentile(sorted, 99),
        p999: percentile(sorted, 99.9),
        max: sorted.length ? sorted[sorted.length - 1] : undefined,
      };
      resolve(result);
    });
    ref.current.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
}

function summary(result) {
  const seconds = (new Date(result.finish).getTime() - new Date(result.start).getTime()) / 1000;
  const ok = result['2xx'];
  return {
    seconds,
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    resets: result.resets,
    rps: ok / seconds,
    latency: result.exactLatency,
    autocannonLatency: { mean: result.latency.average, p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  };
}

try {
  let warm;
  if (job.warmup > 0) warm = summary(await run(job.warmup));
  // Tokens taken by requests still in flight when the warm-up stopped are never reused.
  if (pool !== undefined) pool.taken.clear();
  emit({ event: 'warm', warm });
  const go = await iterator.next();
  if (go.done || go.value.trim() !== 'go') throw new Error('expected "go" on stdin');
  const result = summary(await run(job.duration));
  let poolInfo;
  if (pool !== undefined) {
    const dropped = pool.taken.size;
    const left = pool.queue.slice(pool.head);
    poolInfo = { used: pool.head, left: left.length, exhausted: pool.exhausted, returned: pool.returned, failed: pool.failed, dropped };
    if (job.pool.mode === 'rotate') writeFileSync(job.pool.file, left.join('\n') + '\n');
  }
  emit({ event: 'done', result, pool: poolInfo });
  lines.close();
  process.exit(0);
} catch (err) {
  emit({ event: 'error', message: err instanceof Error ? err.stack : String(err) });
  process.exit(1);
}
