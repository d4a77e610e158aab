import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { adapterProtocolSuite, seededServer, SVC, throwingServer } from './protocol-suite.js';
import { basic, mount, raw, type Mounted } from './servers.js';

// Inside the plugin, Fastify's own content-type parser reads the form, as text.
adapterProtocolSuite('fastify', (body) => typeof body === 'string');

describe('fastify adapter: an encapsulated plugin', () => {
  let m: Mounted;
  before(async () => {
    m = await mount('fastify', seededServer, {
      wrap: throwingServer,
      afterMount: (app) => {
        const f = app as FastifyInstance;
        f.post('/api/echo', async (request) => ({ body: request.body }));
      },
    });
  });
  after(() => m.close());

  it('its raw-body parsers stay inside the plugin: the app still parses JSON into objects', async () => {
    const res = await raw('POST', `${m.origin}/api/echo`, { headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { body: { a: 1 } });
  });

  it('a failure inside the route is a bare server_error, never the error text', async () => {
    const res = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret), 'x-test-throw': '1' }, body: 'grant_type=client_credentials' });
    assert.equal(res.status, 500);
    assert.deepEqual(JSON.parse(res.body), { error: 'server_error', error_description: 'The server encountered an unexpected error' });
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('paths outside the prefix are not served; unknown paths under it get the core 404', async () => {
    const outside = await raw('GET', `${m.origin}/token`);
    assert.equal(outside.status, 404);
    const unknown = await raw('GET', `${m.issuer}/nope`);
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).error, 'not_found');
  });
});
