/**
 * The guard as each framework's middleware: the verified token reaches the handler
 * (`req.auth`, `request.auth`, `c.var.auth`, hapi credentials, nodeBearer's result), and failures
 * are answered with the RFC 6750 status and challenge before the handler runs.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Hapi from '@hapi/hapi';
import { expressBearer } from '../../src/adapters/express.js';
import { fastifyBearer } from '../../src/adapters/fastify.js';
import { honoBearer, type BearerVariables } from '../../src/adapters/hono.js';
import { portcullisHapi, type HapiBearerCredentials } from '../../src/adapters/hapi.js';
import { createBearerVerifier, nodeBearer, type BearerVerifier } from '../../src/resource/index.js';
import { assertTokenResponse, createHarness, ISSUER, SVC1, SVC2, type Harness } from '../helpers/harness.js';
import { fetchBridge, raw } from '../adapters/servers.js';

const FRAMEWORKS = ['express', 'fastify', 'hono', 'hapi', 'node'] as const;
type Framework = (typeof FRAMEWORKS)[number];

interface Running {
  origin: string;
  close(): Promise<void>;
}

async function listen(handler?: Parameters<typeof createServer>[1]): Promise<{ server: Server; origin: string }> {
  const server = handler === undefined ? createServer() : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * An API with GET /api/me (needs api:read) and POST /api/write (needs api:write, form body token
 * allowed), each answering with the token the middleware verified.
 */
async function startApi(framework: Framework, h: Harness, guard: BearerVerifier): Promise<Running> {
  const answer = (auth: { sub: string; client_id: string; scope: string[] } | undefined) => ({ sub: auth?.sub, client_id: auth?.client_id, scope: auth?.scope });
  switch (framework) {
    case 'express': {
      const app = express();
      app.use(express.urlencoded({ extended: false }));
      app.get('/api/me', expressBearer(guard, { requiredScopes: ['api:read'] }), (req, res) => {
        res.json(answer(req.auth));
      });
      app.post('/api/write', expressBearer(guard, { requiredScopes: ['api:write'] }), (req, res) => {
        res.json(answer(req.auth));
      });
      const { server, origin } = await listen(app);
      return { origin, close: () => closeServer(server) };
    }
    case 'fastify': {
      const app = Fastify();
      app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));
      app.get('/api/me', { preHandler: fastifyBearer(guard, { requiredScopes: ['api:read'] }) }, async (request) => answer(request.auth));
      app.post('/api/write', { preHandler: fastifyBearer(guard, { requiredScopes: ['api:write'] }) }, async (request) => answer(request.auth));
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as AddressInfo).port;
      return { origin: `http://127.0.0.1:${port}`, close: () => app.close() };
    }
    case 'hono': {
      const app = new Hono<{ Variables: BearerVariables }>();
      app.get('/api/me', honoBearer(guard, { requiredScopes: ['api:read'] }), (c) => c.json(answer(c.var.auth)));
      app.post('/api/write', honoBearer(guard, { requiredScopes: ['api:write'] }), async (c) => {
        // The middleware read the form through Hono's cache: the handler can still parse it.
        const form = await c.req.parseBody();
        return c.json({ ...answer(c.get('auth')), form: Object.keys(form) });
      });
      const { server, origin } = await listen(fetchBridge((request) => app.fetch(request)));
      return { origin, close: () => closeServer(server) };
    }
    case 'hapi': {
      const { server: listener, origin } = await listen();
      const server = Hapi.server({ listener, autoListen: false });
      await server.register({ plugin: portcullisHapi, options: { portcullis: h.portcullis }, routes: { prefix: '/oauth' } });
      server.auth.strategy('oauth', 'portcullis', { verifier: guard, scopes: ['api:read'] });
      server.route({ method: 'GET', path: '/api/me', options: { auth: 'oauth' }, handler: (request) => answer((request.auth.credentials as unknown as HapiBearerCredentials).token) });
      server.route({
        method: 'POST',
        path: '/api/write',
        options: { auth: 'oauth', plugins: { portcullis: { scopes: ['api:write'] } } },
        handler: (request) => answer((request.auth.credentials as unknown as HapiBearerCredentials).token),
      });
      server.route({
        method: 'GET',
        path: '/api/maybe',
        options: { auth: { strategy: 'oauth', mode: 'try' } },
        handler: (request) => ({ authenticated: request.auth.isAuthenticated }),
      });
      await server.start();
      return { origin, close: () => closeServer(listener) };
    }
    case 'node': {
      const me = nodeBearer(guard, { requiredScopes: ['api:read'] });
      const write = nodeBearer(guard, { requiredScopes: ['api:write'] });
      const { server, origin } = await listen(async (req, res) => {
        const auth = req.url === '/api/me' ? await me(req, res) : await write(req, res);
        if (auth === undefined) return;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer(auth)));
      });
      return { origin, close: () => closeServer(server) };
    }
  }
}

