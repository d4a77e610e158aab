/**
 * A resource server in another process than the authorization server: JWT access tokens verified
 * against the issuer's published keys (fetched once, refetched when a rotated key appears), opaque
 * ones through introspection, and the framework-free `verifyBearer` on a plain node:http API.
 *
 * Run: ISSUER=https://id.example.com CLIENT_SECRET=… node --import tsx examples/adapters/resource-server.ts
 */
// #region snippet
import { createServer } from 'node:http';
import { verifyBearer, bearerErrorResponse, type BearerOptions } from '../../src/index.js';

export function createApi(config: { issuer: string; audience: string; clientId: string; clientSecret: string }) {
  // One options object for the life of the process: the guard caches the key set and introspection answers per object.
  const guard: BearerOptions = {
    issuer: config.issuer,
    audience: config.audience,
    jwksUri: `${config.issuer}/jwks`,
    // Opaque tokens: asked at the issuer, each answer reused for at most 30 s (never past the token's exp).
    introspection: { endpoint: `${config.issuer}/introspect`, clientId: config.clientId, clientSecret: config.clientSecret, cacheSeconds: 30 },
  };

  return createServer(async (req, res) => {
    const result = await verifyBearer({ method: req.method ?? 'GET', headers: req.headers, query: req.url?.split('?')[1] }, guard, { requiredScopes: ['api:read'] });
    if (!result.ok) {
      const denial = bearerErrorResponse(result); // 401/403/400 with WWW-Authenticate
      res.writeHead(denial.status, denial.headers).end(denial.body);
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ hello: result.token.sub, client: result.token.client_id, via: result.token.source }));
  });
}
// #endregion

if (import.meta.url === `file://${process.argv[1]}`) {
  const issuer = process.env.ISSUER ?? 'http://127.0.0.1:3000';
  createApi({ issuer, audience: process.env.AUDIENCE ?? issuer, clientId: process.env.CLIENT_ID ?? 'resource-server', clientSecret: process.env.CLIENT_SECRET ?? '' }).listen(4000, '127.0.0.1');
}
