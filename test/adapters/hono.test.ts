import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Hono } from 'hono';
import { portcullisHono } from '../../src/adapters/hono.js';
import { adapterProtocolSuite, seededServer, SVC, throwingServer } from './protocol-suite.js';
import { basic, mount, raw, type Mounted } from './servers.js';

// After a parseBody() middleware the stream is spent: the adapter takes the bytes from Hono's cache.
adapterProtocolSuite('hono', (body) => body instanceof Uint8Array);

const ISSUER = 'http://127.0.0.1:8787/oauth';
const form = (body: string, extra: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret), ...extra },
  body,
});

describe('hono adapter: sub-app and mount, in process (app.request)', () => {
  let portcullis: Awaited<ReturnType<typeof seededServer>>;
  before(async () => {
    portcullis = await seededServer(ISSUER);
  });
  after(() => portcullis.close());

  it('app.route("/oauth", portcullisHono(p)) serves the endpoints and hands other /oauth paths to later routes', async () => {
    const app = new Hono();
    app.route('/oauth', portcullisHono(portcullis));
    app.get('/oauth/custom', (c) => c.text('app'));
    const token = await app.request('/oauth/token', form('grant_type=client_credentials'));
    assert.equal(token.status, 200);
    assert.equal(((await token.json()) as { token_type: string }).token_type, 'Bearer');
    const meta = await app.request('http://evil.example/oauth/.well-known/openid-configuration');
    assert.equal(((await meta.json()) as { issuer: string }).issuer, ISSUER);
    const custom = await app.request('/oauth/custom');
    assert.equal(await custom.text(), 'app');
  });

  it('works under a parameterised base path (the mount is resolved per request)', async () => {
    const app = new Hono();
    app.route('/t/:tenant/oauth', portcullisHono(portcullis));
    const token = await app.request('/t/acme/oauth/token', form('grant_type=client_credentials'));
    assert.equal(token.status, 200);
  });

  it('app.mount("/oauth", portcullis.fetch) works too (Hono strips the prefix; URLs still come from the issuer)', async () => {
    const app = new Hono();
    app.mount('/oauth', portcullis.fetch);
    const token = await app.request('/oauth/token', form('grant_type=client_credentials'));
    assert.equal(token.status, 200);
    const meta = await app.request('http://evil.example/oauth/.well-known/openid-configuration');
    assert.equal(((await meta.json()) as { token_endpoint: string }).token_endpoint, `${ISSUER}/token`);
  });

  it('a body read by c.req.text() or c.req.formData() before it is taken from the cache', async () => {
    for (const read of ['text', 'formData', 'json'] as const) {
      const app = new Hono();
      app.use('*', async (c, next) => {
        if (read === 'text') await c.req.text();
        else if (read === 'formData') await c.req.formData();
        else await c.req.text();
        await next();
      });
      app.route('/oauth', portcullisHono(portcullis));
      const token = await app.request('/oauth/token', form('grant_type=client_credentials&scope=api%3Aread'));
      assert.equal(token.status, 200, `${read}: ${await token.clone().text()}`);
    }
  });

  it('a failure inside the handler ends in Hono’s error handler, with nothing internal in the response', async () => {
    const app = new Hono();
    app.route('/oauth', portcullisHono(throwingServer(portcullis)));
    app.onError((_err, c) => c.json({ error: 'server_error' }, 500));
    const res = await app.request('/oauth/token', form('grant_type=client_credentials', { 'x-test-throw': '1' }));
    assert.equal(res.status, 500);
    assert.doesNotMatch(await res.text(), /secret internal detail/);
  });
});

describe('hono adapter over node:http (a fetch bridge)', () => {
  let m: Mounted;
  before(async () => {
    m = await mount('hono', seededServer);
  });
  after(() => m.close());

  it('serves the token endpoint through app.fetch behind node:http', async () => {
    const res = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: 'grant_type=client_credentials' });
    assert.equal(res.status, 200);
  });
});
