/**
 * Fastify 5: the authorization server as an encapsulated plugin under /oauth, and an API route
 * protected by the bearer guard as a preHandler hook.
 *
 * Run: node --import tsx examples/adapters/fastify.ts
 */
// #region snippet
import Fastify from 'fastify';
import { createBearerVerifier, createPortcullis } from '../../src/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { fastifyBearer, portcullisFastify } from '../../src/adapters/fastify.js';

export async function createApp(issuer: string) {
  const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
  await portcullis.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-change-me-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });

  const app = Fastify();
  // Encapsulated: its raw-body parsers apply inside the prefix only.
  await app.register(portcullisFastify, { prefix: '/oauth', portcullis });

  const guard = createBearerVerifier({ portcullis, audience: issuer });
  app.decorateRequest('auth', undefined);
  app.get('/api/me', { preHandler: fastifyBearer(guard, { requiredScopes: ['api:read'] }) }, async (request) => ({
    sub: request.auth!.sub,
    scope: request.auth!.scope,
  }));
  return { app, portcullis };
}
// #endregion

if (import.meta.url === `file://${process.argv[1]}`) {
  const { app } = await createApp('http://127.0.0.1:3000/oauth');
  await app.listen({ port: 3000, host: '127.0.0.1' });
  console.log('Discovery: http://127.0.0.1:3000/oauth/.well-known/openid-configuration');
}
