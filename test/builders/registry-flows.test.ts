/**
 * Registry mode end to end: the builder examples that register clients, mounted in Hapi and driven
 * by openid-client v6 (discovery, authorization code with PKCE and nonce, refresh, client
 * credentials, device flow) and a cookie-keeping browser on the hosted pages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as client from 'openid-client';
import authorizationCode, { ALICE, WEB_APP, blockedSubjects } from '../../examples/builders/oidc-authorization-code.js';
import clientCredentials, { BILLING, REPORTING } from '../../examples/builders/oidc-client-credentials.js';
import device, { BOB, TV_APP } from '../../examples/builders/oidc-device-authorization.js';
import multipleFlows, { SERVICE, TV, WEB } from '../../examples/builders/multiple-flows.js';
import { assertError, basic, HttpBrowser, mountHapi, postForm, type Mounted } from './helpers.js';

const OPTIONS = { execute: [client.allowInsecureRequests] };

/** Run the browser part of the code flow and return the callback URL. */
async function signIn(config: client.Configuration, redirectUri: string, user: { username: string; password: string }, scope: string) {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  const callback = await new HttpBrowser().authorize(url.href, redirectUri, user);
  return { callback, verifier, nonce, state };
}

describe('OIDC authorization code (registry mode) with openid-client', () => {
  let app: Mounted & { warnings: string[] };
  let config: client.Configuration;
  const design = authorizationCode.build();
  before(async () => {
    app = await mountHapi(design);
    config = await client.discovery(new URL(app.issuer), WEB_APP.client_id, WEB_APP.client_secret, client.ClientSecretBasic(WEB_APP.client_secret), OPTIONS);
  });
  after(() => app.stop());

  it('starts without the delegated-mode warning and advertises the core\'s endpoints under /oauth2/', () => {
    assert.equal(app.warnings.length, 0);
    const meta = config.serverMetadata();
    assert.equal(meta.authorization_endpoint, `${app.issuer}/oauth2/authorize`);
    assert.equal(meta.token_endpoint, `${app.issuer}/oauth2/token`);
    assert.equal(meta.jwks_uri, `${app.issuer}/oauth2/keys`);
    assert.equal(meta.userinfo_endpoint, `${app.issuer}/oauth2/userinfo`);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(meta.token_endpoint_auth_methods_supported, ['client_secret_basic', 'none']);
  });

  it('signs in on the hosted pages, redeems the code and gets the handler\'s tokens: an RFC 9068 access token with exp = iat + TTL, a verified ID token, a working refresh token', async () => {
    const { callback, verifier, nonce, state } = await signIn(config, WEB_APP.redirect_uri, ALICE, 'openid email offline_access api:read');
    assert.equal(callback.searchParams.get('iss'), app.issuer);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.expires_in, 900);
    assert.equal(tokens.scope, 'openid email offline_access api:read');
    const idClaims = tokens.claims();
    assert.ok(idClaims !== undefined);
    assert.equal(idClaims.nonce, nonce);
    assert.equal(idClaims.tenant, 'acme');
    assert.equal(idClaims.exp - idClaims.iat, 900);

    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    assert.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt');
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: app.issuer, audience: app.issuer, typ: 'at+jwt' });
    assert.equal(payload.sub, idClaims.sub);
    assert.equal(payload.client_id, WEB_APP.client_id);
    assert.equal(payload.tenant, 'acme');
    assert.equal(payload.exp! - payload.iat!, 900);

    // UserInfo (the core's) accepts the helper-minted access token.
    const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    assert.equal(info.email, ALICE.email);

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    assert.equal(refreshed.claims()?.sub, idClaims.sub);
    // The first refresh token was rotated by the core: presenting it again revokes the grant.
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, basic(WEB_APP.client_id, WEB_APP.client_secret)), 400, 'invalid_grant');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token! }, basic(WEB_APP.client_id, WEB_APP.client_secret)), 400, 'invalid_grant');
  });

  it('the handler can still refuse after the core accepted (its own policy)', async () => {
    const alice = await design.server!.users.findByUsername(ALICE.username);
    assert.ok(alice !== undefined);
    const { callback, verifier, nonce, state } = await signIn(config, WEB_APP.redirect_uri, ALICE, 'openid');
    blockedSubjects.add(alice.id);
    try {
      await assert.rejects(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state }), (err: unknown) => {
        assert.ok(err instanceof client.ResponseBodyError);
        assert.equal(err.error, 'access_denied');
        assert.equal(err.error_description, 'This account is blocked');
        assert.equal(err.status, 400);
        return true;
      });
    } finally {
      blockedSubjects.delete(alice.id);
    }
  });
});

describe('OIDC client credentials (registry mode) with openid-client', () => {
  let app: Mounted & { warnings: string[] };
  before(async () => {
    app = await mountHapi(clientCredentials.build());
  });
  after(() => app.stop());

  it('issues to registered services, each with its registered method (Basic, client_secret_post), within its registered scope', async () => {
    const cases = [
      { who: REPORTING, auth: client.ClientSecretBasic(REPORTING.client_secret) },
      { who: BILLING, auth: client.ClientSecretPost(BILLING.client_secret) },
    ];
    for (const { who, auth } of cases) {
      const config = await client.discovery(new URL(app.issuer), who.client_id, who.client_secret, auth, OPTIONS);
      const tokens = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
      assert.equal(tokens.expires_in, 600);
      assert.equal(tokens.scope, 'reports:read');
      const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!)), { issuer: app.issuer, typ: 'at+jwt' });
      assert.equal(payload.sub, who.client_id);
      assert.equal(payload.service, who.client_id);
      assert.equal(payload.exp! - payload.iat!, 600);
    }
    // A method other than the registered one is refused by the core (401).
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', client_id: REPORTING.client_id, client_secret: REPORTING.client_secret }), 401, 'invalid_client');
  });

  it('the core refuses a wrong secret (401) and a scope outside the client\'s (invalid_scope) before the handler', async () => {
    const wrong = await client.discovery(new URL(app.issuer), REPORTING.client_id, 'wrong-secret-0123456789', client.ClientSecretBasic('wrong-secret-0123456789'), OPTIONS);
    await assert.rejects(client.clientCredentialsGrant(wrong), (err: unknown) => {
      assert.ok(err instanceof client.WWWAuthenticateChallengeError || err instanceof client.ResponseBodyError, String(err));
      assert.equal((err as { status?: number }).status, 401);
      return true;
    });
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', scope: 'reports:write' }, basic(REPORTING.client_id, REPORTING.client_secret)), 400, 'invalid_scope');
  });
});

