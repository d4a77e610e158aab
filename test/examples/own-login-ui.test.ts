import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../examples/own-login-ui.js';
import type { Portcullis } from '../../src/portcullis-types.js';

describe('examples/own-login-ui.ts: an app runs its own login UI over the resumable authorization API', () => {
  let server: Server;
  let base: string;
  let portcullis: Portcullis;
  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    const app = await createApp(base);
    portcullis = app.portcullis;
    server.on('request', app.handler);
    await portcullis.users.upsert({ username: 'demo', password: 'demo-password' });
    await portcullis.clients.upsert({ client_id: 'rp', client_secret: 'rp-secret-0123456789', grant_types: ['authorization_code'], redirect_uris: ['https://rp.example.com/cb'] });
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await portcullis.close();
  });

  const verifier = 'x'.repeat(43);
  const authorizeUrl = () =>
    `${base}/authorize?` +
    new URLSearchParams({ response_type: 'code', client_id: 'rp', redirect_uri: 'https://rp.example.com/cb', state: 'st', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' }).toString();

  it('validate → the app authenticates → complete issues a code that redeems', async () => {
    const start = await fetch(authorizeUrl(), { redirect: 'manual' });
    assert.equal(start.status, 302);
    const requestId = new URL(start.headers.get('location')!, base).searchParams.get('request')!;
    const done = await fetch(`${base}/my-login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ request: requestId, username: 'demo', password: 'demo-password', decision: 'approve' }) });
    assert.equal(done.status, 303);
    const location = new URL(done.headers.get('location')!);
    assert.equal(location.origin + location.pathname, 'https://rp.example.com/cb');
    assert.equal(location.searchParams.get('state'), 'st');
    assert.equal(location.searchParams.get('iss'), base);
    const token = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from('rp:rp-secret-0123456789').toString('base64') },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: location.searchParams.get('code')!, redirect_uri: 'https://rp.example.com/cb', code_verifier: verifier }),
    });
    assert.equal(token.status, 200);
  });

  it('a denial becomes access_denied at the client; an invalid request never redirects', async () => {
    const start = await fetch(authorizeUrl(), { redirect: 'manual' });
    const requestId = new URL(start.headers.get('location')!, base).searchParams.get('request')!;
    const denied = await fetch(`${base}/my-login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ request: requestId, username: 'demo', password: 'demo-password', decision: 'deny' }) });
    assert.equal(new URL(denied.headers.get('location')!).searchParams.get('error'), 'access_denied');
    const bad = await fetch(`${base}/authorize?client_id=rp&redirect_uri=https://evil.example.com/cb&response_type=code`, { redirect: 'manual' });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('location'), null);
    assert.match(bad.headers.get('content-type') ?? '', /text\/html/);
  });
});
