/**
 * Configuration rules of the flow builders and of the core's delegated mode: what is refused at
 * start (clearly), how the mode is chosen, the OpenAPI security schemes, mounting under a prefix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as client from 'openid-client';
import {
  ClientSecretBasic,
  ClientSecretJwt,
  ClientSecretPost,
  MultipleFlowsBuilder,
  NoneAuthMethod,
  OAuth2AuthorizationCodeBuilder,
  OAuth2ClientCredentialsBuilder,
  OAuth2DeviceAuthorizationBuilder,
  OAuth2TokenResponse,
  OIDCAuthorizationCodeBuilder,
  OIDCClientCredentialsBuilder,
  OIDCDeviceAuthorizationBuilder,
  PrivateKeyJwt,
} from '../../src/builders/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { allowDelegatedClientAuthentication } from '../../src/core/options.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { basic, captureWarnings, mountHapi } from './helpers.js';

const ISSUER = 'http://127.0.0.1:4100';
const ok = async () => new OAuth2TokenResponse({ access_token: 'ok' });

function refusesAtStart(build: () => { start(o?: { issuer?: string }): Promise<unknown> }, pattern: RegExp): Promise<void> {
  return assert.rejects(
    captureWarnings(() => build().start({ issuer: ISSUER })),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('delegated mode: what needs registered clients is refused at start, clearly', () => {
  it('authorizationRoute (the core\'s authorization endpoint) without clients', () =>
    refusesAtStart(() => OIDCAuthorizationCodeBuilder.create().authorizationRoute((r) => r.setPath('/login/authorize')).tokenRoute((r) => r.generateToken(ok)).build(), /authorization endpoint, which needs registered clients \(addClient\)/));

  it('the device flow\'s authorizationRoute without clients', () =>
    refusesAtStart(() => OAuth2DeviceAuthorizationBuilder.create().authorizationRoute((r) => r).tokenRoute((r) => r.generateToken(ok)).build(), /device authorization endpoint and verification page, which needs registered clients/));

  it('JWT client assertions without clients', async () => {
    await refusesAtStart(() => OAuth2ClientCredentialsBuilder.create().addClientAuthenticationMethod(new ClientSecretJwt()).tokenRoute((r) => r.generateToken(ok)).build(), /client_secret_jwt needs registered clients/);
    await refusesAtStart(() => OAuth2ClientCredentialsBuilder.create().addClientAuthenticationMethod(new PrivateKeyJwt()).tokenRoute((r) => r.generateToken(ok)).build(), /private_key_jwt needs registered clients/);
  });

  it('two refresh routes in one design without clients (nobody could tell which flow issued a token)', () =>
    refusesAtStart(
      () =>
        MultipleFlowsBuilder.create()
          .add(OIDCAuthorizationCodeBuilder.create().refreshTokenRoute((r) => r.generateToken(ok)))
          .add(OIDCDeviceAuthorizationBuilder.create().refreshTokenRoute((r) => r.generateToken(ok)))
          .build(),
      /define refreshTokenRoute on one flow only/,
    ));

  it('no handler and no client: nothing to serve', () => refusesAtStart(() => OIDCClientCredentialsBuilder.create().build(), /no generateToken handler/));

  it('no issuer', async () => {
    await assert.rejects(OAuth2ClientCredentialsBuilder.create().tokenRoute((r) => r.generateToken(ok)).build().start(), /needs an issuer/);
  });

  it('clients in storage switch the design to registry mode (no warning); a client added while delegated is refused (401)', async () => {
    const storage = createMemoryStorage();
    const first = OAuth2ClientCredentialsBuilder.create().setIssuer(ISSUER).setStorage(storage).addClient({ client_id: 'svc', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'] }).build();
    await (await first.start()).close({ keepStorage: true });
    const second = OAuth2ClientCredentialsBuilder.create().setIssuer(ISSUER).setStorage(storage).tokenRoute((r) => r.generateToken(ok)).build();
    const { result: running, warnings } = await captureWarnings(() => second.start());
    assert.equal(running.mode, 'registry');
    assert.deepEqual(warnings, []);
    const viaRegistry = await second.handle({ method: 'POST', path: '/oauth2/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('svc', 'svc-secret-0123456789') }, body: 'grant_type=client_credentials' });
    assert.equal(viaRegistry.status, 200, viaRegistry.body);
    await second.close();

    const delegated = OAuth2ClientCredentialsBuilder.create().setIssuer(ISSUER).addClientAuthenticationMethod(new ClientSecretBasic()).tokenRoute((r) => r.generateToken(ok)).build();
    const started = await captureWarnings(() => delegated.start());
    assert.equal(started.result.mode, 'delegated');
    await started.result.clients.upsert({ client_id: 'late', client_secret: 'late-secret-0123456789', grant_types: ['client_credentials'] });
    const form = (id: string) =>
      delegated.handle({ method: 'POST', path: '/oauth2/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, 'whatever') }, body: 'grant_type=client_credentials' });
    assert.equal((await form('late')).status, 401, 'a registered client is never delegated');
    assert.equal((await form('someone')).status, 200);
    await delegated.close();
  });

  it('the client-credentials builder refuses NoneAuthMethod (and its type does not accept it)', () => {
    // @ts-expect-error NoneAuthMethod is not a confidential method
    assert.throws(() => OAuth2ClientCredentialsBuilder.create().addClientAuthenticationMethod(new NoneAuthMethod()), ConfigError);
  });
});

describe('the core\'s delegated mode is for the builders only', () => {
  const hooks = { generateToken: async () => ({ access_token: 'x', token_type: 'Bearer' }) };

  it('createPortcullis refuses clientAuthentication: delegated from anyone else', async () => {
    await assert.rejects(createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), clientAuthentication: 'delegated', hooks }), /reserved for the flow builders/);
  });

  it('even from the builders, it needs a generateToken hook and no registered client', async () => {
    await assert.rejects(createPortcullis(allowDelegatedClientAuthentication({ issuer: ISSUER, storage: createMemoryStorage(), clientAuthentication: 'delegated' as const })), /needs hooks.generateToken/);
    const storage = createMemoryStorage();
    const seeded = await createPortcullis({ issuer: ISSUER, storage });
    await seeded.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'] });
    await seeded.close({ keepStorage: true });
    await assert.rejects(createPortcullis(allowDelegatedClientAuthentication({ issuer: ISSUER, storage, clientAuthentication: 'delegated' as const, hooks })), /1 client\(s\) are registered in storage/);
    await assert.rejects(createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), clientAuthentication: 'sideways' as never }), /must be 'registry' or 'delegated'/);
  });
});

describe('OpenAPI 3.1 security schemes (the seed package\'s docs())', () => {
  it('an OAuth2 authorization-code design: oauth2 / authorizationCode with its URLs and scopes', () => {
    const design = OAuth2AuthorizationCodeBuilder.create()
      .setIssuer('https://auth.example.com')
      .setScopes({ 'api:read': 'Read the API' })
      .setDescription('Sign in with Example')
      .refreshTokenRoute((r) => r.generateToken(ok))
      .build();
    assert.deepEqual(design.docs(), {
      name: 'oauth2-authorization-code',
      scheme: {
        type: 'oauth2',
        description: 'Sign in with Example',
        flows: {
          authorizationCode: {
            authorizationUrl: 'https://auth.example.com/oauth2/authorize',
            tokenUrl: 'https://auth.example.com/oauth2/token',
            refreshUrl: 'https://auth.example.com/oauth2/token',
            scopes: { 'api:read': 'Read the API' },
          },
        },
      },
    });
  });

  it('client credentials and device designs; relative URLs until the issuer is known', () => {
    assert.deepEqual(OAuth2ClientCredentialsBuilder.create().tokenRoute((r) => r.setPath('/token')).build().toOpenAPISecurityScheme(), {
      type: 'oauth2',
      flows: { clientCredentials: { tokenUrl: '/token', scopes: {} } },
    });
    assert.deepEqual(OAuth2DeviceAuthorizationBuilder.create().strategyName('tv').build().docs({ issuer: 'https://a.example' }), {
      name: 'tv',
      scheme: { type: 'oauth2', flows: { 'x-deviceAuthorization': { deviceAuthorizationUrl: 'https://a.example/oauth2/devicecode', tokenUrl: 'https://a.example/oauth2/token', scopes: {} } } },
    });
  });

  it('OIDC designs: openIdConnect with the discovery URL; OAuth2-only multiple flows: the flows merged', () => {
    assert.deepEqual(OIDCClientCredentialsBuilder.create().setIssuer('https://a.example').build().toOpenAPISecurityScheme(), {
      type: 'openIdConnect',
      openIdConnectUrl: 'https://a.example/.well-known/openid-configuration',
    });
    const merged = MultipleFlowsBuilder.create().setIssuer('https://a.example').add(OAuth2AuthorizationCodeBuilder.create()).add(OAuth2ClientCredentialsBuilder.create()).build().docs();
    assert.equal(merged.name, 'OIDC Multiple Flows');
    assert.deepEqual(Object.keys((merged.scheme as { flows: object }).flows).sort(), ['authorizationCode', 'clientCredentials']);
  });
});

describe('MultipleFlowsBuilder keeps each flow\'s client-authentication methods', () => {
  it('a method only another flow added is refused with 401 (even for a flow the core mints itself)', async () => {
    const design = MultipleFlowsBuilder.create()
      .setIssuer(ISSUER)
      .addClient({ client_id: 'poster', client_secret: 'poster-secret-0123456789', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'] })
      .addClient({ client_id: 'basic', client_secret: 'basic-secret-0123456789', grant_types: ['client_credentials'] })
      .add(OAuth2AuthorizationCodeBuilder.create().addClientAuthenticationMethod(new ClientSecretPost()))
      .add(OAuth2ClientCredentialsBuilder.create().addClientAuthenticationMethod(new ClientSecretBasic()))
      .build();
    const form = (body: string, authorization?: string) =>
      design.handle({ method: 'POST', path: '/oauth2/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization !== undefined ? { authorization } : {}) }, body });
    try {
      const refused = await form('grant_type=client_credentials&client_id=poster&client_secret=poster-secret-0123456789');
      assert.equal(refused.status, 401);
      assert.match(refused.headers['www-authenticate'] ?? '', /^Basic realm=/);
      assert.equal((await form('grant_type=client_credentials', basic('basic', 'basic-secret-0123456789'))).status, 200);
    } finally {
      await design.close();
    }
  });
});

describe('mounting', () => {
  it('in Hapi under a route prefix: the issuer carries the prefix, discovery and tokens work there', async () => {
    const design = OIDCClientCredentialsBuilder.create()
      .addClientAuthenticationMethod(new ClientSecretBasic())
      .tokenRoute((r) => r.generateToken(async ({ ttl }) => new OAuth2TokenResponse({ access_token: 'prefixed' }).setExpiresIn(ttl)))
      .build();
    const app = await mountHapi(design, { prefix: '/auth' });
    try {
      const config = await client.discovery(new URL(app.issuer), 'svc', 'secret', client.ClientSecretBasic('secret'), { execute: [client.allowInsecureRequests] });
      assert.equal(config.serverMetadata().token_endpoint, `${app.issuer}/oauth2/token`);
      const tokens = await client.clientCredentialsGrant(config);
      assert.equal(tokens.access_token, 'prefixed');
    } finally {
      await app.stop();
    }
  });
});
