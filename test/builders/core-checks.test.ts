/**
 * Registry mode: security stays in the core. With registered clients, the client is authenticated
 * and the code (or refresh token) checked and consumed before the app's generateToken runs; a
 * failed check never reaches the handler; the helpers cannot widen what the core granted.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  ClientSecretBasic,
  NoneAuthMethod,
  OAuth2TokenResponse,
  OIDCAuthorizationCodeBuilder,
  type AuthorizationCodeTokenContext,
  type RefreshTokenContext,
} from '../../src/builders/index.js';
import { assertError, assertTokens, basic, HttpBrowser, mountHapi, postForm, type Mounted } from './helpers.js';

const WEB = { id: 'web', secret: 'web-secret-0123456789', cb: 'https://web.example/cb' };
const OTHER = { id: 'other', secret: 'other-secret-0123456789', cb: 'https://other.example/cb' };
const SPA = { id: 'spa', cb: 'https://spa.example/cb' };
const ALICE = { username: 'alice', password: 'alice-password' };

const codeContexts: AuthorizationCodeTokenContext[] = [];
const refreshContexts: RefreshTokenContext[] = [];
/** What the next token handler call does beyond the normal response. */
let misuse: ((ctx: AuthorizationCodeTokenContext) => Promise<unknown>) | undefined;

