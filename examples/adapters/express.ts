/**
 * Express 5: the authorization server mounted under /oauth, and an API route protected by the
 * bearer guard (RFC 6750) with the server's own keys.
 *
 * Run: node --import tsx examples/adapters/express.ts   (then POST http://127.0.0.1:3000/oauth/token)
 */
// #region snippet
import express from 'express';
import { createBearerVerifier, createPortcullis } from '../../src/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { expressBearer, portcullisRouter } from '../../src/adapters/express.js';

export async function createApp(issuer: string) {
  const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
  await portcullis.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-change-me-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });

  const app = express();
  // Optional: a body parser that runs first is fine; the router uses what it parsed.
  app.use(express.urlencoded({ extended: false }));
  // Endpoint URLs come from `issuer`, never from the Host header: mount where the issuer says.
  app.use('/oauth', portcullisRouter(portcullis));

  // Your API: the guard verifies the access token and sets req.auth.
  const guard = createBearerVerifier({ portcullis, audience: issuer });
  app.get('/api/me', expressBearer(guard, { requiredScopes: ['api:read'] }), (req, res) => {
    res.json({ sub: req.auth!.sub, scope: req.auth!.scope });
  });
  return { app, portcullis };
}
// #endregion

if (import.meta.url === `file://${process.argv[1]}`) {
  const { app } = await createApp('http://127.0.0.1:3000/oauth');
  app.listen(3000, '127.0.0.1', () => console.log('Discovery: http://127.0.0.1:3000/oauth/.well-known/openid-configuration'));
}
