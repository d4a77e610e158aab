import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Server } from '@hapi/hapi';
import { adapterProtocolSuite, seededServer, SVC, throwingServer } from './protocol-suite.js';
import { basic, mount, raw, type Mounted } from './servers.js';

// hapi hands over the raw payload stream (parse: false); the adapter reads it, capped, into bytes.
adapterProtocolSuite('hapi', (body) => body instanceof Uint8Array);

describe('hapi adapter: a plugin', () => {
  let m: Mounted;
  before(async () => {
    m = await mount('hapi', seededServer, {
      wrap: throwingServer,
      afterMount: (app, portcullis) => {
        const server = app as Server;
        server.auth.strategy('oauth', 'portcullis', { portcullis, audience: portcullis.issuer });
        server.auth.default('oauth');
        server.route({ method: 'GET', path: '/api/me', handler: (request) => ({ sub: (request.auth.credentials as { token: { sub: string } }).token.sub }) });
      },
    });
  });
  after(() => m.close());

  it('the OAuth routes stay open when the app makes a bearer strategy its default; the app routes use it', async () => {
    const res = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: 'grant_type=client_credentials' });
    assert.equal(res.status, 200, res.body);
    const token = (JSON.parse(res.body) as { access_token: string }).access_token;
    const denied = await raw('GET', `${m.origin}/api/me`);
    assert.equal(denied.status, 401);
    const me = await raw('GET', `${m.origin}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200, me.body);
    assert.deepEqual(JSON.parse(me.body), { sub: SVC.id });
  });

  it('a cookie header hapi could not parse does not break the OAuth routes', async () => {
    const res = await raw('GET', `${m.issuer}/.well-known/openid-configuration`, { headers: { cookie: 'a=b; ="; x' } });
    assert.equal(res.status, 200);
  });

  it('a failure inside the handler is hapi’s generic 500, never the error text', async () => {
    const res = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret), 'x-test-throw': '1' }, body: 'grant_type=client_credentials' });
    assert.equal(res.status, 500);
    assert.doesNotMatch(res.body, /secret internal detail|\.ts:\d/);
  });
});
