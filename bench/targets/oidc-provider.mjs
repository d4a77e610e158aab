/**
 * oidc-provider 9 (panva) on node:http, set up for the client_credentials grant as its
 * documentation describes: a resource indicator (RFC 8707, features.resourceIndicators) whose
 * resource server takes JWT access tokens signed ES256 (the provider's keystore holds one P-256
 * key), and an "opaque" variant, chosen per client, whose tokens go to the default in-memory
 * adapter (an LRU of 1,000 entries). Introspection (RFC 7662) is on.
 *
 *   POST /token                  client_credentials (resource defaults to the bench resource)
 *   POST /token/introspection    introspection
 *   GET  /jwks                   the public keys
 *
 * It prints "Unsupported runtime" on Node 20 (it wants Node 22 LTS or later) and works.
 *
 * Environment: PORT, HOST (default 127.0.0.1), BENCH_CLIENTS (JSON, see bench/lib/clients.mjs).
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider, { errors } from 'oidc-provider';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 0);
const setup = JSON.parse(process.env.BENCH_CLIENTS || '{}');
const issuer = `http://${host}:${port}`;
const resource = setup.resource ?? 'https://api.example.com';
const scope = setup.scope ?? 'api:read';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'oidc-provider-es256' };

const clients = [];
for (const c of [setup.jwt, setup.opaque]) {
  if (!c?.id) continue;
  clients.push({
    client_id: c.id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope,
  });
}
const opaqueClient = setup.opaque?.id;

const provider = new Provider(issuer, {
  clients,
  // The keystore holds only an ES256 key, so ID tokens (unused here) default to ES256 too.
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [signingKey] },
  scopes: scope.split(' '),
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // The same rule as Portcullis: details only for the client the token was issued to.
    introspection: { enabled: true, allowedPolicy: async (_ctx, caller, token) => token.clientId === caller.clientId },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resourceIndicator, client) {
        if (resourceIndicator !== resource) throw new errors.InvalidTarget();
        return {
          scope,
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: client.clientId === opaqueClient ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

const server = createServer(provider.callback());
server.keepAliveTimeout = 5000;
server.listen(port, host, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
