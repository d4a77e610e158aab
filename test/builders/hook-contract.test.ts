/**
 * The generateToken contract: what each return value becomes on the wire (the same on every route),
 * the delegated-mode context (raw credentials, parsed per method), the helpers (exp = iat + TTL,
 * verifyJwt's checks, PKCE), and a separate refresh path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  ClientSecretBasic,
  ClientSecretPost,
  NoneAuthMethod,
  OAuth2ClientCredentialsBuilder,
  OAuth2ErrorCode,
  OAuth2TokenResponse,
  OIDCAuthorizationCodeBuilder,
  verifyCodeVerifier,
  type ClientCredentialsTokenContext,
  type FlowDesign,
  type GenerateTokenResult,
  type RefreshTokenContext,
} from '../../src/builders/index.js';
import type { OAuthResponse } from '../../src/core/http.js';
import { basic, captureWarnings } from './helpers.js';

const ISSUER = 'http://127.0.0.1:4000';

function clock(start = 1_800_000_000) {
  let t = start;
  return { now: () => t, advance: (s: number) => void (t += s) };
}

async function post(design: FlowDesign, path: string, form: Record<string, string>, authorization?: string): Promise<OAuthResponse> {
  return design.handle({
    method: 'POST',
    path,
    query: '',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization !== undefined ? { authorization } : {}) },
    body: new URLSearchParams(form).toString(),
  });
}

function json(res: OAuthResponse): Record<string, unknown> {
  return JSON.parse(res.body) as Record<string, unknown>;
}

describe('what a generateToken handler returns becomes the response, the same on the token and refresh routes', () => {
  let next: () => Promise<GenerateTokenResult> = async () => null;
  const design = OIDCAuthorizationCodeBuilder.create()
    .setIssuer(ISSUER)
    .addClientAuthenticationMethod(new ClientSecretBasic())
    .addClientAuthenticationMethod(new NoneAuthMethod())
    .tokenRoute((route) => route.generateToken(() => next()))
    .refreshTokenRoute((route) => route.generateToken(() => next()))
    .build();
  before(() => captureWarnings(() => design.start()));
  after(() => design.close());

  const routes: Array<[string, Record<string, string>]> = [
    ['token route', { grant_type: 'authorization_code', code: 'c', client_id: 'app' }],
    ['refresh route', { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'app' }],
  ];

  for (const [name, form] of routes) {
    it(`${name}: null → 400 invalid_request, no-store`, async () => {
      next = async () => null;
      const res = await post(design, '/oauth2/token', form);
      assert.equal(res.status, 400);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.deepEqual(json(res), { error: 'invalid_request', error_description: 'The token request was refused' });
    });

    it(`${name}: a thrown error → 500 server_error with no internal text`, async () => {
      next = async () => {
        throw new Error('database password is hunter2 at /srv/app/db.ts:12');
      };
      const res = await post(design, '/oauth2/token', form);
      assert.equal(res.status, 500);
      assert.deepEqual(json(res), { error: 'server_error', error_description: 'The server encountered an unexpected error' });
      assert.doesNotMatch(res.body, /hunter2|db\.ts/);
    });

    it(`${name}: { error: invalid_client } → 401 with WWW-Authenticate`, async () => {
      next = async () => ({ error: OAuth2ErrorCode.INVALID_CLIENT, error_description: 'Client not found' });
      const res = await post(design, '/oauth2/token', form);
      assert.equal(res.status, 401);
      assert.equal(res.headers['www-authenticate'], `Basic realm="${ISSUER}"`);
      assert.deepEqual(json(res), { error: 'invalid_client', error_description: 'Client not found' });
    });

    it(`${name}: other error codes keep their status; no description when the handler gave none`, async () => {
      const cases: Array<[GenerateTokenResult, number, Record<string, unknown>]> = [
        [{ error: OAuth2ErrorCode.INVALID_GRANT, error_description: 'Invalid or expired refresh token' }, 400, { error: 'invalid_grant', error_description: 'Invalid or expired refresh token' }],
        [{ error: OAuth2ErrorCode.SLOW_DOWN }, 400, { error: 'slow_down' }],
        [{ error: OAuth2ErrorCode.LOGIN_REQUIRED, error_uri: 'https://docs.example/login' }, 400, { error: 'login_required', error_uri: 'https://docs.example/login' }],
        [{ error: OAuth2ErrorCode.TEMPORARILY_UNAVAILABLE }, 503, { error: 'temporarily_unavailable' }],
        [{ error: OAuth2ErrorCode.INVALID_GRANT, error_description: 'bad "quote" \\ é' }, 400, { error: 'invalid_grant', error_description: 'bad ?quote? ? ?' }],
      ];
      for (const [result, status, body] of cases) {
        next = async () => result;
        const res = await post(design, '/oauth2/token', form);
        assert.equal(res.status, status, res.body);
        assert.deepEqual(json(res), body);
        assert.equal(res.headers['cache-control'], 'no-store');
      }
    });

    it(`${name}: a malformed response is a 500 server_error, never sent as is`, async () => {
      const bad: unknown[] = [
        { access_token: 'a', token_type: 'Bearer', expires_in: 1.5 },
        { access_token: 'a', token_type: 'Bearer', expires_in: -1 },
        { access_token: 'a', token_type: 'Bearer', expires_in: '3600' },
        { access_token: '', token_type: 'Bearer' },
        { access_token: 'a\nb', token_type: 'Bearer' },
        { access_token: 'a', token_type: 'two words' },
        { access_token: 'a', token_type: 'Bearer', scope: 'a"b' },
        { access_token: 'a', token_type: 'Bearer', refresh_token: 42 },
        { error: 'bad"code' },
        'a string',
        42,
      ];
      for (const result of bad) {
        next = async () => result as GenerateTokenResult;
        const res = await post(design, '/oauth2/token', form);
        assert.equal(res.status, 500, `${JSON.stringify(result)} → ${res.body}`);
        assert.equal(json(res).error, 'server_error');
      }
    });

    it(`${name}: a plain body or an OAuth2TokenResponse is sent (token_type Bearer by default)`, async () => {
      next = async () => ({ access_token: 'plain', token_type: 'Bearer', expires_in: 60, custom: 'kept' });
      assert.deepEqual(json(await post(design, '/oauth2/token', form)), { access_token: 'plain', token_type: 'Bearer', expires_in: 60, custom: 'kept' });
      next = async () => new OAuth2TokenResponse({ access_token: 'fluent' }).setScope(['a', 'b']).setExtension('authorization_details', []);
      assert.deepEqual(json(await post(design, '/oauth2/token', form)), { access_token: 'fluent', token_type: 'Bearer', scope: 'a b', authorization_details: [] });
    });
  }
});

describe('delegated mode: the handler gets the raw credentials, parsed per method, and helpers bound to the server', () => {
  const time = clock();
  const seen: ClientCredentialsTokenContext[] = [];
  const minted: Record<string, string> = {};
  const design = OAuth2ClientCredentialsBuilder.create()
    .setIssuer(ISSUER)
    .setTokenTtl(120)
    .addClientAuthenticationMethod(new ClientSecretBasic())
    .addClientAuthenticationMethod(new ClientSecretPost())
    .coreOptions({ clock: time.now })
    .tokenRoute((route) =>
      route.generateToken(async (ctx) => {
        seen.push(ctx);
        if (ctx.clientId !== 'svc:1' || ctx.clientSecret !== 'p:ss w+rd%') return { error: OAuth2ErrorCode.INVALID_CLIENT };
        minted.access = await ctx.createJwtAccessToken({ sub: 'user-1', role: 'admin', exp: 1, iss: 'https://evil.example' });
        minted.id = await ctx.createIdToken({ sub: 'user-1', nonce: 'n-1' });
        minted.otherAudience = await ctx.createJwtAccessToken({ aud: 'https://api.example' });
        return new OAuth2TokenResponse({ access_token: minted.access }).setExpiresIn(ctx.ttl).setTokenType(ctx.tokenType).setScope(ctx.scope);
      }),
    )
    .build();
  before(() => captureWarnings(() => design.start()));
  after(() => design.close());

  it('HTTP Basic: id and secret are form-decoded (a colon in the id, colons, spaces and % in the secret)', async () => {
    seen.length = 0;
    const res = await post(design, '/oauth2/token', { grant_type: 'client_credentials', scope: 'a b' }, basic('svc:1', 'p:ss w+rd%'));
    assert.equal(res.status, 200, res.body);
    const ctx = seen[0]!;
    assert.equal(ctx.clientAuthentication, 'delegated');
    assert.equal(ctx.authMethod, 'client_secret_basic');
    assert.equal(ctx.client, undefined);
    assert.equal(ctx.subject, undefined);
    assert.equal(ctx.scope, 'a b');
    assert.equal(ctx.ttl, 120);
    assert.equal(json(res).expires_in, 120);
  });

  it('client_secret_post: the same, from the body; a wrong secret is the handler\'s to refuse', async () => {
    seen.length = 0;
    assert.equal((await post(design, '/oauth2/token', { grant_type: 'client_credentials', client_id: 'svc:1', client_secret: 'p:ss w+rd%' })).status, 200);
    assert.equal(seen[0]?.authMethod, 'client_secret_post');
    const refused = await post(design, '/oauth2/token', { grant_type: 'client_credentials', client_id: 'svc:1', client_secret: 'nope' });
    assert.equal(refused.status, 401);
    assert.equal(seen[1]?.clientSecret, 'nope');
  });

  it('the core still refuses what it can: no credentials, a public client, two methods (never reaching the handler)', async () => {
    seen.length = 0;
    assert.equal((await post(design, '/oauth2/token', { grant_type: 'client_credentials' })).status, 401);
    assert.equal((await post(design, '/oauth2/token', { grant_type: 'client_credentials', client_id: 'svc' })).status, 401);
    assert.equal((await post(design, '/oauth2/token', { grant_type: 'client_credentials', client_id: 'svc:1', client_secret: 'x' }, basic('svc:1', 'x'))).status, 400);
    assert.equal(seen.length, 0);
  });

  it('createJwtAccessToken: RFC 9068, the server\'s iss and exp = iat + TTL whatever the payload says; createIdToken: typ JWT, aud = client', async () => {
    await post(design, '/oauth2/token', { grant_type: 'client_credentials', scope: 'a' }, basic('svc:1', 'p:ss w+rd%'));
    const jwks = createLocalJWKSet(design.server!.keys.jwks() as never);
    const at = minted.access!;
    assert.equal(decodeProtectedHeader(at).typ, 'at+jwt');
    const { payload } = await jwtVerify(at, jwks, { issuer: ISSUER, audience: ISSUER, typ: 'at+jwt', currentDate: new Date(time.now() * 1000) });
    assert.equal(payload.sub, 'user-1');
    assert.equal(payload.client_id, 'svc:1');
    assert.equal(payload.scope, 'a');
    assert.equal(payload.role, 'admin');
    assert.equal(payload.iat, time.now());
    assert.equal(payload.exp, time.now() + 120);
    const id = await jwtVerify(minted.id!, jwks, { issuer: ISSUER, audience: 'svc:1', currentDate: new Date(time.now() * 1000) });
    assert.equal(id.protectedHeader.typ, 'JWT');
    assert.equal(id.payload.sub, 'user-1');
    assert.equal(id.payload.nonce, 'n-1');
    assert.equal(id.payload.exp, time.now() + 120);
  });

  it('verifyJwt checks signature, typ, iss, aud and exp', async () => {
    seen.length = 0;
    await post(design, '/oauth2/token', { grant_type: 'client_credentials' }, basic('svc:1', 'p:ss w+rd%'));
    const verify = seen[0]!.verifyJwt;
    const at = minted.access!;
    const claims = await verify<{ role: string }>(at);
    assert.equal(claims?.role, 'admin');
    assert.equal(claims?.sub, 'user-1');
    assert.equal(await verify(minted.id!), undefined, 'an ID token is not an access token (typ)');
    assert.equal((await verify(minted.id!, { typ: 'JWT', audience: 'svc:1' }))?.nonce, 'n-1');
    assert.equal(await verify(minted.otherAudience!), undefined, 'another audience');
    assert.ok((await verify(minted.otherAudience!, { audience: 'https://api.example' })) !== undefined);
    const [h, p, s] = at.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), role: 'root' })).toString('base64url')}.${s}`;
    assert.equal(await verify(forged), undefined, 'signature');
    assert.equal(await verify('not a jwt'), undefined);
    time.advance(121);
    assert.equal(await verify(at), undefined, 'expired');
    time.advance(-121);
  });
});

describe('helpers that need no server', () => {
  it('verifyCodeVerifier: S256 (RFC 7636 Appendix B), constant-time, false for anything malformed', () => {
    assert.equal(verifyCodeVerifier('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'), true);
    assert.equal(verifyCodeVerifier('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'), false);
    assert.equal(verifyCodeVerifier('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'), false, 'plain is not accepted');
    assert.equal(verifyCodeVerifier('short', 'x'), false);
    assert.equal(verifyCodeVerifier(undefined, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'), false);
    assert.equal(verifyCodeVerifier('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', undefined), false);
  });
});

describe('a refreshTokenRoute on its own path', () => {
  const seen: RefreshTokenContext[] = [];
  const design = OIDCAuthorizationCodeBuilder.create()
    .setIssuer(ISSUER)
    .addClientAuthenticationMethod(new NoneAuthMethod())
    .tokenRoute((route) => route.generateToken(async () => ({ access_token: 'from-code', token_type: 'Bearer' })))
    .refreshTokenRoute((route) =>
      route.setPath('/oauth2/refresh').generateToken(async (ctx) => {
        seen.push(ctx);
        return { access_token: 'from-refresh', token_type: 'Bearer' };
      }),
    )
    .build();
  before(() => captureWarnings(() => design.start()));
  after(() => design.close());

  it('serves refresh_token there and only there', async () => {
    const refreshed = await post(design, '/oauth2/refresh', { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'app' });
    assert.equal(json(refreshed).access_token, 'from-refresh');
    assert.equal(seen[0]?.refreshToken, 'r');
    assert.equal(json(await post(design, '/oauth2/refresh', { grant_type: 'authorization_code', code: 'c', client_id: 'app' })).error, 'unsupported_grant_type');
    assert.equal(json(await post(design, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'app' })).error, 'unsupported_grant_type');
    assert.equal(json(await post(design, '/oauth2/token', { grant_type: 'authorization_code', code: 'c', client_id: 'app' })).access_token, 'from-code');
  });
});
