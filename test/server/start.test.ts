import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { loadConfig } from '../../src/server/config.js';
import { createPinoLogger, toLibraryLogger } from '../../src/server/logger.js';
import { startServer, type RunningServer } from '../../src/server/start.js';
import { basic, cleanup, tempDir } from './helpers.js';

const running: RunningServer[] = [];
after(async () => {
  await Promise.allSettled(running.map((r) => r.close()));
  cleanup();
});

/** A logger that keeps its lines, for assertions. */
function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = toLibraryLogger(createPinoLogger({ level: 'debug', stream }));
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function configIn(files: { config?: unknown }, env: Record<string, string> = {}) {
  const cwd = tempDir('portcullis-start-');
  if (files.config !== undefined) {
    writeFileSync(`${cwd}/portcullis.config.json`, JSON.stringify(files.config));
  }
  return loadConfig({ PORT: '0', DATABASE_URL: 'memory:', ...env }, cwd);
}

async function start(config: ReturnType<typeof loadConfig>, extra: Parameters<typeof startServer>[1] = {}) {
  let banner = '';
  const server = await startServer(config, { logger: captureLogger().logger, write: (t) => (banner += t), ...extra });
  running.push(server);
  return { server, banner: () => banner };
}

async function clientCredentials(base: string, id: string, secret: string): Promise<Response> {
  return fetch(`${base}/token`, {
    method: 'POST',
    headers: { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
}

describe('startServer', () => {
  test('with port 0 and no issuer, the issuer is computed from the real port', async () => {
    const { server, banner } = await start(configIn({}));
    const port = Number(new URL(server.url).port);
    assert.ok(port > 0);
    assert.equal(server.portcullis.issuer, `http://127.0.0.1:${port}`);
    assert.equal(server.url, server.portcullis.issuer);
    assert.match(banner(), new RegExp(`issuer:\\s+http://127\\.0\\.0\\.1:${port}\\n`));
    assert.ok(server.demoClient !== undefined);
    const res = await clientCredentials(server.url, 'demo-client', server.demoClient.client_secret);
    assert.equal(res.status, 200);
    assert.match(banner(), /storage is in memory/);
    await server.close();
  });

  test('an explicit issuer is kept while the server listens on the given address', async () => {
    const { server } = await start(configIn({}, { PORTCULLIS_ISSUER: 'https://auth.example.com' }));
    assert.equal(server.portcullis.issuer, 'https://auth.example.com');
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const meta = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
    assert.equal(meta.token_endpoint, 'https://auth.example.com/token');
    await server.close();
  });

  test('with PORTCULLIS_COALESCE_WRITES false and true alike, 20 concurrent token requests each get their own token', async () => {
    for (const flag of ['false', 'true']) {
      const { server } = await start(configIn({}, { PORTCULLIS_COALESCE_WRITES: flag }));
      const responses = await Promise.all(Array.from({ length: 20 }, () => clientCredentials(server.url, 'demo-client', server.demoClient!.client_secret)));
      assert.deepEqual([...new Set(responses.map((r) => r.status))], [200], flag);
      const tokens = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { access_token: string }).access_token)));
      assert.equal(tokens.size, 20, flag);
      await server.close();
    }
  });

  test('the server timeouts are set', async () => {
    const { server } = await start(configIn({}));
    assert.equal(server.server.requestTimeout, 30_000);
    assert.equal(server.server.headersTimeout, 10_000);
    assert.equal(server.server.keepAliveTimeout, 5_000);
    await server.close();
  });

  test('config clients and users are applied at start; a client without a secret gets one, shown once', async () => {
    const config = configIn({
      config: {
        clients: [
          { client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['client_credentials'] },
          { client_id: 'gen', grant_types: ['client_credentials'] },
        ],
        users: [{ username: 'alice', password: 'correct horse', claims: { email: 'alice@example.com' } }],
        grants: { password: true },
      },
    });
    const { server, banner } = await start(config);
    assert.equal(server.demoClient, undefined, 'no demo client when a config file is given');
    assert.equal(server.generatedSecrets.length, 1);
    const generated = server.generatedSecrets[0]!;
    assert.equal(generated.client_id, 'gen');
    assert.ok(banner().includes(generated.client_secret));
    assert.match(banner(), /! the password grant is enabled/);
    assert.match(banner(), /! client secrets shorter than 32 characters \(svc\)/);
    assert.equal((await clientCredentials(server.url, 'svc', 'a-long-client-secret')).status, 200);
    assert.equal((await clientCredentials(server.url, 'gen', generated.client_secret)).status, 200);
    const alice = await server.portcullis.users.findByUsername('alice');
    assert.deepEqual(alice?.claims, { email: 'alice@example.com' });
    await server.close();
  });

  test('a config client for a grant the server does not serve stops start-up with the client and field named', async () => {
    assert.throws(
      () => configIn({ config: { clients: [{ client_id: 'web', client_secret: 'a-long-client-secret', grant_types: ['password'] }] } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^config: clients\[0\]: client "web": field "grant_types" lists "password", which is off unless grants.password is true/);
        return true;
      },
    );
  });

  test('an address in use is reported plainly', async () => {
    const { server } = await start(configIn({}));
    const port = new URL(server.url).port;
    const taken = configIn({}, { PORT: port });
    await assert.rejects(startServer(taken, { logger: captureLogger().logger, write: () => {} }), /cannot listen on 127\.0\.0\.1:\d+: the address is already in use/);
    await server.close();
  });

  test('close() lets an in-flight request finish before it resolves', async () => {
    const { server } = await start(configIn({}));
    const secret = server.demoClient!.client_secret;
    const body = 'grant_type=client_credentials';
    const { port } = new URL(server.url);
    const responded = new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/token', headers: { authorization: basic('demo-client', secret), 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 5));
      setTimeout(() => req.end(body.slice(5)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closed, false, 'close waits for the request in flight');
    assert.equal(await responded, 200);
    await closing;
    await assert.rejects(fetch(`${server.url}/healthz`), 'no longer accepting connections');
  });

  test('expired rows are swept periodically; a failing sweep is logged and does not stop the timer', async () => {
    const capture = captureLogger();
    const config = configIn({});
    const server = await startServer(config, { logger: capture.logger, write: () => {}, sweepIntervalSeconds: 0.05 });
    running.push(server);
    let calls = 0;
    server.portcullis.storage.sweepExpired = async (_now: number, limit?: number) => {
      calls++;
      assert.equal(limit, 1000);
      if (calls === 1) throw new Error('disk on fire');
      return 3;
    };
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(calls >= 2, `swept ${calls} times`);
    assert.ok(capture.lines().some((l) => l.msg === 'sweeping expired rows failed'));
    await server.close();
  });
});

