/**
 * The seed tutorials' examples (shared/seeds/000-002, copied in ./seeds), shipped under
 * examples/builders with only the import path changed, mounted in Hapi (like the seed package) or on
 * node:http / fetch, and driven over HTTP with real requests and openid-client.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import authorizationCodeExample from '../../examples/builders/token-route-authorization-code.js';
import clientCredentialsExample from '../../examples/builders/token-route-client-credentials.js';
import deviceExample, { approvedDeviceCodes } from '../../examples/builders/token-route-device-authorization.js';
import refreshExample from '../../examples/builders/refresh-token-route.js';
import refreshBasicExample from '../../examples/builders/refresh-token-route-basic.js';
import { assertError, assertTokens, basic, captureWarnings, mountHapi, mountNode, postForm, type Mounted } from './helpers.js';

const root = new URL('../../', import.meta.url);
const seed = (name: string): string => readFileSync(new URL(`test/builders/seeds/${name}`, root), 'utf8');
const example = (name: string): string => readFileSync(new URL(`examples/builders/${name}`, root), 'utf8');

/** The code blocks of a seed page: from a line `import {` to the notes after it (or the end of the fence). */
function seedBlocks(text: string): string[] {
  const lines = text.split('\n');
  const blocks: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== 'import {') continue;
    const end = lines.findIndex((line, j) => j > i && (/Handler Notes/.test(line) || line.startsWith('```')));
    blocks.push(lines.slice(i, end).join('\n'));
    i = end;
  }
  return blocks;
}

/** Whitespace-insensitive form of a code text, with the seed's import path mapped to ours. */
function normalized(code: string): string {
  return code
    .replace(/'@kaapi\/oauth2-auth-design'/g, "'portcullis/builders'")
    .replace(/'\.\.\/\.\.\/src\/builders\/index\.js'/g, "'portcullis/builders'")
    .replace(/\s+/g, '');
}

const OPTIONS = { execute: [client.allowInsecureRequests] };

describe('the seed examples are the seeds\' code with only the import path changed', () => {
  const cases: Array<[string, number, string]> = [
    ['000_be400a93e7b3a6ea.txt', 0, 'token-route-authorization-code.ts'],
    ['000_be400a93e7b3a6ea.txt', 1, 'token-route-client-credentials.ts'],
    ['000_be400a93e7b3a6ea.txt', 2, 'token-route-device-authorization.ts'],
    ['001_aa43702b994a816f.txt', 0, 'refresh-token-route.ts'],
    ['002_31d142853dce2836.txt', 0, 'refresh-token-route-basic.ts'],
  ];
  for (const [file, index, target] of cases) {
    it(`${target} contains example ${index + 1} of seed ${file.slice(0, 3)} verbatim`, () => {
      const block = seedBlocks(seed(file))[index];
      assert.ok(block !== undefined && block.includes("from '@kaapi/oauth2-auth-design'"), `seed block ${index} of ${file}`);
      const source = example(target);
      assert.ok(normalized(source).includes(normalized(block)), `${target} holds the seed code`);
      // The only import is the builders' entry point.
      assert.deepEqual([...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]), ['../../src/builders/index.js']);
    });
  }
});