describe('OIDC device flow (registry mode) with openid-client', () => {
  let app: Mounted & { warnings: string[] };
  let config: client.Configuration;
  before(async () => {
    app = await mountHapi(device.build());
    config = await client.discovery(new URL(app.issuer), TV_APP.client_id, undefined, client.None(), OPTIONS);
  });
  after(() => app.stop());

  it('the TV gets a user code, the user approves on the hosted page, the poll returns the handler\'s tokens', async () => {
    assert.equal(config.serverMetadata().device_authorization_endpoint, `${app.issuer}/oauth2/device_authorization`);
    const authorization = await client.initiateDeviceAuthorization(config, { scope: 'openid tv:watch' });
    assert.equal(authorization.verification_uri, `${app.issuer}/oauth2/device`);
    const browser = new HttpBrowser();
    const page = await browser.request('GET', authorization.verification_uri);
    const csrf = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(page.body)?.[1];
    assert.ok(csrf !== undefined, page.body.slice(0, 300));
    let res = await browser.request('POST', authorization.verification_uri, { csrf, user_code: authorization.user_code });
    res = await browser.submit(res.body, authorization.verification_uri, BOB); // sign in
    res = await browser.submit(res.body, authorization.verification_uri, BOB); // approve
    assert.equal(res.status, 200, res.body.slice(0, 500));
    const tokens = await client.pollDeviceAuthorizationGrant(config, authorization);
    assert.equal(tokens.expires_in, 1800);
    assert.equal(tokens.scope, 'openid tv:watch');
    assert.equal(typeof tokens.refresh_token, 'string');
    const idClaims = tokens.claims();
    assert.ok(idClaims !== undefined);
    assert.equal(idClaims.aud, TV_APP.client_id);
    assert.equal(idClaims.exp - idClaims.iat, 1800);
    // Refresh without a refreshTokenRoute: the core mints (registry mode).
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(refreshed.claims()?.sub, idClaims.sub);
  });
});

describe('MultipleFlowsBuilder: three flows behind one token endpoint', () => {
  let app: Mounted & { warnings: string[] };
  const design = multipleFlows.build();
  before(async () => {
    app = await mountHapi(design);
  });
  after(() => app.stop());

  it('publishes one merged discovery document and one key set', async () => {
    const config = await client.discovery(new URL(app.issuer), SERVICE.client_id, SERVICE.client_secret, client.ClientSecretBasic(SERVICE.client_secret), OPTIONS);
    const meta = config.serverMetadata();
    assert.deepEqual([...(meta.grant_types_supported ?? [])].sort(), ['authorization_code', 'client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']);
    assert.deepEqual(meta.token_endpoint_auth_methods_supported, ['client_secret_basic', 'none']);
    for (const scope of ['openid', 'email', 'jobs:run']) assert.ok(meta.scopes_supported?.includes(scope), scope);
    assert.equal(meta.token_endpoint, `${app.issuer}/oauth2/token`);
    assert.equal(meta.device_authorization_endpoint, `${app.issuer}/oauth2/devicecode`);
    assert.deepEqual(design.docs({ issuer: app.issuer }), {
      name: 'Example auth',
      scheme: { type: 'openIdConnect', openIdConnectUrl: `${app.issuer}/.well-known/openid-configuration` },
    });
  });

  it('dispatches on grant_type: client credentials through its handler (TTL 300), the code flow minted by the core (TTL 3600)', async () => {
    const service = await client.discovery(new URL(app.issuer), SERVICE.client_id, SERVICE.client_secret, client.ClientSecretBasic(SERVICE.client_secret), OPTIONS);
    const cc = await client.clientCredentialsGrant(service, { scope: 'jobs:run' });
    assert.equal(cc.expires_in, 300);

    const web = await client.discovery(new URL(app.issuer), WEB.client_id, WEB.client_secret, client.ClientSecretBasic(WEB.client_secret), OPTIONS);
    const { callback, verifier, nonce, state } = await signIn(web, WEB.redirect_uri, { username: 'carol', password: 'carol-password' }, 'openid email offline_access');
    const tokens = await client.authorizationCodeGrant(web, callback, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    assert.equal(tokens.expires_in, 3600);
    assert.equal(tokens.claims()?.nonce, nonce);
    assert.equal(typeof tokens.refresh_token, 'string');

    // Both access tokens verify against the one JWKS.
    const jwks = createRemoteJWKSet(new URL(`${app.issuer}/oauth2/keys`));
    for (const token of [cc.access_token, tokens.access_token]) await jwtVerify(token, jwks, { issuer: app.issuer, typ: 'at+jwt' });
  });

  it('each flow keeps its own methods: the public TV client cannot use client credentials', async () => {
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'client_credentials', client_id: TV.client_id }), 400, 'unauthorized_client');
  });
});
