/**
 * The framework trios (`requestFrom<Framework>`, `handle<Framework>Response`, `handle<Framework>Error`)
 * on real servers on 127.0.0.1: the same routes and the same tests through Express (no body parser),
 * Fastify, Hono, Hapi, the fetch ("vanilla") adapter and node:http.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Hapi from '@hapi/hapi';
import { handleHapiError, handleHapiResponse, requestFromHapi } from '../../src/server-object/hapi.js';
import { AuthorizationServer, type AuthorizationRequest, type OAuthRequest, type OAuthResponse } from '../../src/server-object/index.js';
import { handleExpressError, handleExpressResponse, requestFromExpress } from '../../src/server-object/express.js';
import { handleFastifyError, handleFastifyReply, handleFastifyResponse, requestFromFastify } from '../../src/server-object/fastify.js';
import { handleHonoError, handleHonoResponse, requestFromHono } from '../../src/server-object/hono.js';
import { handleNodeError, handleNodeResponse, requestFromNode } from '../../src/server-object/node.js';
import { handleVanillaError, handleVanillaResponse, requestFromVanilla, responseToVanilla } from '../../src/server-object/vanilla.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

const REDIRECT = 'https://rp.example/cb';
const VERIFIER = 'adapter-verifier-'.repeat(3);
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');
const basic = (id: string, secret: string): string => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
const SVC = basic('svc', 'svc-secret-0123456789');
const WEB = basic('web', 'web-secret-0123456789');

type Op = 'token' | 'revoke' | 'introspect';
/** The route logic every adapter shares: the server object's call for each route. */
const call = (server: AuthorizationServer, op: Op, req: OAuthRequest | object): Promise<OAuthResponse> =>
  op === 'token' ? server.respondToAccessTokenRequest(req) : op === 'revoke' ? server.revoke(req) : server.introspect(req);

/** The test app's authorize step: the user is always u1 and always approves (login and consent are tested elsewhere). */
async function authorize(server: AuthorizationServer, req: OAuthRequest): Promise<OAuthResponse> {
  const ar: AuthorizationRequest = await server.validateAuthorizationRequest(req);
  ar.user = { id: 'u1' };
  ar.isAuthorizationApproved = true;
  return server.completeAuthorizationRequest(ar);
}

interface Mounted {
  base: string;
  close(): Promise<void>;
}

async function listenOn(listener: RequestListener): Promise<{ server: Server; base: string }> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, base: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}` };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** node:http ↔ fetch, for the Hono and vanilla handlers (what @hono/node-server does; not installed). */
function fetchBridge(handler: (request: Request) => Response | Promise<Response>): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const request = new Request(`http://${req.headers.host}${req.url}`, { method: req.method!, headers, ...(hasBody ? { body: Buffer.concat(chunks) } : {}) });
      Promise.resolve(handler(request))
        .then(async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers));
          res.end(Buffer.from(await response.arrayBuffer()));
        })
        .catch(() => {
          res.statusCode = 500;
          res.end();
        });
    });
  };
}

