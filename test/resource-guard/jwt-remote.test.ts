/**
 * The bearer guard against a remote issuer's JWKS: an authorization server on 127.0.0.1, its
 * jwks_uri fetched once and cached; a token signed by a key the cache does not know (after a
 * rotation) triggers one refetch, but not more often than the cooldown allows.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import { toNodeListener } from '../../src/adapters/node-http.js';
import { createPortcullis } from '../../src/provider.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { createBearerVerifier, type BearerFailure } from '../../src/resource/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

const SVC = { id: 'svc', secret: 'svc-secret-0123456789abcdef' };

describe('bearer guard: JWT access tokens against a remote JWKS', () => {
  let server: Server;
  let portcullis: Portcullis;
  let issuer: string;
  let jwksUri: string;
  let jwksFetches = 0;

  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    portcullis = await createPortcullis({ issuer, storage: createMemoryStorage(), grants: { authorization_code: false } });
    await portcullis.clients.upsert({ client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read' });
    const listener = toNodeListener(portcullis);
    server.on('request', (req, res) => {
      if (req.url === '/jwks') jwksFetches += 1;
      listener(req, res);
    });
    jwksUri = portcullis.endpoints.jwks;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await portcullis.close();
  });

  async function issue(): Promise<string> {
    const res = await fetch(portcullis.endpoints.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${SVC.id}:${SVC.secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials&scope=api%3Aread',
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { access_token: string }).access_token;
  }
  const req = (token: string) => ({ method: 'GET', headers: { authorization: `Bearer ${token}` } });

  it('fetches the JWKS once, caches it, and refetches when a rotated key signs (cooldown 0)', async () => {
    const guard = createBearerVerifier({ issuer, jwksUri, audience: issuer, jwksCooldownSeconds: 0 });
    const before = jwksFetches;
    const first = await issue();
    const ok = await guard.verify(req(first));
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.token.client_id, SVC.id);
    assert.ok((await guard.verify(req(first))).ok);
    assert.equal(jwksFetches - before, 1, 'one fetch for two verifications');

    await portcullis.keys.rotate({ activateIn: 0 });
    const rotated = await issue();
    assert.notEqual(jose.decodeProtectedHeader(rotated).kid, jose.decodeProtectedHeader(first).kid);
    assert.ok((await guard.verify(req(rotated))).ok, 'the new key is fetched');
    assert.equal(jwksFetches - before, 2);
    assert.ok((await guard.verify(req(first))).ok, 'the retired key stays published for its tokens');
    assert.ok((await guard.verify(req(rotated))).ok);
    assert.equal(jwksFetches - before, 2, 'no more fetches once the set knows both keys');
  });

  it('within the cooldown, an unknown kid does not trigger another fetch (and is refused)', async () => {
    const guard = createBearerVerifier({ issuer, jwksUri, audience: issuer, jwksCooldownSeconds: 30 });
    const before = jwksFetches;
    assert.ok((await guard.verify(req(await issue()))).ok);
    assert.equal(jwksFetches - before, 1);
    await portcullis.keys.rotate({ activateIn: 0 });
    const rotated = await issue();
    const result = (await guard.verify(req(rotated))) as BearerFailure;
    assert.equal(result.ok, false);
    assert.equal(result.status, 401);
    assert.equal(result.error, 'invalid_token');
    assert.equal(jwksFetches - before, 1, 'cooling down: no refetch');
  });

  it('an unreachable JWKS is 503 temporarily_unavailable (the token is not blamed), reported to onError', async () => {
    const errors: unknown[] = [];
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const guard = createBearerVerifier({ issuer, jwksUri: `http://127.0.0.1:${deadPort}/jwks`, audience: issuer, onError: (err) => errors.push(err) });
    const result = (await guard.verify(req(await issue()))) as BearerFailure;
    assert.equal(result.ok, false);
    assert.equal(result.status, 503);
    assert.equal(result.error, 'temporarily_unavailable');
    assert.equal(result.wwwAuthenticate, `Bearer realm="${issuer}"`);
    assert.equal(errors.length, 1);
  });
});
