/**
 * Crash test: instance A is killed with SIGKILL in the middle of a burst of code redemptions and
 * refresh-token rotations (at two points: after its first answer, and half-way), then restarted.
 * Opaque access tokens, so that every token minted is a row to inspect.
 *
 * Checked afterwards, on the restarted A and on B (which never stopped):
 * - every 200 the client saw still holds: its access token (and, for a redemption, its refresh
 *   token) introspects active;
 * - requests whose answer was lost, retried on B, get 200 or invalid_grant — never a 5xx;
 * - in the database: no access or refresh token exists whose code is not consumed; no code
 *   produced two token families (at most one access and one refresh token per redeemed code's
 *   grant); no rotation minted twice (at most one live refresh token per grant).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tokenId } from '../../src/core/crypto.js';
import { postgresAvailable, redisAvailable, serviceGate, withPg, dropStaleTestData } from '../storage/pg-helpers.js';
import {
  Agent,
  WEB,
  authorizeQuery,
  codeFrom,
  introspect,
  obtainCode,
  pkce,
  redeem,
  refresh,
  sharedDatabase,
  startInstance,
  withRedis,
  type Instance,
  type Reply,
  type SharedDatabase,
} from './cluster.js';

const [pgUp, redisUp] = await Promise.all([postgresAvailable(), redisAvailable()]);
const pgGate = serviceGate('PostgreSQL', pgUp);
const redisGate = pgGate.skip === false ? serviceGate('Redis', redisUp) : pgGate;
if (pgGate.skip === false) await dropStaleTestData({ redis: redisUp });

const CODES = 30;
const CHAINS = 10;


type Outcome = { reply: Reply } | { lost: string };

interface Tokens {
  access_token: string;
  refresh_token: string;
}

/** Codes for `n` authorization requests of the signed-in agent (consent remembered: no pages). */
async function codes(agent: Agent, on: Instance, n: number): Promise<{ code: string; verifier: string }[]> {
  const out: { code: string; verifier: string }[] = [];
  for (let i = 0; i < n; i++) {
    const { verifier, challenge } = pkce();
    out.push({ code: codeFrom(await agent.go(on, 'GET', `/authorize?${authorizeQuery(challenge)}`)), verifier });
  }
  return out;
}

async function attempt(fn: () => Promise<Reply>): Promise<Outcome> {
  try {
    return { reply: await fn() };
  } catch (err) {
    return { lost: String(err) };
  }
}