describe('bearer middleware of every framework', () => {
  let h: Harness;
  let guard: BearerVerifier;
  let readWrite: string;
  let readOnly: string;
  before(async () => {
    h = await createHarness();
    guard = createBearerVerifier({ portcullis: h.portcullis, audience: ISSUER, clock: h.clock.now });
    readWrite = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read api:write' }, { basic: SVC1 })).access_token as string;
    readOnly = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: SVC2 })).access_token as string;
  });
  after(() => h.close());

  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      let api: Running;
      before(async () => {
        api = await startApi(framework, h, guard);
      });
      after(() => api.close());

      it('the handler sees the verified token', async () => {
        const res = await raw('GET', `${api.origin}/api/me`, { headers: { authorization: `Bearer ${readOnly}` } });
        assert.equal(res.status, 200, res.body);
        assert.deepEqual(JSON.parse(res.body), { sub: 'svc2', client_id: 'svc2', scope: ['api:read'] });
      });

      it('no token → 401 with the bare Bearer challenge', async () => {
        const res = await raw('GET', `${api.origin}/api/me`);
        assert.equal(res.status, 401);
        assert.equal(res.headers['www-authenticate'], `Bearer realm="${ISSUER}"`);
      });

      it('a bad token → 401 invalid_token; a token in the query → 400 invalid_request', async () => {
        const bad = await raw('GET', `${api.origin}/api/me`, { headers: { authorization: `Bearer ${readOnly}x` } });
        assert.equal(bad.status, 401);
        assert.match(String(bad.headers['www-authenticate']), /^Bearer realm="[^"]+", error="invalid_token", error_description="/);
        if (framework !== 'hapi') assert.equal(JSON.parse(bad.body).error, 'invalid_token');
        const query = await raw('GET', `${api.origin}/api/me?access_token=${readOnly}`);
        assert.equal(query.status, 400);
        assert.match(String(query.headers['www-authenticate']), /error="invalid_request"/);
      });

      it('a missing scope → 403 insufficient_scope with the scope in the challenge', async () => {
        const res = await raw('POST', `${api.origin}/api/write`, { headers: { authorization: `Bearer ${readOnly}` } });
        assert.equal(res.status, 403, res.body);
        assert.match(String(res.headers['www-authenticate']), /error="insufficient_scope"/);
        assert.match(String(res.headers['www-authenticate']), /scope="[^"]*api:write[^"]*"/);
        const ok = await raw('POST', `${api.origin}/api/write`, { headers: { authorization: `Bearer ${readWrite}` } });
        assert.equal(ok.status, 200, ok.body);
        assert.equal(JSON.parse(ok.body).client_id, 'svc1');
      });

      if (framework === 'express' || framework === 'fastify' || framework === 'hono') {
        it('a form-body access_token (parsed by the framework) is accepted; header + body → 400', async () => {
          const form = { 'content-type': 'application/x-www-form-urlencoded' };
          const res = await raw('POST', `${api.origin}/api/write`, { headers: form, body: `access_token=${readWrite}&note=hi` });
          assert.equal(res.status, 200, res.body);
          assert.equal(JSON.parse(res.body).sub, 'svc1');
          if (framework === 'hono') assert.deepEqual(JSON.parse(res.body).form, ['access_token', 'note']);
          const both = await raw('POST', `${api.origin}/api/write`, { headers: { ...form, authorization: `Bearer ${readWrite}` }, body: `access_token=${readWrite}` });
          assert.equal(both.status, 400);
        });
      }

      if (framework === 'hapi') {
        it('mode "try": a request without a token still reaches the handler, unauthenticated', async () => {
          const res = await raw('GET', `${api.origin}/api/maybe`);
          assert.equal(res.status, 200);
          assert.deepEqual(JSON.parse(res.body), { authenticated: false });
          const bad = await raw('GET', `${api.origin}/api/maybe`, { headers: { authorization: `Bearer ${readOnly}x` } });
          assert.deepEqual(JSON.parse(bad.body), { authenticated: false });
          const good = await raw('GET', `${api.origin}/api/maybe`, { headers: { authorization: `Bearer ${readOnly}` } });
          assert.deepEqual(JSON.parse(good.body), { authenticated: true });
        });
      }
    });
  }
});
