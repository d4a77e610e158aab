/**
 * The runnable snippets of docs/adapters.md and docs/resource-server.md: every file of
 * examples/adapters/ is started here and answers real requests on 127.0.0.1, and the docs show
 * exactly its snippet region (with the package's import paths).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createApp as expressApp } from '../../examples/adapters/express.js';
import { createApp as fastifyApp } from '../../examples/adapters/fastify.js';
import { createApp as honoApp } from '../../examples/adapters/hono.js';
import { createApp as hapiApp } from '../../examples/adapters/hapi.js';
import { createApp as nodeApp } from '../../examples/adapters/node.js';
import { createApi } from '../../examples/adapters/resource-server.js';
import { toNodeListener } from '../../src/adapters/node-http.js';
import { createPortcullis } from '../../src/provider.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';
import { basic, fetchBridge, raw } from './servers.js';

const SVC = { id: 'svc', secret: 'svc-secret-change-me-0123456789' };
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A server whose port is known before the app exists (the issuer needs it). */
async function reserve(): Promise<{ server: Server; origin: string }> {
  const server = createServer();
  const origin = await listening(server);
  return { server, origin };
}

/** The checks every example passes: discovery from the issuer, a token, and the guarded /api/me. */
async function exercise(origin: string, issuer: string): Promise<void> {
  const meta = await raw('GET', `${origin}/oauth/.well-known/openid-configuration`, { headers: { host: 'spoofed.example' } });
  assert.equal(meta.status, 200, meta.body);
  assert.equal(JSON.parse(meta.body).token_endpoint, `${issuer}/token`);
  const token = await raw('POST', `${origin}/oauth/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: 'grant_type=client_credentials&scope=api%3Aread' });
  assert.equal(token.status, 200, token.body);
  const accessToken = (JSON.parse(token.body) as { access_token: string }).access_token;
  const denied = await raw('GET', `${origin}/api/me`);
  assert.equal(denied.status, 401);
  assert.match(String(denied.headers['www-authenticate']), /^Bearer realm=/);
  const me = await raw('GET', `${origin}/api/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(me.status, 200, me.body);
  assert.deepEqual(JSON.parse(me.body), { sub: SVC.id, scope: ['api:read'] });
}

function track(portcullis: Portcullis): void {
  cleanups.push(() => portcullis.close());
}

describe('examples/adapters: each snippet runs and answers over HTTP', () => {
  it('express.ts', async () => {
    const { server, origin } = await reserve();
    const { app, portcullis } = await expressApp(`${origin}/oauth`);
    track(portcullis);
    server.on('request', app);
    await exercise(origin, `${origin}/oauth`);
  });

  it('fastify.ts', async () => {
    const { app, portcullis } = await fastifyApp('http://127.0.0.1:3000/oauth');
    track(portcullis);
    cleanups.push(() => app.close());
    await app.listen({ port: 0, host: '127.0.0.1' });
    const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await exercise(origin, 'http://127.0.0.1:3000/oauth');
  });

  it('hono.ts (behind a node:http bridge, as @hono/node-server would serve it)', async () => {
    const { server, origin } = await reserve();
    const { app, portcullis } = await honoApp(`${origin}/oauth`);
    track(portcullis);
    server.on('request', fetchBridge((request) => app.fetch(request)));
    await exercise(origin, `${origin}/oauth`);
  });

  it('hapi.ts', async () => {
    const { server, portcullis } = await hapiApp('http://127.0.0.1:3000/oauth', 0);
    track(portcullis);
    await server.start();
    cleanups.push(() => server.stop());
    await exercise(`http://127.0.0.1:${server.info.port}`, 'http://127.0.0.1:3000/oauth');
  });

  it('node.ts (node:http, and the fetch handler)', async () => {
    const { server: reserved, origin } = await reserve();
    const { server, fetchHandler, portcullis } = await nodeApp(`${origin}/oauth`);
    track(portcullis);
    reserved.on('request', (req, res) => server.emit('request', req, res));
    await exercise(origin, `${origin}/oauth`);
    const meta = await fetchHandler(new Request(`${origin}/oauth/.well-known/openid-configuration`));
    assert.equal(((await meta.json()) as { issuer: string }).issuer, `${origin}/oauth`);
  });

  it('resource-server.ts: JWT and opaque tokens from an issuer in "another process"', async () => {
    const as = createServer();
    const issuer = await listening(as);
    const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
    track(portcullis);
    as.on('request', toNodeListener(portcullis));
    await portcullis.clients.upsert({ client_id: 'jwt-app', client_secret: 'jwt-app-secret-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });
    await portcullis.clients.upsert({ client_id: 'opaque-app', client_secret: 'opaque-app-secret-0123456789', grant_types: ['client_credentials'], scope: 'api:read', access_token_format: 'opaque' });
    await portcullis.clients.upsert({ client_id: 'api', client_secret: 'api-secret-0123456789abcdef', grant_types: ['client_credentials'], resource_server_audiences: [issuer] });
    const api = await listening(createApi({ issuer, audience: issuer, clientId: 'api', clientSecret: 'api-secret-0123456789abcdef' }));

    for (const [client, secret, via] of [['jwt-app', 'jwt-app-secret-0123456789', 'jwt'], ['opaque-app', 'opaque-app-secret-0123456789', 'introspection']] as const) {
      const token = await raw('POST', `${issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client, secret) }, body: 'grant_type=client_credentials&scope=api%3Aread' });
      const accessToken = (JSON.parse(token.body) as { access_token: string }).access_token;
      const res = await raw('GET', `${api}/`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(JSON.parse(res.body), { hello: client, client, via });
    }
    const denied = await raw('GET', `${api}/?access_token=x`);
    assert.equal(denied.status, 400);
    assert.match(String(denied.headers['www-authenticate']), /error="invalid_request"/);
  });
});

/** The import paths of the repository, as a user of the package writes them. */
const PACKAGE_PATHS: Record<string, string> = {
  '../../src/index.js': 'portcullis',
  '../../src/storage/memory.js': 'portcullis/storage/memory',
  '../../src/adapters/express.js': 'portcullis/express',
  '../../src/adapters/fastify.js': 'portcullis/fastify',
  '../../src/adapters/hono.js': 'portcullis/hono',
  '../../src/adapters/hapi.js': 'portcullis/hapi',
};

function snippet(file: string): string {
  const text = readFileSync(join(REPO_ROOT, 'examples/adapters', file), 'utf8');
  const m = /\/\/ #region snippet\n([\s\S]*?)\/\/ #endregion/.exec(text);
  assert.ok(m !== null, `${file} has a snippet region`);
  let code = m[1]!;
  for (const [from, to] of Object.entries(PACKAGE_PATHS)) code = code.split(`'${from}'`).join(`'${to}'`);
  assert.doesNotMatch(code, /'\.\.\//, `${file}: every import maps to a package path`);
  return code.trimEnd();
}

describe('docs show the examples verbatim (package import paths)', () => {
  const adapters = readFileSync(join(REPO_ROOT, 'docs/adapters.md'), 'utf8');
  const resource = readFileSync(join(REPO_ROOT, 'docs/resource-server.md'), 'utf8');
  for (const [doc, name, files] of [
    [adapters, 'docs/adapters.md', ['node.ts', 'express.ts', 'fastify.ts', 'hono.ts', 'hapi.ts']],
    [resource, 'docs/resource-server.md', ['resource-server.ts']],
  ] as const) {
    for (const file of files) {
      it(`${name} shows examples/adapters/${file}`, () => {
        assert.ok(doc.includes('```ts\n' + snippet(file) + '\n```'), `${name} contains the snippet of ${file}:\n${snippet(file)}`);
      });
    }
  }
});