describe('seed 000, authorization code tokenRoute, mounted in Hapi', () => {
  let app: Mounted & { warnings: string[] };
  before(async () => {
    app = await mountHapi(authorizationCodeExample.build());
  });
  after(() => app.stop());

  const expected = {
    access_token: 'generated-access-token',
    token_type: 'Bearer',
    expires_in: 3600,
    scope: 'openid email',
    refresh_token: 'optional-refresh-token',
    id_token: 'optional-id-token',
  };

  it('starts in delegated mode, warning loudly that client authentication is left to the handler', () => {
    const banner = app.warnings.join('\n');
    assert.match(banner, /NO CLIENTS ARE REGISTERED/);
    assert.match(banner, /MUST check them/);
  });

  it('answers the handler\'s token response to a client using HTTP Basic, with no-store', async () => {
    const body = assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', code: 'abc', redirect_uri: 'https://app.example/cb', code_verifier: 'v'.repeat(43) }, basic('my-app', 'my-secret')));
    assert.deepEqual(body, expected);
  });

  it('answers the same to a public client (NoneAuthMethod: client_id only)', async () => {
    assert.deepEqual(assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', code: 'abc', client_id: 'spa' })), expected);
  });

  it('refuses client_secret_post, which the example does not add: 401 invalid_client with WWW-Authenticate', async () => {
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', code: 'abc', client_id: 'a', client_secret: 's' }), 401, 'invalid_client');
  });

  it('refuses two client-authentication methods in one request (400)', async () => {
    const call = await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', code: 'abc', client_id: 'a', client_secret: 's' }, basic('a', 's'));
    assertError(call, 400, 'invalid_request');
  });

  it('refuses malformed Basic credentials with 400, never 500', async () => {
    for (const authorization of ['Basic', 'Basic !!!', 'Basic ' + Buffer.from('no-colon').toString('base64'), 'Bearer abc']) {
      assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', code: 'abc' }, authorization), 400, 'invalid_request');
    }
  });

  it('requires the code (400 invalid_request) and serves only its grant (unsupported_grant_type)', async () => {
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', client_id: 'spa' }), 400, 'invalid_request');
    for (const grant_type of ['client_credentials', 'refresh_token', 'password']) {
      assertError(await postForm(app.url, '/oauth2/token', { grant_type, client_id: 'spa', refresh_token: 'x' }), 400, 'unsupported_grant_type');
    }
  });

  it('an empty or non-form body is a 400, not a crash', async () => {
    const empty = await fetch(app.url + '/oauth2/token', { method: 'POST' });
    assert.equal(empty.status, 400);
    const json = await fetch(app.url + '/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"authorization_code"}' });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');
  });

  it('publishes OIDC discovery (read by openid-client) and the JWKS at /oauth2/keys; the core\'s authorize endpoint is not served', async () => {
    const config = await client.discovery(new URL(app.issuer), 'spa', undefined, client.None(), OPTIONS);
    const meta = config.serverMetadata();
    assert.equal(meta.issuer, app.issuer);
    assert.equal(meta.token_endpoint, `${app.issuer}/oauth2/token`);
    assert.equal(meta.jwks_uri, `${app.issuer}/oauth2/keys`);
    assert.deepEqual(meta.grant_types_supported, ['authorization_code']);
    assert.deepEqual(meta.token_endpoint_auth_methods_supported, ['client_secret_basic', 'none']);
    assert.ok(meta.scopes_supported?.includes('openid') && meta.scopes_supported.includes('email'));
    for (const key of ['authorization_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'userinfo_endpoint', 'device_authorization_endpoint']) {
      assert.equal((meta as Record<string, unknown>)[key], undefined, `${key} is not advertised`);
    }
    const jwks = (await (await fetch(`${app.url}/oauth2/keys`)).json()) as { keys: Array<{ kid: string; d?: string }> };
    assert.ok(jwks.keys.length > 0 && jwks.keys.every((k) => typeof k.kid === 'string' && k.d === undefined));
    for (const path of ['/oauth2/authorize', '/oauth2/revoke', '/oauth2/introspect', '/oauth2/userinfo']) {
      assert.equal((await fetch(app.url + path)).status, 404, path);
    }
  });
});

describe('seed 000, client credentials tokenRoute', () => {
  let app: Mounted & { warnings: string[] };
  before(async () => {
    app = await mountHapi(clientCredentialsExample.build());
  });
  after(() => app.stop());

  it('issues with HTTP Basic, echoing the requested scope and expires_in = setTokenTTL(600)', async () => {
    assert.deepEqual(assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', scope: 'reports:read reports:write' }, basic('svc', 'svc-secret'))), {
      access_token: 'generated-access-token',
      token_type: 'Bearer',
      expires_in: 600,
      scope: 'reports:read reports:write',
    });
    // `setScope(scope ?? '')` with no scope: no scope member at all.
    assert.deepEqual(assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials' }, basic('svc', 'svc-secret'))), {
      access_token: 'generated-access-token',
      token_type: 'Bearer',
      expires_in: 600,
    });
  });

  it('works for openid-client (RFC 8414 discovery, clientCredentialsGrant)', async () => {
    const config = await client.discovery(new URL(app.issuer), 'svc', 'svc-secret', client.ClientSecretBasic('svc-secret'), { ...OPTIONS, algorithm: 'oauth2' });
    assert.equal(config.serverMetadata().token_endpoint, `${app.issuer}/oauth2/token`);
    const tokens = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
    assert.equal(tokens.access_token, 'generated-access-token');
    assert.equal(tokens.expires_in, 600);
    assert.equal(tokens.scope, 'reports:read');
  });

  it('refuses public clients and methods it did not add (401 invalid_client), and malformed scopes (invalid_scope)', async () => {
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', client_id: 'svc' }), 401, 'invalid_client');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', client_id: 'svc', client_secret: 'svc-secret' }), 401, 'invalid_client');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', scope: 'a"b' }, basic('svc', 'svc-secret')), 400, 'invalid_scope');
  });

  it('is an OAuth 2.0 design: RFC 8414 metadata, no OpenID discovery', async () => {
    assert.equal((await fetch(`${app.url}/.well-known/oauth-authorization-server`)).status, 200);
    assert.equal((await fetch(`${app.url}/.well-known/openid-configuration`)).status, 404);
  });
});

