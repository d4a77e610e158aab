/**
 * End to end: the ready-to-run server (`npm start`) in a child process, driven over HTTP by
 * oauth4webapi (the low-level library openid-client is built on).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const SVC = { id: 'svc', secret: 'svc-secret-0123456789' };
const RS = { id: 'rs', secret: 'rs-secret-0123456789' };
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let server: SpawnedServer;
let configuredIssuer: string;
let as: oauth.AuthorizationServer;
const svc: oauth.Client = { client_id: SVC.id };
const svcAuth = oauth.ClientSecretBasic(SVC.secret);

before(async () => {
  server = await spawnServer({
    config: ({ issuer }) => {
      configuredIssuer = issuer;
      return {
        issuer,
        clients: [
          { client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read api:write' },
          { client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'], resource_server_audiences: [issuer] },
        ],
      };
    },
  });
});

after(async () => {
  await server?.stop();
});

async function discover(algorithm: 'oidc' | 'oauth2'): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(server.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm, ...insecure });
  return oauth.processDiscoveryResponse(issuer, response);
}

async function clientCredentials(scope: string): Promise<oauth.TokenEndpointResponse> {
  const response = await oauth.clientCredentialsGrantRequest(as, svc, svcAuth, new URLSearchParams({ scope }), insecure);
  return oauth.processClientCredentialsResponse(as, svc, response);
}

async function introspect(client: oauth.Client, auth: oauth.ClientAuth, token: string): Promise<oauth.IntrospectionResponse> {
  const response = await oauth.introspectionRequest(as, client, auth, token, insecure);
  return oauth.processIntrospectionResponse(as, client, response);
}

test('discovery with discoveryRequest + processDiscoveryResponse (OIDC and RFC 8414 locations) names the configured issuer', async () => {
  as = await discover('oidc');
  assert.equal(as.issuer, configuredIssuer);
  assert.equal(as.token_endpoint, `${configuredIssuer}/token`);
  assert.equal(as.introspection_endpoint, `${configuredIssuer}/introspect`);
  assert.equal(as.revocation_endpoint, `${configuredIssuer}/revoke`);
  assert.equal(as.jwks_uri, `${configuredIssuer}/jwks`);
  assert.deepEqual(await discover('oauth2'), as);
});

test('client_credentials with ClientSecretBasic', async () => {
  const tokens = await clientCredentials('api:read');
  assert.equal(tokens.token_type, 'bearer'); // oauth4webapi lower-cases it
  assert.equal(tokens.scope, 'api:read');
  assert.equal(tokens.expires_in, 3600);
  assert.equal(tokens.refresh_token, undefined);
  assert.equal(tokens.access_token.split('.').length, 3);

  // A wrong secret: 401 with a Basic challenge, surfaced as a WWWAuthenticateChallengeError.
  const response = await oauth.clientCredentialsGrantRequest(as, svc, oauth.ClientSecretBasic('not-the-secret-000'), new URLSearchParams({ scope: 'api:read' }), insecure);
  const err = await oauth.processClientCredentialsResponse(as, svc, response).then(
    () => assert.fail('a wrong secret must be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, String(err));
  assert.equal(err.status, 401);
  assert.equal(err.cause[0]?.scheme, 'basic');
  assert.equal(err.cause[0]?.parameters.realm, configuredIssuer);
  assert.deepEqual(await err.response.json(), { error: 'invalid_client', error_description: 'Client authentication failed' });

  // A scope outside the client's registration: invalid_scope.
  const wide = await oauth.clientCredentialsGrantRequest(as, svc, svcAuth, new URLSearchParams({ scope: 'admin' }), insecure);
  await assert.rejects(oauth.processClientCredentialsResponse(as, svc, wide), (e: unknown) => {
    assert.ok(e instanceof oauth.ResponseBodyError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.error, 'invalid_scope');
    return true;
  });
});

test('introspection with processIntrospectionResponse: the owner and a resource server see it; revoked is {active:false}', async () => {
  const tokens = await clientCredentials('api:read api:write');
  const own = await introspect(svc, svcAuth, tokens.access_token);
  assert.equal(own.active, true);
  assert.equal(own.client_id, SVC.id);
  assert.equal(own.sub, SVC.id);
  assert.equal(own.scope, 'api:read api:write');
  assert.equal(own.iss, configuredIssuer);
  assert.equal(own.aud, configuredIssuer);
  assert.equal(own.exp! - own.iat!, 3600);

  const rs: oauth.Client = { client_id: RS.id };
  const rsAuth = oauth.ClientSecretBasic(RS.secret);
  const seenByRs = await introspect(rs, rsAuth, tokens.access_token);
  assert.equal(seenByRs.active, true);
  assert.equal(seenByRs.client_id, SVC.id);

  assert.deepEqual(await introspect(svc, svcAuth, 'not-a-token'), { active: false });

  const revocation = await oauth.revocationRequest(as, svc, svcAuth, tokens.access_token, insecure);
  await oauth.processRevocationResponse(revocation);
  assert.deepEqual(await introspect(svc, svcAuth, tokens.access_token), { active: false });
  assert.deepEqual(await introspect(rs, rsAuth, tokens.access_token), { active: false });
});
