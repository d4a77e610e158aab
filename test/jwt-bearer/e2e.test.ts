/**
 * End to end: the JWT bearer grant against the ready-to-run server (child process, config file with
 * a trusted issuer's JWKS), driven by openid-client v6's genericGrantRequest.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const GT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const IDP = 'https://idp.corp.example';
const BATCH = { id: 'batch', secret: 'batch-secret-0123456789abcdef' };
const ALICE = { username: 'alice', password: 'alice-password-123', id: 'user-alice' };

let server: SpawnedServer;
let idpKey: CryptoKey;

before(async () => {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  idpKey = privateKey;
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: 'corp-1', alg: 'RS256', use: 'sig' };
  server = await spawnServer({
    config: ({ issuer }) => ({
      issuer,
      grants: { jwt_bearer: true },
      jwtBearer: { trustedIssuers: [{ issuer: IDP, jwks: { keys: [publicJwk] }, algorithms: ['RS256'] }] },
      clients: [{ client_id: BATCH.id, client_secret: BATCH.secret, grant_types: [GT, 'refresh_token'], scope: 'reports:read reports:write' }],
      users: [{ username: ALICE.username, password: ALICE.password, id: ALICE.id }],
    }),
  });
});

after(async () => {
  await server?.stop();
});

function assertion(config: client.Configuration, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ iss: IDP, sub: ALICE.username, aud: config.serverMetadata().token_endpoint, iat: now, exp: now + 120, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'corp-1' })
    .sign(idpKey);
}

test('JWT bearer over HTTP: tokens for the mapped user, refresh works, replay and bad audience refused', async () => {
  const config = await client.discovery(new URL(server.issuer), BATCH.id, undefined, client.ClientSecretBasic(BATCH.secret), { execute: [client.allowInsecureRequests] });
  assert.ok(config.serverMetadata().grant_types_supported?.includes(GT));

  const signed = await assertion(config);
  const tokens = await client.genericGrantRequest(config, GT, { assertion: signed, scope: 'reports:read' });
  assert.equal(tokens.scope, 'reports:read');
  assert.equal(typeof tokens.refresh_token, 'string');
  const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!), { [jose.customFetch]: fetch });
  const { payload } = await jose.jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, typ: 'at+jwt' });
  assert.equal(payload.sub, ALICE.id);
  assert.equal(payload.client_id, BATCH.id);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
  assert.equal(jose.decodeJwt(refreshed.access_token).sub, ALICE.id);

  const invalidGrant = (err: unknown) => {
    assert.ok(err instanceof client.ResponseBodyError, `expected a ResponseBodyError, got ${String(err)}`);
    assert.equal(err.error, 'invalid_grant');
    assert.equal(err.error_description, 'The assertion is invalid, expired or already used');
    return true;
  };
  await assert.rejects(client.genericGrantRequest(config, GT, { assertion: signed }), invalidGrant);
  await assert.rejects(client.genericGrantRequest(config, GT, { assertion: await assertion(config, { aud: 'https://elsewhere.example/token' }) }), invalidGrant);
  await assert.rejects(client.genericGrantRequest(config, GT, { assertion: await assertion(config, { sub: 'nobody' }) }), invalidGrant);
});
