/**
 * Two ready-to-run servers (separate processes, 127.0.0.1, different ports) on one PostgreSQL
 * database — and again with Redis for short-lived state —, as behind a load balancer: one issuer,
 * one key-encryption secret. Whatever one instance does, the other sees:
 * a code issued on A is redeemed on B; a token revoked on B is inactive on A at once; a key rotated
 * with the CLI signs on A and verifies on B after one key reload (PORTCULLIS_KEY_RELOAD_SECONDS=1);
 * login on A and consent on B; and races across both instances have exactly one winner, no 5xx.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postgresAvailable, redisAvailable, serviceGate, dropStaleTestData } from '../storage/pg-helpers.js';
import {
  Agent,
  SVC,
  WEB,
  introspect,
  jwtHeader,
  obtainCode,
  redeem,
  refresh,
  request,
  runCli,
  sharedDatabase,
  startInstance,
  token,
  type Instance,
  type SharedDatabase,
} from './cluster.js';

const [pgUp, redisUp] = await Promise.all([postgresAvailable(), redisAvailable()]);
const pgGate = serviceGate('PostgreSQL', pgUp);
const redisGate = pgGate.skip === false ? serviceGate('Redis', redisUp) : pgGate;
if (pgGate.skip === false) await dropStaleTestData({ redis: redisUp });

for (const backend of ['postgres', 'postgres+redis'] as const) {
  const gate = backend === 'postgres' ? pgGate : redisGate;
  const suite = gate.skip === false ? describe : describe.skip;

  suite(`two instances on ${backend}`, () => {
    let db: SharedDatabase;
    let a: Instance;
    let b: Instance;

    before(async () => {
      db = await sharedDatabase({ redis: backend === 'postgres+redis' });
      // One after the other: the first creates the schema and the first signing keys.
      a = await startInstance('A', db.env());
      b = await startInstance('B', db.env());
    });

    after(async () => {
      try {
        await Promise.all([a?.stop(), b?.stop()]);
      } finally {
        await db?.drop();
      }
    });

    it('both banners name the storage without the password, and both are ready', async () => {
      const expected = backend === 'postgres' ? /storage:\s+postgres postgres:\/\/postgres@127\.0\.0\.1:5432\/test\?schema=pcmi_\S+\n/ : /storage:\s+postgres \S+ \+ redis redis:\/\/127\.0\.0\.1:6379/;
      for (const instance of [a, b]) {
        assert.match(instance.stdout, expected);
        assert.equal((await request(instance, 'GET', '/readyz')).status, 200);
      }
    });

    it('a code issued on A is redeemed on B; the tokens work on both', async () => {
      const agent = new Agent(db.issuer);
      const { code, verifier } = await obtainCode(agent, { authorize: a, login: a, consent: a });
      const res = await redeem(b, code, verifier);
      assert.equal(res.status, 200, res.body);
      const tokens = res.json<{ access_token: string; refresh_token: string }>();
      for (const instance of [a, b]) {
        assert.equal((await introspect(instance, WEB, tokens.access_token)).active, true);
        assert.equal((await introspect(instance, WEB, tokens.refresh_token)).active, true);
      }
      // The code is spent everywhere: a second redemption on A fails.
      assert.equal((await redeem(a, code, verifier)).status, 400);
    });

    it('login on A and consent on B (sessions, interactions and CSRF keys are shared)', async () => {
      const agent = new Agent(db.issuer);
      const { code, verifier } = await obtainCode(agent, { authorize: a, login: a, consent: b });
      const res = await redeem(a, code, verifier);
      assert.equal(res.status, 200, res.body);
      // Signed in on A: B knows the session, and the consent is remembered there too.
      const again = await obtainCode(agent, { authorize: b, login: b, consent: b });
      assert.equal((await redeem(b, again.code, again.verifier)).status, 200);
    });

    it('a token revoked on B is inactive on A at once', async () => {
      const agent = new Agent(db.issuer);
      const { code, verifier } = await obtainCode(agent, { authorize: a, login: a, consent: a });
      const tokens = (await redeem(a, code, verifier)).json<{ access_token: string; refresh_token: string }>();
      assert.equal((await introspect(a, WEB, tokens.access_token)).active, true);
      const revoked = await request(b, 'POST', '/revoke', { form: { token: tokens.refresh_token }, headers: { authorization: `Basic ${Buffer.from(`${WEB.id}:${WEB.secret}`).toString('base64')}` } });
      assert.equal(revoked.status, 200, revoked.body);
      assert.deepEqual(await introspect(a, WEB, tokens.refresh_token), { active: false });
      assert.deepEqual(await introspect(a, WEB, tokens.access_token), { active: false }, 'the grant is revoked: its JWT access token too');
      assert.equal((await refresh(a, tokens.refresh_token)).status, 400);

      // A client_credentials JWT revoked on B (its jti recorded) is inactive on A.
      const cc = (await token(a, SVC, { grant_type: 'client_credentials', scope: 'api:read' })).json<{ access_token: string }>();
      assert.equal((await introspect(a, SVC, cc.access_token)).active, true);
      const res = await request(b, 'POST', '/revoke', { form: { token: cc.access_token }, headers: { authorization: `Basic ${Buffer.from(`${SVC.id}:${SVC.secret}`).toString('base64')}` } });
      assert.equal(res.status, 200);
      assert.deepEqual(await introspect(a, SVC, cc.access_token), { active: false });
    });

    it('20 concurrent redemptions of one code split across A and B: exactly one 200, no 5xx', async () => {
      const agent = new Agent(db.issuer);
      const { code, verifier } = await obtainCode(agent, { authorize: a, login: a, consent: b });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => redeem(i % 2 === 0 ? a : b, code, verifier)));
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s >= 500).length, 0, `statuses: ${statuses.join(',')}`);
      const winners = statuses.filter((s) => s === 200).length;
      assert.ok(winners <= 1, `never two winners; statuses: ${statuses.join(',')}`);
      for (const r of results) if (r.status !== 200) assert.equal(r.json().error, 'invalid_grant');
      assert.equal(winners, 1);
    });

    it('10 concurrent refreshes of one refresh token across A and B: exactly one 200, no 5xx', async () => {
      const agent = new Agent(db.issuer);
      const { code, verifier } = await obtainCode(agent, { authorize: b, login: b, consent: a });
      const tokens = (await redeem(b, code, verifier)).json<{ refresh_token: string }>();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => refresh(i % 2 === 0 ? a : b, tokens.refresh_token)));
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s >= 500).length, 0, `statuses: ${statuses.join(',')}`);
      // One new token family: the winner's refresh token is the only one ever minted (and, the
      // losers having presented a rotated token, the grant is revoked as RFC 9700 §4.14.2 asks).
      const winner = results.find((r) => r.status === 200)!.json<{ refresh_token: string }>();
      assert.notEqual(winner.refresh_token, tokens.refresh_token);
    });

    it('a key rotated with the CLI signs on A and verifies on B after one reload', async () => {
      const before = jwtHeader((await token(a, SVC, { grant_type: 'client_credentials', scope: 'api:read' })).json<{ access_token: string }>().access_token).kid;
      const rotated = await runCli(['keys', 'rotate', '--now', '--json'], db.env());
      assert.equal(rotated.code, 0, rotated.stderr);
      const kid = (JSON.parse(rotated.stdout) as { kid: string }).kid;
      assert.notEqual(kid, before);
      const started = Date.now();
      // Both instances reload every second (PORTCULLIS_KEY_RELOAD_SECONDS=1).
      let signed: string | undefined;
      while (signed === undefined) {
        const jwt = (await token(a, SVC, { grant_type: 'client_credentials', scope: 'api:read' })).json<{ access_token: string }>().access_token;
        if (jwtHeader(jwt).kid === kid) signed = jwt;
        else if (Date.now() - started > 5000) assert.fail('A did not sign with the rotated key within 5 s');
        else await new Promise((r) => setTimeout(r, 100));
      }
      const signedAfterMs = Date.now() - started;
      for (;;) {
        if ((await introspect(b, SVC, signed)).active === true) break;
        if (Date.now() - started > 5000) assert.fail('B did not verify the rotated key within 5 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const jwks = (await request(b, 'GET', '/jwks')).json<{ keys: { kid: string }[] }>();
      assert.ok(jwks.keys.some((k) => k.kid === kid), 'B publishes the new key');
      assert.ok(jwks.keys.some((k) => k.kid === before), 'B still publishes the old key');
      console.log(`# ${backend}: rotated key signing on A after ${signedAfterMs} ms, verified on B after ${Date.now() - started} ms (reload interval 1 s)`);
      // The old key's tokens still verify on both.
    });

    it('the CLI manages clients and users in the shared database; both instances see them at once', async () => {
      const added = await runCli(['clients', 'add', 'cli-svc', '--secret', 'cli-secret-0123456789-abcdefghij', '--scope', 'api:read', '--json'], db.env());
      assert.equal(added.code, 0, added.stderr);
      for (const instance of [a, b]) {
        const res = await token(instance, { id: 'cli-svc', secret: 'cli-secret-0123456789-abcdefghij' }, { grant_type: 'client_credentials', scope: 'api:read' });
        assert.equal(res.status, 200, res.body);
      }
      const listed = await runCli(['clients', 'list', '--json'], db.env());
      assert.deepEqual((JSON.parse(listed.stdout) as { client_id: string }[]).map((c) => c.client_id).sort(), ['cli-svc', 'svc', 'web']);
      const removed = await runCli(['clients', 'remove', 'cli-svc'], db.env());
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal((await token(b, { id: 'cli-svc', secret: 'cli-secret-0123456789-abcdefghij' }, { grant_type: 'client_credentials' })).status, 401);
    });
  });
}