for (const backend of ['postgres', 'postgres+redis'] as const) {
  const gate = backend === 'postgres' ? pgGate : redisGate;

  (gate.skip === false ? describe : describe.skip)(`SIGKILL during redemptions and refreshes (${backend})`, () => {
    let db: SharedDatabase;
    let a: Instance;
    let b: Instance;
    let agent: Agent;

    before(async () => {
      db = await sharedDatabase({ redis: backend === 'postgres+redis', config: { accessTokenFormat: 'opaque' } });
      a = await startInstance('A', db.env());
      b = await startInstance('B', db.env());
      agent = new Agent(db.issuer);
      const first = await obtainCode(agent, { authorize: b, login: b, consent: b });
      assert.equal((await redeem(b, first.code, first.verifier)).status, 200);
    });

    after(async () => {
      try {
        await Promise.all([a?.stop(), b?.stop()]);
      } finally {
        await db?.drop();
      }
    });

    /** code id → { grant id, consumed } from wherever codes live. */
    async function codeRows(): Promise<Map<string, { grant: string; consumed: boolean }>> {
      const rows = new Map<string, { grant: string; consumed: boolean }>();
      if (backend === 'postgres') {
        await withPg(async (c) => {
          for (const r of (await c.query(`SELECT id, grant_id, consumed_at FROM "${db.schema}".artifacts WHERE kind = 'authorization_code'`)).rows) {
            rows.set(r.id, { grant: r.grant_id, consumed: r.consumed_at !== null });
          }
        });
      } else {
        await withRedis(async (client) => {
          const prefix = `${db.redisPrefix!}a:authorization_code:`;
          let cursor = '0';
          do {
            const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
            cursor = next;
            for (const key of keys) {
              const [g, c] = (await client.sendCommand(['HMGET', key, 'g', 'c'])) as [string | null, string | null];
              rows.set(key.slice(prefix.length), { grant: g ?? '', consumed: c !== null });
            }
          } while (cursor !== '0');
        });
      }
      return rows;
    }

    async function tokenRows(): Promise<{ kind: string; grant_id: string; consumed: boolean; revoked: boolean }[]> {
      return withPg(async (c) =>
        (
          await c.query(
            `SELECT kind, grant_id, consumed_at IS NOT NULL AS consumed, revoked_at IS NOT NULL AS revoked FROM "${db.schema}".artifacts WHERE kind IN ('access_token', 'refresh_token')`,
          )
        ).rows,
      );
    }

    for (const [round, killAfter] of [
      [1, 1],
      [2, Math.floor((CODES + CHAINS * 3) / 2)],
    ] as const) {
      it(`round ${round}: killed after ${killAfter} answer(s); every 200 holds, nothing minted twice`, async () => {
        const burstCodes = await codes(agent, b, CODES);
        const chainStarts: Tokens[] = [];
        for (const c of await codes(agent, b, CHAINS)) {
          const res = await redeem(b, c.code, c.verifier);
          assert.equal(res.status, 200, res.body);
          chainStarts.push(res.json<Tokens>());
        }

        // The burst, all on A: each code redeemed once; each chain rotates its refresh token in turn.
        let answers = 0;
        let killed: Promise<void> | undefined;
        const answered = (): void => {
          answers++;
          if (answers >= killAfter && killed === undefined) killed = a.kill();
        };
        const redemptions = burstCodes.map(async (c) => {
          const outcome = await attempt(() => redeem(a, c.code, c.verifier, 15_000));
          if ('reply' in outcome) answered();
          return { ...c, outcome };
        });
        const chains = chainStarts.map(async (start) => {
          const seen: Tokens[] = [start];
          let last: Outcome | undefined;
          for (let i = 0; i < 5; i++) {
            last = await attempt(() => refresh(a, seen.at(-1)!.refresh_token, 15_000));
            if (!('reply' in last)) break;
            answered();
            if (last.reply.status !== 200) break;
            seen.push(last.reply.json<Tokens>());
          }
          return { seen, last: last! };
        });
        const redeemed = await Promise.all(redemptions);
        const rotated = await Promise.all(chains);
        killed ??= a.kill();
        await killed;

        const all = [...redeemed.map((r) => r.outcome), ...rotated.map((r) => r.last)];
        const replies = all.flatMap((o) => ('reply' in o ? [o.reply] : []));
        assert.deepEqual(replies.filter((r) => r.status >= 500).map((r) => `${r.status} ${r.body}`), [], 'no 5xx before the kill');
        const lost = all.filter((o) => 'lost' in o).length;
        await a.restart();

        // 1. Every 200 the client saw still holds, on the restarted A and on B.
        const won = redeemed.filter((r) => 'reply' in r.outcome && r.outcome.reply.status === 200);
        for (const r of won) {
          const tokens = (r.outcome as { reply: Reply }).reply.json<Tokens>();
          for (const instance of [a, b]) {
            assert.equal((await introspect(instance, WEB, tokens.access_token)).active, true, 'access token of a 200 redemption');
            assert.equal((await introspect(instance, WEB, tokens.refresh_token)).active, true, 'refresh token of a 200 redemption');
          }
        }
        for (const chain of rotated) {
          for (const tokens of chain.seen.slice(1)) {
            assert.equal((await introspect(b, WEB, tokens.access_token)).active, true, 'access token of a 200 refresh');
          }
          // The newest refresh token holds, unless the request carrying it was lost in the crash.
          if ('reply' in chain.last) assert.equal((await introspect(a, WEB, chain.seen.at(-1)!.refresh_token)).active, true);
        }

        // 2. Lost requests retried on B: 200 or invalid_grant, never a 5xx.
        const retried: number[] = [];
        for (const r of redeemed) {
          if ('reply' in r.outcome) continue;
          const res = await redeem(b, r.code, r.verifier);
          retried.push(res.status);
          assert.ok(res.status === 200 || (res.status === 400 && res.json().error === 'invalid_grant'), `retry: ${res.status} ${res.body}`);
        }
        for (const chain of rotated) {
          if ('reply' in chain.last) continue;
          const res = await refresh(b, chain.seen.at(-1)!.refresh_token);
          retried.push(res.status);
          assert.ok(res.status === 200 || (res.status === 400 && res.json().error === 'invalid_grant'), `retry: ${res.status} ${res.body}`);
        }

        // 3. The stored state.
        const codesById = await codeRows();
        const codeOfGrant = new Map([...codesById.values()].map((c) => [c.grant, c]));
        const tokens = await tokenRows();
        for (const t of tokens) {
          const code = codeOfGrant.get(t.grant_id);
          assert.ok(code !== undefined, `a ${t.kind} of grant ${t.grant_id} with no code`);
          assert.equal(code.consumed, true, `a ${t.kind} exists while its code is not consumed`);
        }
        for (const c of burstCodes) {
          const row = codesById.get(tokenId(c.code));
          assert.ok(row !== undefined, 'the burst code is stored');
          const family = tokens.filter((t) => t.grant_id === row.grant);
          assert.ok(family.filter((t) => t.kind === 'access_token').length <= 1, 'one code, at most one access token');
          assert.ok(family.filter((t) => t.kind === 'refresh_token').length <= 1, 'one code, at most one refresh token');
        }
        const liveByGrant = new Map<string, number>();
        for (const t of tokens) if (t.kind === 'refresh_token' && !t.consumed && !t.revoked) liveByGrant.set(t.grant_id, (liveByGrant.get(t.grant_id) ?? 0) + 1);
        for (const [grant, live] of liveByGrant) assert.ok(live <= 1, `grant ${grant} has ${live} live refresh tokens`);

        console.log(
          `# ${backend} round ${round}: killed after ${answers} answers; ${won.length}/${CODES} redemptions and ` +
            `${rotated.reduce((n, c) => n + c.seen.length - 1, 0)} refreshes answered 200; ${lost} requests lost, retried on B: ${retried.join(',') || 'none'}`,
        );
      });
    }
  });
}