describe('seed 000, device authorization tokenRoute', () => {
  let app: Mounted & { warnings: string[] };
  before(async () => {
    app = await mountHapi(deviceExample.build());
  });
  after(() => app.stop());

  it('answers authorization_pending until the app approves the device code, then the tokens', async () => {
    const poll = () => postForm(app.url, '/oauth2/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'device-code-1', client_id: 'tv' });
    assertError(await poll(), 400, 'authorization_pending');
    approvedDeviceCodes.add('device-code-1');
    assert.deepEqual(assertTokens(await poll()), { access_token: 'generated-access-token', token_type: 'Bearer', expires_in: 600 });
  });

  it('works for openid-client\'s pollDeviceAuthorizationGrant', async () => {
    const config = new client.Configuration({ issuer: app.issuer, token_endpoint: `${app.issuer}/oauth2/token` }, 'tv', undefined, client.None());
    client.allowInsecureRequests(config);
    setTimeout(() => approvedDeviceCodes.add('device-code-2'), 300);
    const tokens = await client.pollDeviceAuthorizationGrant(config, {
      device_code: 'device-code-2',
      user_code: 'ABCD-EFGH',
      verification_uri: `${app.issuer}/device`,
      expires_in: 60,
      interval: 1,
    });
    assert.equal(tokens.access_token, 'generated-access-token');
    assert.equal(tokens.expires_in, 600);
  });

  it('requires device_code, and client_id only (HTTP Basic is not added)', async () => {
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: 'tv' }), 400, 'invalid_request');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'x' }, basic('tv', 'secret')), 401, 'invalid_client');
  });
});

describe('seed 001, refreshTokenRoute with NoneAuthMethod', () => {
  let app: Mounted & { warnings: string[] };
  before(async () => {
    app = await mountHapi(refreshExample.build());
  });
  after(() => app.stop());

  it('answers a refresh with the handler\'s rotated refresh token', async () => {
    assert.deepEqual(assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'old-refresh-token', client_id: 'spa', scope: 'openid' })), {
      access_token: 'generated-access-token',
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'openid email',
      refresh_token: 'new-optional-refresh-token',
      id_token: 'optional-id-token',
    });
  });

  it('requires refresh_token, refuses scopes outside setScopes, and serves no authorization_code (no tokenRoute)', async () => {
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', client_id: 'spa' }), 400, 'invalid_request');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'spa', scope: 'admin' }), 400, 'invalid_scope');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', code: 'c', client_id: 'spa' }), 400, 'unsupported_grant_type');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'r' }, basic('spa', 's')), 401, 'invalid_client');
  });
});

describe('seed 002, refreshTokenRoute with ClientSecretBasic and NoneAuthMethod, on node:http and fetch', () => {
  let app: Mounted & { warnings: string[] };
  before(async () => {
    app = await mountNode(refreshBasicExample.build());
  });
  after(() => app.stop());

  const expected = {
    access_token: 'generated-access-token',
    token_type: 'Bearer',
    expires_in: 3600,
    scope: 'openid email',
    refresh_token: 'optional-refresh-token',
    id_token: 'optional-id-token',
  };

  it('answers Basic and public clients alike (node:http adapter)', async () => {
    assert.match(app.warnings.join('\n'), /NO CLIENTS ARE REGISTERED/);
    assert.deepEqual(assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'r1' }, basic('web', 'web-secret'))), expected);
    assert.deepEqual(assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'r1', client_id: 'spa' })), expected);
  });

  it('answers through the fetch handler too', async () => {
    const design = refreshBasicExample.build();
    const { result: res } = await captureWarnings(async () => {
      await design.start({ issuer: 'http://127.0.0.1:9' });
      return design.fetch(
        new Request('http://127.0.0.1:9/oauth2/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('web', 'web-secret') },
          body: 'grant_type=refresh_token&refresh_token=r1',
        }),
      );
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), expected);
    await design.close();
  });
});
