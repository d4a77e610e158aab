/**
 * node:http and fetch: the two adapters without a framework. A server under /oauth (the core strips
 * the issuer's path itself), and the same server as a WHATWG fetch handler.
 *
 * Run: node --import tsx examples/adapters/node.ts
 */
// #region snippet
import { createServer } from 'node:http';
import { createPortcullis, nodeBearer, toFetchHandler, toNodeListener } from '../../src/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

export async function createApp(issuer: string) {
  const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
  await portcullis.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-change-me-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });

  const oauth = toNodeListener(portcullis);
  const guard = nodeBearer({ portcullis, audience: issuer, requiredScopes: ['api:read'] });
  const server = createServer(async (req, res) => {
    if (req.url?.startsWith('/oauth/')) return oauth(req, res);
    if (req.url === '/api/me') {
      const auth = await guard(req, res); // answers 401/403/400 itself
      if (auth === undefined) return;
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ sub: auth.sub, scope: auth.scope }));
    }
    res.statusCode = 404;
    res.end();
  });

  // The same server for Bun, Deno or workers: (request: Request) => Promise<Response>.
  const fetchHandler = toFetchHandler(portcullis);
  return { server, fetchHandler, portcullis };
}
// #endregion

if (import.meta.url === `file://${process.argv[1]}`) {
  const { server } = await createApp('http://127.0.0.1:3000/oauth');
  server.listen(3000, '127.0.0.1');
}
