/**
 * Hono: the authorization server as a sub-app under /oauth, and an API route protected by the bearer
 * guard middleware (typed `c.var.auth`). The same app runs on Node (through @hono/node-server), Bun
 * and Deno; see docs/adapters.md for the one line each runtime needs.
 *
 * Run (Bun): bun examples/adapters/hono.ts    Run (Deno): deno run -A examples/adapters/hono.ts
 */
// #region snippet
import { Hono } from 'hono';
import { createBearerVerifier, createPortcullis } from '../../src/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { honoBearer, portcullisHono, type BearerVariables } from '../../src/adapters/hono.js';

export async function createApp(issuer: string) {
  const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
  await portcullis.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-change-me-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });

  const app = new Hono<{ Variables: BearerVariables }>();
  app.route('/oauth', portcullisHono(portcullis));
  // Or, without the sub-app: app.mount('/oauth', portcullis.fetch)

  const guard = createBearerVerifier({ portcullis, audience: issuer });
  app.get('/api/me', honoBearer(guard, { requiredScopes: ['api:read'] }), (c) => c.json({ sub: c.var.auth.sub, scope: c.var.auth.scope }));
  return { app, portcullis };
}
// #endregion

// Bun and Deno serve a default export with a `fetch` method.
const runtime = globalThis as { Bun?: unknown; Deno?: { serve(options: { port: number; hostname: string }, handler: (request: Request) => Response | Promise<Response>): unknown } };
if (runtime.Bun !== undefined || runtime.Deno !== undefined) {
  const { app } = await createApp('http://127.0.0.1:3000/oauth');
  if (runtime.Deno !== undefined) runtime.Deno.serve({ port: 3000, hostname: '127.0.0.1' }, app.fetch);
  else (globalThis as { Bun?: { serve(options: { port: number; hostname: string; fetch: typeof app.fetch }): unknown } }).Bun!.serve({ port: 3000, hostname: '127.0.0.1', fetch: app.fetch });
}