describe('server logger', () => {
  test('credentials are redacted wherever they are likely to appear', () => {
    const capture = captureLogger();
    capture.logger.info({
      req: { headers: { authorization: 'Basic c2VjcmV0', cookie: 'sid=abc', host: 'auth.example.com' } },
      client_secret: 's1',
      params: { password: 'p1', code: 'c1', refresh_token: 'r1', code_verifier: 'v1', client_assertion: 'a1', grant_type: 'password' },
      body: { nested: { access_token: 'at1', token: 't1', assertion: 'as1' } },
    }, 'request');
    const [line] = capture.lines();
    const text = JSON.stringify(line);
    for (const secret of ['c2VjcmV0', 'sid=abc', 's1', 'p1', 'c1', 'r1', 'v1', 'a1', 'at1', 't1', 'as1']) {
      assert.ok(!text.includes(`"${secret}"`) && !text.includes(secret + '"'), `${secret} leaked: ${text}`);
    }
    assert.equal((line?.req as { headers: Record<string, string> }).headers.authorization, '[redacted]');
    assert.equal((line?.req as { headers: Record<string, string> }).headers.host, 'auth.example.com');
    assert.equal((line?.params as Record<string, string>).grant_type, 'password');
  });

  test('LOG_LEVEL silent logs nothing', () => {
    const chunks: string[] = [];
    const stream = new Writable({ write(chunk: Buffer, _e, done) { chunks.push(chunk.toString()); done(); } });
    const logger = toLibraryLogger(createPinoLogger({ level: 'silent', stream }));
    logger.error({ a: 1 }, 'nothing');
    assert.deepEqual(chunks, []);
  });
});