const MOUNTS: Record<string, (server: AuthorizationServer) => Promise<Mounted>> = {
  async 'express (no body parser)'(server) {
    const app = express();
    for (const op of ['token', 'revoke', 'introspect'] as const) {
      app.post(`/${op}`, async (req, res) => {
        try {
          // The token route reads its body through requestFromExpress; the others hand over the raw request.
          handleExpressResponse(res, await call(server, op, op === 'token' ? requestFromExpress(req) : req));
        } catch (e) {
          handleExpressError(e, res);
        }
      });
    }
    app.get('/authorize', async (req, res) => {
      try {
        handleExpressResponse(res, await authorize(server, requestFromExpress(req)));
      } catch (e) {
        handleExpressError(e, res);
      }
    });
    const { server: http, base } = await listenOn(app);
    return { base, close: () => closeServer(http) };
  },

  async fastify(server) {
    const app: FastifyInstance = Fastify();
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    for (const op of ['token', 'revoke', 'introspect'] as const) {
      app.post(`/${op}`, async (req, reply) => {
        try {
          return handleFastifyReply(reply, await call(server, op, requestFromFastify(req)));
        } catch (e) {
          return handleFastifyError(e, reply);
        }
      });
    }
    app.get('/authorize', async (req, reply) => {
      try {
        return handleFastifyResponse(reply, await authorize(server, requestFromFastify(req)));
      } catch (e) {
        return handleFastifyError(e, reply);
      }
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    return { base: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`, close: () => app.close() };
  },

  async hono(server) {
    const app = new Hono();
    for (const op of ['token', 'revoke', 'introspect'] as const) {
      app.post(`/${op}`, async (c) => {
        try {
          return handleHonoResponse(c, await call(server, op, await requestFromHono(c)));
        } catch (e) {
          return handleHonoError(e, c);
        }
      });
    }
    app.get('/authorize', async (c) => {
      try {
        return handleHonoResponse(c, await authorize(server, await requestFromHono(c)));
      } catch (e) {
        return handleHonoError(e, c);
      }
    });
    const { server: http, base } = await listenOn(fetchBridge((r) => app.fetch(r)));
    return { base, close: () => closeServer(http) };
  },

  async hapi(server) {
    const app = Hapi.server({ host: '127.0.0.1', port: 0 });
    for (const op of ['token', 'revoke', 'introspect'] as const) {
      app.route({
        method: 'POST',
        path: `/${op}`,
        options: { payload: { parse: false, output: 'data' } },
        handler: async (req, h) => {
          try {
            return handleHapiResponse(h, await call(server, op, requestFromHapi(req)));
          } catch (e) {
            return handleHapiError(e, h);
          }
        },
      });
    }
    app.route({
      method: 'GET',
      path: '/authorize',
      handler: async (req, h) => {
        try {
          return handleHapiResponse(h, await authorize(server, requestFromHapi(req)));
        } catch (e) {
          return handleHapiError(e, h);
        }
      },
    });
    await app.start();
    return { base: app.info.uri, close: () => app.stop() };
  },

  async 'vanilla (fetch)'(server) {
    const handler = async (request: Request): Promise<Response> => {
      const path = new URL(request.url).pathname.slice(1);
      try {
        const req = await requestFromVanilla(request);
        if (path === 'authorize') return handleVanillaResponse(await authorize(server, req));
        return responseToVanilla(await call(server, path as Op, req));
      } catch (e) {
        return responseToVanilla(handleVanillaError(e));
      }
    };
    const { server: http, base } = await listenOn(fetchBridge(handler));
    return { base, close: () => closeServer(http) };
  },

  async 'node:http'(server) {
    const { server: http, base } = await listenOn((req, res) => {
      void (async () => {
        const path = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
        try {
          const request = await requestFromNode(req);
          handleNodeResponse(res, path === 'authorize' ? await authorize(server, request) : await call(server, path as Op, request));
        } catch (e) {
          handleNodeError(e, res);
        }
      })();
    });
    return { base, close: () => closeServer(http) };
  },
};

for (const [name, mount] of Object.entries(MOUNTS)) {
  describe(`server-object adapter: ${name}`, () => {
    let server: AuthorizationServer;
    let mounted: Mounted;

    before(async () => {
      server = new AuthorizationServer({ issuer: 'http://127.0.0.1:4999', storage: createMemoryStorage(), maxBodyBytes: 4096 });
      server.enableGrantType('authorization_code');
      const p = await server.getPortcullis();
      await p.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'], scope: 'api' });
      await p.clients.upsert({ client_id: 'web', client_secret: 'web-secret-0123456789', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'api offline_access' });
      await p.users.upsert({ id: 'u1', username: 'alice' });
      mounted = await mount(server);
    });

    after(async () => {
      await mounted.close();
      await server.close();
    });

    const post = (path: string, body: string, authorization?: string): Promise<Response> =>
      fetch(`${mounted.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization !== undefined ? { authorization } : {}) }, body });

    it('client_credentials: 200, no-store JSON', async () => {
      const res = await post('/token', 'grant_type=client_credentials&scope=api', SVC);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.scope, 'api');
    });

    it('errors: 401 invalid_client with WWW-Authenticate, 400 invalid_request, 413 for a large body', async () => {
      const bad = await post('/token', 'grant_type=client_credentials', basic('svc', 'wrong'));
      assert.equal(bad.status, 401);
      assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      assert.deepEqual(await bad.json(), { error: 'invalid_client', error_description: 'Client authentication failed' });
      const missing = await post('/token', 'scope=api', SVC);
      assert.equal(missing.status, 400);
      assert.equal(((await missing.json()) as { error: string }).error, 'invalid_request');
      const large = await post('/token', `grant_type=client_credentials&pad=${'x'.repeat(8000)}`, SVC);
      assert.equal(large.status, 413);
    });

    it('authorize → code → token → introspect → revoke', async () => {
      const query = new URLSearchParams({ response_type: 'code', client_id: 'web', redirect_uri: REDIRECT, scope: 'api offline_access', state: 'st', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
      const res = await fetch(`${mounted.base}/authorize?${query.toString()}`, { redirect: 'manual' });
      assert.equal(res.status, 302);
      const location = new URL(res.headers.get('location')!);
      assert.equal(location.origin + location.pathname, REDIRECT);
      assert.equal(location.searchParams.get('state'), 'st');
      const token = await post('/token', new URLSearchParams({ grant_type: 'authorization_code', code: location.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: VERIFIER }).toString(), WEB);
      assert.equal(token.status, 200);
      const tokens = (await token.json()) as { access_token: string; refresh_token: string };
      assert.ok(tokens.refresh_token);
      const intro = await post('/introspect', `token=${encodeURIComponent(tokens.access_token)}`, WEB);
      assert.equal(((await intro.json()) as { active: boolean; sub: string }).sub, 'u1');
      const revoked = await post('/revoke', `token=${encodeURIComponent(tokens.refresh_token)}&token_type_hint=refresh_token`, WEB);
      assert.equal(revoked.status, 200);
      const after = await post('/introspect', `token=${encodeURIComponent(tokens.access_token)}`, WEB);
      assert.deepEqual(await after.json(), { active: false });
    });

    it('authorize errors: an HTML error page for an unregistered redirect URI, a redirect after', async () => {
      const page = await fetch(`${mounted.base}/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`, { redirect: 'manual' });
      assert.equal(page.status, 400);
      assert.equal(page.headers.get('location'), null);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      const redirect = await fetch(`${mounted.base}/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent(REDIRECT)}&state=s&scope=admin&code_challenge=${CHALLENGE}&code_challenge_method=S256`, { redirect: 'manual' });
      assert.equal(redirect.status, 302);
      assert.equal(new URL(redirect.headers.get('location')!).searchParams.get('error'), 'invalid_scope');
    });
  });
}
