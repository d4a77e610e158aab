/**
 * hapi 21: the authorization server as a plugin under /oauth, and an API route protected by the
 * `portcullis` auth scheme the plugin registers.
 *
 * Run: node --import tsx examples/adapters/hapi.ts
 */
// #region snippet
import Hapi from '@hapi/hapi';
import { createPortcullis } from '../../src/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { portcullisHapi, type HapiBearerCredentials } from '../../src/adapters/hapi.js';

export async function createApp(issuer: string, port = 3000) {
  const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
  await portcullis.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-change-me-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });

  const server = Hapi.server({ host: '127.0.0.1', port });
  await server.register({ plugin: portcullisHapi, options: { portcullis }, routes: { prefix: '/oauth' } });

  // The plugin registered the `portcullis` scheme: make a strategy of it (and, if you like, the default).
  server.auth.strategy('oauth', 'portcullis', { portcullis, audience: issuer, scopes: ['api:read'] });
  server.route({
    method: 'GET',
    path: '/api/me',
    options: { auth: 'oauth' },
    handler: (request) => {
      const { token } = request.auth.credentials as unknown as HapiBearerCredentials;
      return { sub: token.sub, scope: token.scope };
    },
  });
  return { server, portcullis };
}
// #endregion

if (import.meta.url === `file://${process.argv[1]}`) {
  const { server } = await createApp('http://127.0.0.1:3000/oauth');
  await server.start();
  console.log('Discovery: http://127.0.0.1:3000/oauth/.well-known/openid-configuration');
}
