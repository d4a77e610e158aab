/**
 * Storage outage under load, without touching the shared services: the server reaches PostgreSQL
 * (or Redis) through a TCP proxy the test cuts and restores. While the store is gone, requests
 * that need it get 503 `temporarily_unavailable` with `Retry-After` and the generic description
 * (no internal text), never a 500; once it is back, requests succeed again without restarting
 * Portcullis, and nothing was half-written.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { POSTGRES_URL, REDIS_URL, postgresAvailable, redisAvailable, serviceGate, dropStaleTestData } from '../storage/pg-helpers.js';
import { TcpProxy } from '../storage/tcp-proxy.js';
import { Agent, SVC, authorizeQuery, introspect, obtainCode, pkce, redeem, request, sharedDatabase, startInstance, token, type Instance, type Reply, type SharedDatabase } from './cluster.js';

const [pgUp, redisUp] = await Promise.all([postgresAvailable(), redisAvailable()]);
const pgGate = serviceGate('PostgreSQL', pgUp);
const redisGate = pgGate.skip === false ? serviceGate('Redis', redisUp) : pgGate;
if (pgGate.skip === false) await dropStaleTestData({ redis: redisUp });

const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable; try again later' };
const INTERNAL = /postgres|redis|ECONN|SELECT|UPDATE|INSERT|artifacts|schema|stack|at \S+:\d+/i;

interface Sample {
  what: string;
  started: number;
  ended: number;
  status: number;
  retryAfter: string | null;
  location: string | null;
  body: string;
}

/** Run `workers` loops of `request` until `stop()`; every reply (or network error, status 0) is kept. */
function load(workers: number, fire: (i: number) => Promise<{ what: string; reply: Reply }>): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      const started = Date.now();
      try {
        const { what, reply } = await fire(w + i * workers);
        samples.push({ what, started, ended: Date.now(), status: reply.status, retryAfter: reply.headers.get('retry-after'), location: reply.headers.get('location'), body: reply.body });
      } catch (err) {
        samples.push({ what: 'network', started, ended: Date.now(), status: 0, retryAfter: null, location: null, body: String(err) });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return {
    samples,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * What a reply says: `ok`, `unavailable` (the generic 503 with Retry-After and no internal text —
 * JSON at the token endpoint, an HTML page at /authorize before the redirect URI is trusted — or,
 * once it is trusted, a redirect to the client with `error=temporarily_unavailable`, RFC 6749
 * §4.1.2.1), or `bad` (anything else: a 500, a dropped connection, another error).
 */
function classify(s: Sample): 'ok' | 'unavailable' | 'bad' {
  if (s.status === 200) return 'ok';
  if (s.status === 302 || s.status === 303) {
    const location = s.location ?? '';
    if (/[?&]error=temporarily_unavailable(&|$)/.test(location)) return 'unavailable';
    return /[?&]error=/.test(location) ? 'bad' : 'ok';
  }
  if (s.status !== 503) return 'bad';
  // The load balancer's probe: 503 and which check failed (no Retry-After: it is polled anyway).
  if (s.what === 'readyz') return s.body === '{"status":"unavailable","check":"storage"}' ? 'unavailable' : 'bad';
  if (s.retryAfter === null || !/^\d+$/.test(s.retryAfter) || INTERNAL.test(s.body)) return 'bad';
  if (s.what === 'authorize') return s.body.includes('<code>temporarily_unavailable</code>') ? 'unavailable' : 'bad';
  try {
    return JSON.stringify(JSON.parse(s.body)) === JSON.stringify(UNAVAILABLE) ? 'unavailable' : 'bad';
  } catch {
    return 'bad';
  }
}

/** No 500, no dropped connection, no internal text: every reply is `ok` or the generic `unavailable`. */
function assertOutageReplies(samples: Sample[]): void {
  const bad = samples.filter((s) => classify(s) === 'bad');
  assert.deepEqual(bad.map((s) => `${s.what} ${s.status} ${s.location ?? ''} ${s.body.slice(0, 300)}`), [], 'no 500, no dropped connection, no internal text');
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) assert.fail(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

(pgGate.skip === false ? describe : describe.skip)('PostgreSQL outage under load', () => {
  let db: SharedDatabase;
  let proxy: TcpProxy;
  let server: Instance;

  before(async () => {
    db = await sharedDatabase({ redis: false });
    proxy = await TcpProxy.start(Number(new URL(POSTGRES_URL).port || 5432));
    const viaProxy = new URL(db.databaseUrl);
    viaProxy.port = String(proxy.port);
    server = await startInstance('P', db.env({ DATABASE_URL: viaProxy.href }));
  });

  after(async () => {
    try {
      await server?.stop();
      await proxy?.close();
    } finally {
      await db?.drop();
    }
  });

  it('503 temporarily_unavailable with Retry-After while PostgreSQL is cut, no 500; service resumes by itself', async () => {
    // Tokens issued before the outage, checked again after it.
    const agent = new Agent(db.issuer);
    const { code, verifier } = await obtainCode(agent, { authorize: server, login: server, consent: server });
    const before = await redeem(server, code, verifier);
    assert.equal(before.status, 200, before.body);
    const issued = before.json<{ access_token: string; refresh_token: string }>();
    const pending = await obtainCode(agent, { authorize: server, login: server, consent: server });

    const { samples, stop } = load(6, async (i) => {
      switch (i % 4) {
        case 0:
          return { what: 'token', reply: await token(server, SVC, { grant_type: 'client_credentials', scope: 'api:read' }) };
        case 1:
          return { what: 'introspect', reply: await request(server, 'POST', '/introspect', { form: { token: issued.access_token }, headers: { authorization: `Basic ${Buffer.from(`web:web-secret-0123456789-abcdefghijklmnop`).toString('base64')}` } }) };
        case 2:
          return { what: 'authorize', reply: await agent.go(server, 'GET', `/authorize?${authorizeQuery(pkce().challenge)}`) };
        default:
          return { what: 'readyz', reply: await request(server, 'GET', '/readyz') };
      }
    });
    await new Promise((r) => setTimeout(r, 800));
    proxy.cut();
    const cutAt = Date.now();
    // A redemption during the outage fails cleanly and does not spend the code.
    const during = await redeem(server, pending.code, pending.verifier);
    await new Promise((r) => setTimeout(r, 2500));
    proxy.restore();
    const restoredAt = Date.now();
    const recoveredIn = await waitFor('a token request succeeds again', async () => (await token(server, SVC, { grant_type: 'client_credentials' })).status === 200, 15_000);
    await new Promise((r) => setTimeout(r, 800));
    await stop();

    assert.equal(during.status, 503, during.body);
    assert.deepEqual(during.json(), UNAVAILABLE);
    assertOutageReplies(samples);
    const inOutage = samples.filter((s) => s.started > cutAt + 200 && s.ended < restoredAt);
    assert.ok(inOutage.length > 20, `requests during the outage: ${inOutage.length}`);
    for (const s of inOutage) assert.equal(classify(s), 'unavailable', `${s.what} during the outage: ${s.status} ${s.body.slice(0, 200)}`);
    assert.ok(inOutage.some((s) => s.what === 'authorize' && s.status === 503), '/authorize: 503 page while the client cannot be looked up');
    assert.ok(inOutage.every((s) => s.ended - s.started < 2000), 'requests fail fast during the outage (no hang)');
    const settled = samples.filter((s) => s.started > restoredAt + recoveredIn + 300);
    assert.ok(settled.length > 10, `requests after recovery: ${settled.length}`);
    for (const s of settled) assert.equal(classify(s), 'ok', `${s.what} after recovery: ${s.status} ${s.location ?? ''} ${s.body.slice(0, 200)}`);
    console.log(`# PostgreSQL cut for ${restoredAt - cutAt} ms: ${inOutage.length} requests answered 503; service back ${recoveredIn} ms after the restore, without a restart`);

    // Nothing half-written: the code refused during the outage is still good, earlier tokens hold.
    const after = await redeem(server, pending.code, pending.verifier);
    assert.equal(after.status, 200, after.body);
    assert.equal((await introspect(server, { id: 'web', secret: 'web-secret-0123456789-abcdefghijklmnop' }, issued.refresh_token)).active, true);
    assert.equal((await request(server, 'GET', '/readyz')).status, 200);
    assert.doesNotMatch(server.stdout + server.stderr, /"level":(?:60)/, 'no fatal log');
  });
});

(redisGate.skip === false ? describe : describe.skip)('Redis outage under load (PostgreSQL + Redis)', () => {
  let db: SharedDatabase;
  let proxy: TcpProxy;
  let server: Instance;

  before(async () => {
    db = await sharedDatabase({ redis: true });
    proxy = await TcpProxy.start(Number(new URL(REDIS_URL).port || 6379));
    const viaProxy = new URL(db.redisUrl!);
    viaProxy.port = String(proxy.port);
    server = await startInstance('R', db.env({ REDIS_URL: viaProxy.href }));
  });

  after(async () => {
    try {
      await server?.stop();
      await proxy?.close();
    } finally {
      await db?.drop();
    }
  });

  it('what needs Redis gets 503 while it is cut, the rest keeps working; it reconnects by itself', async () => {
    const agent = new Agent(db.issuer);
    const pending = await obtainCode(agent, { authorize: server, login: server, consent: server });
    const { samples, stop } = load(4, async (i) =>
      i % 2 === 0
        ? { what: 'authorize', reply: await agent.go(server, 'GET', `/authorize?${authorizeQuery(pkce().challenge)}`) }
        : { what: 'token', reply: await token(server, SVC, { grant_type: 'client_credentials', scope: 'api:read' }) },
    );
    await new Promise((r) => setTimeout(r, 500));
    proxy.cut();
    const cutAt = Date.now();
    const during = await redeem(server, pending.code, pending.verifier);
    await new Promise((r) => setTimeout(r, 2000));
    proxy.restore();
    const restoredAt = Date.now();
    const recoveredIn = await waitFor('/authorize works again', async () => {
      const reply = await agent.go(server, 'GET', `/authorize?${authorizeQuery(pkce().challenge)}`);
      return (reply.status === 302 || reply.status === 303) && !(reply.headers.get('location') ?? '').includes('error=');
    }, 15_000);
    await new Promise((r) => setTimeout(r, 500));
    await stop();

    assert.equal(during.status, 503, during.body);
    assertOutageReplies(samples);
    const inOutage = samples.filter((s) => s.started > cutAt + 200 && s.ended < restoredAt);
    const authorizeDuring = inOutage.filter((s) => s.what === 'authorize');
    const tokenDuring = inOutage.filter((s) => s.what === 'token');
    // The client is known (PostgreSQL), the browser session is not (Redis): back to the client with
    // error=temporarily_unavailable, as RFC 6749 §4.1.2.1 says.
    assert.ok(
      authorizeDuring.length > 5 && authorizeDuring.every((s) => classify(s) === 'unavailable' && s.status === 302),
      `authorize during the outage: ${authorizeDuring.map((s) => `${s.status} ${s.location ?? ''}`).join(',')}`,
    );
    assert.ok(tokenDuring.length > 5 && tokenDuring.every((s) => s.status === 200), `client_credentials (PostgreSQL only) during the outage: ${tokenDuring.map((s) => s.status).join(',')}`);
    console.log(`# Redis cut for ${restoredAt - cutAt} ms: /authorize sent error=temporarily_unavailable, client_credentials kept working; back ${recoveredIn} ms after the restore`);
    const after = await redeem(server, pending.code, pending.verifier);
    assert.equal(after.status, 200, `the code refused during the outage is still good: ${after.body}`);
  });
});
