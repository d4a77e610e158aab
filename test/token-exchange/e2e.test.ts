/**
 * End to end: token exchange against the ready-to-run server (child process, config file), driven
 * by openid-client v6's genericGrantRequest.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const ORDERS = 'https://orders.example.com';
const WEB = { id: 'web', secret: 'web-secret-0123456789abcdef' };
const GATEWAY = { id: 'gateway', secret: 'gateway-secret-0123456789abcdef' };
const ALICE = { username: 'alice', password: 'alice-password-123', id: 'user-alice' };

let server: SpawnedServer;

before(async () => {
  server = await spawnServer({
    config: ({ issuer }) => ({
      issuer,
      grants: { password: true, token_exchange: true },
      clients: [
        { client_id: WEB.id, client_secret: WEB.secret, grant_types: ['password', 'refresh_token', TE], scope: 'api:read api:write' },
        { client_id: GATEWAY.id, client_secret: GATEWAY.secret, grant_types: ['client_credentials', TE], scope: 'api:read', allowed_audiences: [ORDERS] },
      ],
      users: [{ username: ALICE.username, password: ALICE.password, id: ALICE.id }],
    }),
  });
});

after(async () => {
  await server?.stop();
});

function configFor(c: { id: string; secret: string }): Promise<client.Configuration> {
  return client.discovery(new URL(server.issuer), c.id, undefined, client.ClientSecretBasic(c.secret), { execute: [client.allowInsecureRequests] });
}

test('token exchange over HTTP: advertised, delegation with act, verified with the JWKS; refusals are RFC 8693 errors', async () => {
  const web = await configFor(WEB);
  const gateway = await configFor(GATEWAY);
  assert.ok(gateway.serverMetadata().grant_types_supported?.includes(TE));

  const alice = await client.genericGrantRequest(web, 'password', { username: ALICE.username, password: ALICE.password, scope: 'api:read api:write' });
  const actor = await client.clientCredentialsGrant(gateway);
  const exchanged = await client.genericGrantRequest(gateway, TE, {
    subject_token: alice.access_token,
    subject_token_type: AT,
    actor_token: actor.access_token,
    actor_token_type: AT,
    audience: ORDERS,
  });
  assert.equal(exchanged.issued_token_type, AT);
  assert.equal(exchanged.token_type, 'bearer');
  assert.equal(exchanged.refresh_token, undefined);
  assert.equal(exchanged.scope, 'api:read');

  const jwks = jose.createRemoteJWKSet(new URL(gateway.serverMetadata().jwks_uri!), { [jose.customFetch]: fetch });
  const { payload, protectedHeader } = await jose.jwtVerify(exchanged.access_token, jwks, { issuer: server.issuer, audience: ORDERS, typ: 'at+jwt' });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(payload.sub, ALICE.id);
  assert.equal(payload.client_id, GATEWAY.id);
  assert.deepEqual(payload.act, { sub: GATEWAY.id });
  assert.ok((payload.exp as number) <= (jose.decodeJwt(alice.access_token).exp as number));

  const refused = (error: string) => (err: unknown) => {
    assert.ok(err instanceof client.ResponseBodyError, `expected a ResponseBodyError, got ${String(err)}`);
    assert.equal(err.error, error);
    assert.equal(err.status, 400);
    return true;
  };
  await assert.rejects(
    client.genericGrantRequest(gateway, TE, { subject_token: alice.access_token, subject_token_type: AT, actor_token: actor.access_token, actor_token_type: AT, audience: 'https://evil.example' }),
    refused('invalid_target'),
  );
  await assert.rejects(client.genericGrantRequest(gateway, TE, { subject_token: 'forged', subject_token_type: AT }), refused('invalid_request'));
  await assert.rejects(client.genericGrantRequest(gateway, TE, { subject_token: alice.access_token, subject_token_type: AT, actor_token: actor.access_token }), refused('invalid_request'));

  // Revoking alice's grant (her refresh token) deactivates the exchanged token.
  await client.tokenRevocation(web, alice.refresh_token!, { token_type_hint: 'refresh_token' });
  const introspection = await client.tokenIntrospection(gateway, exchanged.access_token);
  assert.equal(introspection.active, false);
});