const design = OIDCAuthorizationCodeBuilder.create()
  .setTokenTTL(300)
  .addClientAuthenticationMethod(new ClientSecretBasic())
  .addClientAuthenticationMethod(new NoneAuthMethod())
  .setScopes({ 'api:read': 'Read' })
  .addClient({ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [WEB.cb], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access api:read' })
  .addClient({ client_id: OTHER.id, client_secret: OTHER.secret, redirect_uris: [OTHER.cb], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' })
  .addClient({ client_id: SPA.id, token_endpoint_auth_method: 'none', redirect_uris: [SPA.cb], grant_types: ['authorization_code'], scope: 'openid' })
  .addUser(ALICE)
  .tokenRoute((route) =>
    route.generateToken(async (ctx) => {
      codeContexts.push(ctx);
      if (misuse !== undefined) await misuse(ctx);
      const response = new OAuth2TokenResponse({ access_token: await ctx.createJwtAccessToken() }).setExpiresIn(ctx.ttl).setTokenType(ctx.tokenType).setScope(ctx.scope);
      if (ctx.client?.grant_types.includes('refresh_token') === true) response.setRefreshToken(await ctx.createRefreshToken());
      return response;
    }),
  )
  .refreshTokenRoute((route) =>
    route.generateToken(async (ctx) => {
      refreshContexts.push(ctx);
      return new OAuth2TokenResponse({ access_token: await ctx.createJwtAccessToken() })
        .setExpiresIn(ctx.ttl)
        .setTokenType(ctx.tokenType)
        .setScope(ctx.scope)
        .setRefreshToken(await ctx.createRefreshToken());
    }),
  )
  .build();

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('registry mode: the core checks before generateToken runs', () => {
  let app: Mounted;
  before(async () => {
    app = await mountHapi(design);
  });
  after(() => app.stop());
  beforeEach(() => {
    codeContexts.length = 0;
    refreshContexts.length = 0;
    misuse = undefined;
  });

  async function code(clientId: string, redirectUri: string, scope = 'openid offline_access'): Promise<{ code: string; verifier: string }> {
    const { verifier, challenge } = pkce();
    const query = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state: 'st', nonce: 'n-1', code_challenge: challenge, code_challenge_method: 'S256' });
    const callback = await new HttpBrowser().authorize(`${app.url}/oauth2/authorize?${query}`, redirectUri, ALICE);
    return { code: callback.searchParams.get('code')!, verifier };
  }
  /** Redeem a code; `auth` null: no Authorization header. */
  const redeem = (form: Record<string, string>, auth: string | null = basic(WEB.id, WEB.secret)) => postForm(app.url, '/oauth2/token', { grant_type: 'authorization_code', ...form }, auth ?? undefined);

  it('a wrong client secret is 401 before the handler; the code stays usable for its client', async () => {
    const issued = await code(WEB.id, WEB.cb);
    assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }, basic(WEB.id, 'wrong-secret-0123456789')), 401, 'invalid_client');
    assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }, null), 401, 'invalid_client');
    assert.equal(codeContexts.length, 0);
    assertTokens(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }));
    assert.equal(codeContexts.length, 1);
  });

  it('another client\'s code, a wrong redirect_uri, a wrong or missing code_verifier, an unknown code: invalid_grant, never the handler', async () => {
    const issued = await code(WEB.id, WEB.cb);
    assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }, basic(OTHER.id, OTHER.secret)), 400, 'invalid_grant');
    assertError(await redeem({ code: issued.code, redirect_uri: OTHER.cb, code_verifier: issued.verifier }), 400, 'invalid_grant');
    assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: pkce().verifier }), 400, 'invalid_grant');
    assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb }), 400, 'invalid_grant');
    assertError(await redeem({ code: 'not-a-code', redirect_uri: WEB.cb, code_verifier: issued.verifier }), 400, 'invalid_grant');
    assert.equal(codeContexts.length, 0);
  });

  it('the handler sees the validated context: the authenticated client, the user, the granted scope, no raw secret', async () => {
    const issued = await code(WEB.id, WEB.cb, 'openid offline_access api:read');
    const body = assertTokens(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }));
    assert.equal(body.expires_in, 300);
    const [ctx] = codeContexts;
    assert.ok(ctx !== undefined);
    const alice = await design.server!.users.findByUsername(ALICE.username);
    assert.equal(ctx.grantType, 'authorization_code');
    assert.equal(ctx.clientAuthentication, 'registry');
    assert.equal(ctx.clientId, WEB.id);
    assert.equal(ctx.clientSecret, undefined, 'registry mode never hands the secret to the app');
    assert.equal(ctx.authMethod, 'client_secret_basic');
    assert.equal(ctx.client?.client_id, WEB.id);
    assert.equal(ctx.subject, alice?.id);
    assert.equal(ctx.code, issued.code);
    assert.equal(ctx.codeVerifier, issued.verifier);
    assert.equal(ctx.redirectUri, WEB.cb);
    assert.equal(ctx.scope, 'openid offline_access api:read');
    assert.equal(ctx.ttl, 300);
    assert.equal(ctx.tokenType, 'Bearer');
  });

  it('a reused code is invalid_grant without the handler, and revokes the tokens the handler minted from it', async () => {
    const issued = await code(WEB.id, WEB.cb);
    const first = assertTokens(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }));
    const userinfo = () => fetch(`${app.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${String(first.access_token)}` } });
    assert.equal((await userinfo()).status, 200);
    assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }), 400, 'invalid_grant');
    assert.equal(codeContexts.length, 1);
    assert.equal((await userinfo()).status, 401, 'the helper-minted access token carries the grant id, so it dies with the grant');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: String(first.refresh_token) }, basic(WEB.id, WEB.secret)), 400, 'invalid_grant');
  });

  it('refresh: the core checks the token\'s client and rotates it before the refresh handler; a rotated token is refused', async () => {
    const issued = await code(WEB.id, WEB.cb);
    const first = assertTokens(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }));
    const refreshToken = String(first.refresh_token);
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, basic(OTHER.id, OTHER.secret)), 400, 'invalid_grant');
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken, scope: 'openid api:read' }, basic(WEB.id, WEB.secret)), 400, 'invalid_scope');
    assert.equal(refreshContexts.length, 0);
    const next = assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken, scope: 'openid' }, basic(WEB.id, WEB.secret)));
    assert.equal(refreshContexts.length, 1);
    const ctx = refreshContexts[0]!;
    assert.equal(ctx.grantType, 'refresh_token');
    assert.equal(ctx.refreshToken, refreshToken);
    assert.equal(ctx.scope, 'openid', 'the narrowed scope');
    assert.equal(ctx.subject, codeContexts[0]?.subject);
    assert.notEqual(next.refresh_token, refreshToken);
    assertTokens(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: String(next.refresh_token) }, basic(WEB.id, WEB.secret)));
    assertError(await postForm(app.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, basic(WEB.id, WEB.secret)), 400, 'invalid_grant');
  });

  it('public clients: PKCE is enforced by the core; the handler sees authMethod none', async () => {
    const issued = await code(SPA.id, SPA.cb, 'openid');
    assertError(await redeem({ code: issued.code, redirect_uri: SPA.cb, client_id: SPA.id }, null), 400, 'invalid_grant');
    assertTokens(await redeem({ code: issued.code, redirect_uri: SPA.cb, client_id: SPA.id, code_verifier: issued.verifier }, null));
    assert.equal(codeContexts[0]?.authMethod, 'none');
    assert.equal(codeContexts[0]?.clientId, SPA.id);
  });

  it('the helpers cannot widen what the core granted: another subject or a wider scope is a server_error, with nothing internal sent', async () => {
    for (const attempt of [
      (ctx: AuthorizationCodeTokenContext) => ctx.createJwtAccessToken({ sub: 'mallory' }),
      (ctx: AuthorizationCodeTokenContext) => ctx.createJwtAccessToken({ scope: 'openid admin' }),
      (ctx: AuthorizationCodeTokenContext) => ctx.createIdToken({ sub: 'mallory' }),
    ]) {
      misuse = attempt;
      const issued = await code(WEB.id, WEB.cb);
      const body = assertError(await redeem({ code: issued.code, redirect_uri: WEB.cb, code_verifier: issued.verifier }), 500, 'server_error');
      assert.equal(body.error_description, 'The server encountered an unexpected error');
    }
  });
});
