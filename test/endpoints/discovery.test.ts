import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHarness, type Harness, ISSUER } from '../helpers/harness.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

describe('discovery and JWKS', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness();
  });
  after(() => h.close());

  it('serves the same metadata at both well-known paths, issuer exact', async () => {
    const oidc = await h.get('/.well-known/openid-configuration');
    const oauth = await h.get('/.well-known/oauth-authorization-server');
    assert.equal(oidc.status, 200);
    assert.equal(oidc.body, oauth.body);
    assert.equal(oidc.headers['access-control-allow-origin'], '*');
    assert.match(oidc.headers['cache-control'] ?? '', /public, max-age=\d+/);
    assert.equal(h.json(oidc).issuer, ISSUER);
  });

  it('lists nothing that is not served: every advertised endpoint answers, every grant is dispatched', async () => {
    const meta = h.json(await h.get('/.well-known/openid-configuration'));
    for (const [key, value] of Object.entries(meta)) {
      if (!key.endsWith('_endpoint') && key !== 'jwks_uri') continue;
      const path = new URL(String(value)).pathname;
      const res = key === 'jwks_uri' ? await h.get(path) : await h.post(path, {});
      assert.notEqual(res.status, 404, `${key} ${path} is served`);
    }
    assert.deepEqual(meta.response_types_supported, ['code']);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.ok(!(meta.id_token_signing_alg_values_supported as string[]).includes('none'));
    for (const alg of meta.id_token_signing_alg_values_supported as string[]) {
      assert.ok((h.json(await h.get('/jwks')).keys as { alg: string }[]).some((k) => k.alg === alg), `a ${alg} key is published`);
    }
    for (const grant of meta.grant_types_supported as string[]) {
      const res = await h.post('/token', { grant_type: grant });
      assert.notEqual(h.json(res).error, 'unsupported_grant_type', grant);
    }
    assert.ok(!(meta.token_endpoint_auth_signing_alg_values_supported as string[]).includes('none'));
  });

  it('reflects what is switched off', async () => {
    const p = await createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), grants: { refresh_token: false, authorization_code: false }, clientAuthMethods: ['client_secret_basic'] });
    try {
      const meta = p.metadata();
      assert.deepEqual(meta.grant_types_supported, ['client_credentials']);
      for (const key of ['authorization_endpoint', 'userinfo_endpoint', 'end_session_endpoint', 'code_challenge_methods_supported', 'id_token_signing_alg_values_supported']) {
        assert.equal(meta[key], undefined, `${key} is not advertised when the code flow is off`);
      }
      assert.deepEqual(meta.response_types_supported, []);
      const authorize = await p.handle({ method: 'GET', path: '/authorize', query: '', headers: {} });
      assert.equal(authorize.status, 404);
      assert.deepEqual(meta.token_endpoint_auth_methods_supported, ['client_secret_basic']);
      assert.equal(meta.token_endpoint_auth_signing_alg_values_supported, undefined);
    } finally {
      await p.close();
    }
  });

  it('serves discovery for an issuer with a path (RFC 8414 inserts, OIDC appends)', async () => {
    const p = await createPortcullis({ issuer: 'http://127.0.0.1:3000/tenant', storage: createMemoryStorage() });
    try {
      for (const path of ['/tenant/.well-known/openid-configuration', '/.well-known/oauth-authorization-server/tenant']) {
        const res = await p.handle({ method: 'GET', path, query: '', headers: {} });
        assert.equal(res.status, 200, path);
        assert.equal(JSON.parse(res.body).token_endpoint, 'http://127.0.0.1:3000/tenant/token');
      }
    } finally {
      await p.close();
    }
  });

  it('JWKS has public members only, unique kids, use and alg', async () => {
    const res = await h.get('/jwks');
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    const { keys } = h.json(res) as { keys: Record<string, unknown>[] };
    assert.ok(keys.length >= 1);
    assert.equal(new Set(keys.map((k) => k.kid)).size, keys.length);
    for (const key of keys) {
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(key[member], undefined, member);
      assert.equal(key.use, 'sig');
      assert.equal(typeof key.alg, 'string');
    }
  });

  it('health and readiness', async () => {
    assert.equal((await h.get('/healthz')).status, 200);
    assert.equal((await h.get('/readyz')).status, 200);
  });

  it('refuses an insecure issuer', async () => {
    await assert.rejects(createPortcullis({ issuer: 'http://auth.example.com', storage: createMemoryStorage() }), /https/);
    await assert.rejects(createPortcullis({ issuer: 'https://auth.example.com/?x=1', storage: createMemoryStorage() }), /query/);
  });
});
