/**
 * Run your own login and consent UI: Portcullis validates the authorization request and issues the
 * code; your app authenticates the user in between. The request is plain JSON, so it can wait in
 * your session store, a signed cookie, or a database row.
 *
 * Run: node --import tsx examples/own-login-ui.ts
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createPortcullis, nodeToOAuthRequest, toNodeListener, type AuthorizationRequest, type OAuthResponse, type Portcullis } from '../src/index.js';
import { createMemoryStorage } from '../src/storage/memory.js';

/** Pending requests by id. A real app keeps them in its session store. */
const pending = new Map<string, AuthorizationRequest>();

export async function createApp(issuer: string): Promise<{ portcullis: Portcullis; handler: (req: IncomingMessage, res: ServerResponse) => void }> {
  const portcullis = await createPortcullis({ issuer, storage: createMemoryStorage() });
  const core = toNodeListener(portcullis);

  async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/authorize') {
      // 1. Validate with Portcullis. Errors come back as what the browser must see.
      const oauthReq = await nodeToOAuthRequest(req, { maxBodyBytes: 65536, trustProxy: false });
      try {
        const request = await portcullis.authorization.validate(oauthReq);
        pending.set(request.id, request);
        return send(res, { status: 302, headers: { location: `/my-login?request=${request.id}` }, body: '' });
      } catch (err) {
        return send(res, portcullis.authorization.errorResponse(err));
      }
    }
    if (url.pathname === '/my-login' && req.method === 'POST') {
      // 2. Your own authentication (here: a fixed demo user), then 3. complete the request.
      const form = new URLSearchParams(await readBody(req));
      const request = pending.get(form.get('request') ?? '');
      if (request === undefined) return send(res, { status: 400, headers: { 'content-type': 'text/plain' }, body: 'unknown request' });
      pending.delete(request.id); // complete each request once
      const user = await portcullis.users.findByUsername(form.get('username') ?? '');
      const approved = user !== undefined && form.get('password') === 'demo-password' && form.get('decision') === 'approve';
      return send(res, await portcullis.authorization.complete(request, { isAuthorizationApproved: approved, ...(user ? { user: { id: user.id } } : {}) }, { fromPost: true }));
    }
    core(req, res); // token, jwks, discovery, userinfo… stay with Portcullis
  }
  return { portcullis, handler: (req, res) => void handler(req, res) };
}

function send(res: ServerResponse, r: OAuthResponse): void {
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => resolve(body));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { portcullis, handler } = await createApp('http://127.0.0.1:3001');
  await portcullis.users.upsert({ username: 'demo', password: 'demo-password' });
  createServer(handler).listen(3001, '127.0.0.1', () => console.log('listening on http://127.0.0.1:3001'));
}
