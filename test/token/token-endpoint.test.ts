import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertOAuthError, assertTokenResponse, createHarness, SVC1, type Harness } from '../helpers/harness.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { StorageUnavailableError } from '../../src/core/errors.js';
import type { Storage } from '../../src/storage/contract.js';

describe('token endpoint: parsing and dispatch', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness();
  });
  after(() => h.close());

  it('a parameter sent twice is invalid_request', async () => {
    assertOAuthError(await h.post('/token', 'grant_type=client_credentials&grant_type=client_credentials', { basic: SVC1 }), 400, 'invalid_request');
    assertOAuthError(await h.post('/token', 'grant_type=client_credentials&scope=api:read&scope=api:read', { basic: SVC1 }), 400, 'invalid_request');
  });

  it('unknown parameters are ignored and empty values count as absent', async () => {
    const body = assertTokenResponse(await h.post('/token', 'grant_type=client_credentials&extra=foobar&scope=', { basic: SVC1 }));
    assert.equal(body.scope, 'api:read api:write');
  });

  it('missing grant_type is invalid_request; an unknown one unsupported_grant_type', async () => {
    assertOAuthError(await h.post('/token', '', { basic: SVC1 }), 400, 'invalid_request');
    assertOAuthError(await h.post('/token', { grant_type: 'urn:example:nope' }, { basic: SVC1 }), 400, 'unsupported_grant_type');
    assertOAuthError(await h.post('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer' }, { basic: SVC1 }), 400, 'unsupported_grant_type');
  });

  it('the password grant is off unless enabled for the server', async () => {
    const off = await createHarness({ grants: {} }).catch((e: unknown) => e);
    // The fixtures list the password grant; with the grant off the registry refuses such clients at start.
    assert.ok(off instanceof Error);
    assert.match(off.message, /grant_types.*password/);
  });

  it('refuses other content types and non-POST methods', async () => {
    const json = await h.portcullis.handle({ method: 'POST', path: '/token', query: '', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials"}' });
    assertOAuthError(json, 400, 'invalid_request');
    const none = await h.portcullis.handle({ method: 'POST', path: '/token', query: '', headers: {}, body: 'grant_type=client_credentials' });
    assertOAuthError(none, 400, 'invalid_request');
    const get = await h.portcullis.handle({ method: 'GET', path: '/token', query: 'grant_type=client_credentials', headers: {} });
    assertOAuthError(get, 405, 'invalid_request');
    assert.equal(get.headers.allow, 'POST');
  });

  it('refuses a body over 64 KiB', async () => {
    const res = await h.post('/token', 'grant_type=client_credentials&pad=' + 'a'.repeat(70 * 1024), { basic: SVC1 });
    assertOAuthError(res, 413, 'invalid_request');
  });

  it('refuses malformed percent-encoding and non-UTF-8 bodies without a 500', async () => {
    assertOAuthError(await h.post('/token', 'grant_type=%E0%A4%A', { basic: SVC1 }), 400, 'invalid_request');
    const bytes = await h.portcullis.handle({ method: 'POST', path: '/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new Uint8Array([0x67, 0x3d, 0xff, 0xfe]) });
    assertOAuthError(bytes, 400, 'invalid_request');
  });

  it('keys such as __proto__ and constructor are harmless', async () => {
    const res = await h.post('/token', 'grant_type=client_credentials&__proto__=x&constructor=y&__proto__[admin]=1&scope[0]=a', { basic: SVC1 });
    assertTokenResponse(res);
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });

  it('a store that throws gives server_error with no internal text, and the server keeps serving', async () => {
    const storage = createMemoryStorage();
    const broken = await createHarness({}, storage);
    try {
      const original = storage.getClient.bind(storage);
      let fail = true;
      (storage as Storage).getClient = async (id: string) => {
        if (fail) throw new Error('SQLITE_CORRUPT: SELECT * FROM clients at /app/x.ts:1:1');
        return original(id);
      };
      const res = await broken.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 });
      assertOAuthError(res, 500, 'server_error');
      assert.doesNotMatch(res.body, /SQLITE|SELECT|x\.ts/);
      fail = false;
      assertTokenResponse(await broken.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    } finally {
      await broken.close();
    }
  });

  it('an unreachable store gives 503 temporarily_unavailable with Retry-After', async () => {
    const storage = createMemoryStorage();
    const down = await createHarness({}, storage);
    try {
      (storage as Storage).getClient = async () => {
        throw new StorageUnavailableError('connect ECONNREFUSED 127.0.0.1:5432');
      };
      const res = await down.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 });
      assertOAuthError(res, 503, 'temporarily_unavailable');
      assert.ok(Number(res.headers['retry-after']) > 0);
      assert.doesNotMatch(res.body, /ECONNREFUSED/);
    } finally {
      await down.close();
    }
  });

  it('unknown paths are 404 JSON', async () => {
    const res = await h.get('/nope');
    assert.equal(res.status, 404);
  });
});
