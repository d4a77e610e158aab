import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import { adapterProtocolSuite, seededServer, SVC, throwingServer } from './protocol-suite.js';
import { basic, mount, raw, type Mounted } from './servers.js';

adapterProtocolSuite('express', (body) => typeof body === 'object' && body !== null && !(body instanceof Uint8Array));

describe('express adapter: Express conventions', () => {
  let m: Mounted;
  const failures: unknown[] = [];
  before(async () => {
    m = await mount('express', seededServer, {
      wrap: throwingServer,
      afterMount: (app) => {
        const a = app as Express;
        a.use(express.urlencoded({ extended: false }));
        a.get('/oauth/custom', (_req, res) => {
          res.json({ from: 'app' });
        });
        a.post('/oauth/custom', (req, res) => {
          res.json({ from: 'app', body: req.body as unknown });
        });
        a.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
          failures.push(err);
          res.status(500).json({ error: 'server_error' });
        });
      },
    });
  });
  after(() => m.close());

  it('hands paths it does not serve to the next route, without reading their body', async () => {
    const get = await raw('GET', `${m.issuer}/custom`);
    assert.equal(get.status, 200);
    assert.deepEqual(JSON.parse(get.body), { from: 'app' });
    const post = await raw('POST', `${m.issuer}/custom`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
    assert.equal(post.status, 200);
    assert.deepEqual(JSON.parse(post.body), { from: 'app', body: { a: '1' } });
  });

  it('an adapter failure goes to next(err), i.e. the app error handler, with nothing internal in the response', async () => {
    const res = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret), 'x-test-throw': '1' }, body: 'grant_type=client_credentials' });
    assert.equal(res.status, 500);
    assert.equal(failures.length, 1);
    assert.doesNotMatch(res.body, /secret internal detail/);
  });

  it('a JSON body already parsed by express.json() is not taken for form parameters', async () => {
    const json = await mount('express', seededServer, {
      beforeMount: (app) => {
        (app as Express).use(express.json());
      },
    });
    try {
      const res = await raw('POST', `${json.issuer}/token`, { headers: { 'content-type': 'application/json', authorization: basic(SVC.id, SVC.secret) }, body: '{"grant_type":"client_credentials"}' });
      assert.equal(res.status, 400);
      assert.deepEqual(JSON.parse(res.body), { error: 'invalid_request', error_description: 'The request body must be application/x-www-form-urlencoded' });
      assert.equal(typeof json.seen.at(-1)!.body, 'string');
    } finally {
      await json.close();
    }
  });

  it('mounted at the root, it serves the issuer paths (both well-known documents) and leaves the rest to the app', async () => {
    const root = await mount('express', seededServer, {
      at: '/',
      beforeMount: (app) => {
        const a = app as Express;
        a.get('/', (_req, res) => {
          res.send('home');
        });
      },
    });
    try {
      const home = await raw('GET', `${root.origin}/`);
      assert.equal(home.body, 'home');
      const meta = await raw('GET', `${root.issuer}/.well-known/openid-configuration`);
      assert.equal(JSON.parse(meta.body).issuer, root.issuer);
      // RFC 8414 §3: the well-known suffix is inserted before the issuer's path, at the host root.
      const rfc8414 = await raw('GET', `${root.origin}/.well-known/oauth-authorization-server/oauth`);
      assert.equal(rfc8414.status, 200);
      assert.equal(JSON.parse(rfc8414.body).issuer, root.issuer);
      const token = await raw('POST', `${root.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: 'grant_type=client_credentials' });
      assert.equal(token.status, 200);
      assert.equal(root.seen.at(-1)!.path, '/oauth/token');
      const other = await raw('GET', `${root.origin}/elsewhere`);
      assert.equal(other.status, 404);
      assert.match(other.body, /Cannot GET/);
    } finally {
      await root.close();
    }
  });
});
