/**
 * RFC 8628 §3.1-3.2: the device authorization endpoint, the grant switch and discovery.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256 } from '../../src/core/crypto.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { assertOAuthError, ISSUER, SVC1, type Harness } from '../helpers/harness.js';
import {
  CLI1,
  DEVICE_GRANT,
  TV1,
  TV2,
  USER_CODE_SHAPE,
  authorizeDevice,
  createDeviceHarness,
  errorOf,
  poll,
  requestDeviceAuthorization,
} from './helpers.js';

describe('device authorization endpoint', () => {
  let h: Harness;
  before(async () => {
    h = await createDeviceHarness();
  });
  after(() => h.close());

  it('answers no-store JSON with device_code, user_code, verification URIs, expires_in and interval', async () => {
    const res = await requestDeviceAuthorization(h, TV1, { scope: 'openid api:read' });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.pragma, 'no-cache');
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    const body = h.json(res);
    assert.deepEqual(Object.keys(body).sort(), ['device_code', 'expires_in', 'interval', 'user_code', 'verification_uri', 'verification_uri_complete']);
    // 256 random bits, base64url.
    assert.match(String(body.device_code), /^[A-Za-z0-9_-]{43}$/);
    assert.match(String(body.user_code), USER_CODE_SHAPE);
    assert.equal(body.verification_uri, `${ISSUER}/device`);
    assert.equal(body.verification_uri_complete, `${ISSUER}/device?user_code=${String(body.user_code)}`);
    assert.equal(body.expires_in, 600);
    assert.equal(body.interval, 5);
  });

  it('stores the device code under its SHA-256 only, and the user code under the hash of its normalized form', async () => {
    const a = await authorizeDevice(h, TV1, 'api:read');
    const now = h.clock.now();
    assert.equal(await h.storage.findArtifact('device_code', a.device_code, now), undefined, 'the raw device code is not a storage id');
    const record = await h.storage.findArtifact('device_code', sha256(a.device_code), now);
    assert.ok(record);
    assert.equal(record.client_id, TV1.id);
    assert.equal(record.scope, 'api:read');
    assert.equal(record.data?.status, 'pending');
    assert.equal(record.data?.expires_at, now + 600);
    assert.ok(record.expires_at > now + 600, 'kept after its expiry, to answer expired_token');
    assert.ok(!JSON.stringify(record).includes(a.device_code));
    assert.ok(!JSON.stringify(record).includes(a.user_code.replace('-', '')), 'the user code is not stored in clear');
    const link = await h.storage.findArtifact('user_code', sha256(a.user_code.replace('-', '')), now);
    assert.equal(link?.data?.device_code_id, record.id);
  });

  it('every request gets a different device code and user code', async () => {
    const a = await authorizeDevice(h, TV1);
    const b = await authorizeDevice(h, TV1);
    assert.notEqual(a.device_code, b.device_code);
    assert.notEqual(a.user_code, b.user_code);
  });

  it('without scope the client gets its registered scope; an unknown or unregistered scope is invalid_scope', async () => {
    const a = await authorizeDevice(h, TV2);
    assert.equal((await h.storage.findArtifact('device_code', sha256(a.device_code), h.clock.now()))?.scope, 'api:read api:write');
    assertOAuthError(await requestDeviceAuthorization(h, TV2, { scope: 'api:read admin' }), 400, 'invalid_scope');
    assertOAuthError(await requestDeviceAuthorization(h, TV2, { scope: 'api:read "quoted"' }), 400, 'invalid_scope');
  });

  it('a client not registered for the device grant is unauthorized_client', async () => {
    assertOAuthError(await requestDeviceAuthorization(h, { id: SVC1[0], secret: SVC1[1] }), 400, 'unauthorized_client');
  });

  it('a public client is identified by client_id alone (method none)', async () => {
    const a = await authorizeDevice(h, CLI1, 'api:read');
    assert.match(a.user_code, USER_CODE_SHAPE);
  });

  it('a confidential client must authenticate: client_id alone or a wrong secret is 401 invalid_client', async () => {
    assertOAuthError(await h.post('/device_authorization', { client_id: TV1.id }), 401, 'invalid_client');
    assertOAuthError(await h.post('/device_authorization', {}, { basic: [TV1.id, 'wrong-secret-0123456789'] }), 401, 'invalid_client');
    assertOAuthError(await h.post('/device_authorization', {}), 401, 'invalid_client');
    assertOAuthError(await h.post('/device_authorization', { client_id: 'nobody' }), 401, 'invalid_client');
  });

  it('request and request_uri are refused', async () => {
    assertOAuthError(await requestDeviceAuthorization(h, TV1, { request: 'eyJhbGciOiJub25lIn0.e30.' }), 400, 'invalid_request');
    assertOAuthError(await requestDeviceAuthorization(h, TV1, { request_uri: 'urn:ietf:params:oauth:request_uri:abc' }), 400, 'invalid_request');
  });

  it('form rules: POST only, form encoding only, no repeated parameter', async () => {
    const get = await h.portcullis.handle({ method: 'GET', path: '/device_authorization', query: '', headers: {} });
    assertOAuthError(get, 405, 'invalid_request');
    assert.equal(get.headers.allow, 'POST');
    const json = await h.portcullis.handle({ method: 'POST', path: '/device_authorization', query: '', headers: { 'content-type': 'application/json' }, body: '{}' });
    assertOAuthError(json, 400, 'invalid_request');
    assertOAuthError(await h.post('/device_authorization', 'client_id=cli1&scope=api:read&scope=api:read'), 400, 'invalid_request');
  });
});

describe('device flow switch, discovery and ttl', () => {
  it('is on by default: discovery lists the endpoint and the grant type, both are served', async () => {
    const h = await createDeviceHarness();
    try {
      const meta = h.portcullis.metadata();
      assert.equal(meta.device_authorization_endpoint, `${ISSUER}/device_authorization`);
      assert.ok((meta.grant_types_supported as string[]).includes(DEVICE_GRANT));
      assert.equal(errorOf(await poll(h, TV1, 'unknown')), 'invalid_grant');
    } finally {
      await h.close();
    }
  });

  it('grants.device_code: false removes the endpoint, the page, the grant type and the discovery entries', async () => {
    const p = await createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), grants: { device_code: false } });
    try {
      const meta = p.metadata();
      assert.equal(meta.device_authorization_endpoint, undefined);
      assert.ok(!(meta.grant_types_supported as string[]).includes(DEVICE_GRANT));
      assert.equal((await p.handle({ method: 'POST', path: '/device_authorization', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=x' })).status, 404);
      assert.equal((await p.handle({ method: 'GET', path: '/device', query: '', headers: {} })).status, 404);
      await p.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'] });
      const res = await p.handle({
        method: 'POST',
        path: '/token',
        query: '',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from('svc:svc-secret-0123456789').toString('base64') },
        body: `grant_type=${encodeURIComponent(DEVICE_GRANT)}&device_code=x`,
      });
      assertOAuthError(res, 400, 'unsupported_grant_type');
      // A client cannot even be registered for it.
      await assert.rejects(p.clients.upsert({ client_id: 'tv', client_secret: 'tv-secret-0123456789', grant_types: [DEVICE_GRANT] }), /grant_types/);
    } finally {
      await p.close();
    }
  });

  it('follows authorization_code unless set: off with the hosted pages, on when asked for explicitly', async () => {
    const off = await createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), grants: { authorization_code: false } });
    const on = await createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), grants: { authorization_code: false, device_code: true } });
    try {
      assert.ok(!off.grantTypes.includes(DEVICE_GRANT));
      assert.equal(off.metadata().device_authorization_endpoint, undefined);
      assert.ok(on.grantTypes.includes(DEVICE_GRANT));
      assert.equal(on.metadata().device_authorization_endpoint, `${ISSUER}/device_authorization`);
      assert.equal(on.metadata().authorization_endpoint, undefined);
    } finally {
      await off.close();
      await on.close();
    }
  });

  it('custom routes, ttl.deviceCode and deviceFlow.interval are honoured; bad values are refused at start', async () => {
    const h = await createDeviceHarness({ routes: { device_authorization: '/oauth/device', device: '/activate' }, ttl: { deviceCode: 900 }, deviceFlow: { interval: 7 } });
    try {
      assert.equal(h.portcullis.metadata().device_authorization_endpoint, `${ISSUER}/oauth/device`);
      const res = await h.post('/oauth/device', { client_id: CLI1.id });
      const body = h.json(res);
      assert.equal(body.expires_in, 900);
      assert.equal(body.interval, 7);
      assert.equal(body.verification_uri, `${ISSUER}/activate`);
      assert.equal((await h.get('/activate')).status, 200);
    } finally {
      await h.close();
    }
    await assert.rejects(createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), deviceFlow: { interval: 0 } }), /deviceFlow\.interval/);
    await assert.rejects(createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), deviceFlow: { maxCodeAttemptsGlobal: 1.5 } }), /deviceFlow\.maxCodeAttemptsGlobal/);
  });
});
