/** Shared set-up of the token-exchange tests: a harness with the grant on, clients, and token helpers. */
import assert from 'node:assert/strict';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import type { PortcullisOptions } from '../../src/core/options.js';
import type { OAuthResponse } from '../../src/core/http.js';
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/grants/token-exchange.js';
import { assertTokenResponse, createHarness, ISSUER, type Harness } from '../helpers/harness.js';

export const TE = TOKEN_EXCHANGE_GRANT_TYPE;
export const AT = 'urn:ietf:params:oauth:token-type:access_token';
export const IDT = 'urn:ietf:params:oauth:token-type:id_token';
export const JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const ORDERS = 'https://orders.example.com';
export const BILLING = 'https://billing.example.com';
export const EXTERNAL_ISSUER = 'https://idp.partner.example';

/** The app alice signs in to; it may exchange its own tokens for the orders API. */
export const APP: [string, string] = ['app', 'app-secret-0123456789abcdef'];
/** An API gateway acting for users towards orders and billing. */
export const GATEWAY: [string, string] = ['gateway', 'gateway-secret-0123456789abc'];
/** The orders API, itself calling billing for users. */
export const ORDERS_API: [string, string] = ['orders-api', 'orders-api-secret-0123456789'];
/** Confidential, but not registered for token exchange. */
export const OTHER: [string, string] = ['other', 'other-secret-0123456789abcdef'];
/** The app, with opaque access tokens. */
export const OPAQUE_APP: [string, string] = ['opaque-app', 'opaque-app-secret-0123456789'];

export interface ExternalIssuerKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

export async function externalKey(alg = 'ES256', kid = 'partner-1'): Promise<ExternalIssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, kid };
}

export interface TeHarness extends Harness {
  /** The `detail` of the last refused request (logged, never sent). */
  lastDetail(): string | undefined;
  partner: ExternalIssuerKey;
  /** An access token for alice from the password grant of `client` (default APP). */
  userToken(scope?: string, client?: [string, string]): Promise<{ access_token: string; refresh_token?: string; expires_in: number }>;
  /** A client_credentials access token of `client`. */
  clientToken(client: [string, string], scope?: string): Promise<string>;
  exchange(form: Record<string, string>, client?: [string, string]): Promise<OAuthResponse>;
  /** A JWT of the trusted partner issuer. */
  partnerJwt(claims?: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  aliceId: string;
}

/** The harness: token exchange on, a trusted partner issuer, and the clients above. */
export async function teHarness(options: Partial<PortcullisOptions> = {}): Promise<TeHarness> {
  const partner = await externalKey();
  let lastDetail: string | undefined;
  const record = (obj: object): void => {
    const { event, detail } = obj as { event?: string; detail?: string };
    if (event === 'request.refused') lastDetail = detail;
  };
  const h = await createHarness({
    logger: { debug: record, info: record, warn: record, error: record },
    grants: { password: true, token_exchange: true },
    ...options,
    tokenExchange: {
      trustedIssuers: [{ issuer: EXTERNAL_ISSUER, jwks: { keys: [partner.publicJwk as Record<string, unknown>] }, algorithms: ['ES256'], audience: ISSUER }],
      ...options.tokenExchange,
    },
  });
  const clients = h.portcullis.clients;
  await clients.upsert({ client_id: APP[0], client_secret: APP[1], grant_types: ['password', 'refresh_token', TE], scope: 'openid api:read api:write', allowed_audiences: [ORDERS] });
  await clients.upsert({ client_id: GATEWAY[0], client_secret: GATEWAY[1], grant_types: ['client_credentials', TE], scope: 'api:read api:write', allowed_audiences: [ORDERS, BILLING] });
  await clients.upsert({ client_id: ORDERS_API[0], client_secret: ORDERS_API[1], grant_types: ['client_credentials', TE], scope: 'api:read', allowed_audiences: [BILLING] });
  await clients.upsert({ client_id: OTHER[0], client_secret: OTHER[1], grant_types: ['client_credentials'], scope: 'api:read' });
  await clients.upsert({ client_id: OPAQUE_APP[0], client_secret: OPAQUE_APP[1], grant_types: ['password', 'refresh_token', TE], scope: 'api:read api:write', allowed_audiences: [ORDERS], access_token_format: 'opaque' });
  const alice = await h.storage.getUserByUsername('alice');
  assert.ok(alice);
  return {
    ...h,
    lastDetail: () => lastDetail,
    partner,
    aliceId: alice.id,
    async userToken(scope = 'api:read api:write', client = APP) {
      const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password', scope }, { basic: client }));
      return body as { access_token: string; refresh_token?: string; expires_in: number };
    },
    async clientToken(client, scope) {
      const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', ...(scope !== undefined ? { scope } : {}) }, { basic: client }));
      return body.access_token as string;
    },
    exchange(form, client = APP) {
      return h.post('/token', { grant_type: TE, ...form }, { basic: client });
    },
    async partnerJwt(claims = {}, header = {}) {
      const now = h.clock.now();
      const payload: JWTPayload = { iss: EXTERNAL_ISSUER, sub: 'partner-user-7', aud: ISSUER, iat: now, exp: now + 600, scope: 'api:read', ...claims };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: partner.kid, typ: 'JWT', ...header }).sign(partner.privateKey);
    },
  };
}

/** The claims of a JWT (no verification: the tests check what the server signed). */
export function claimsOf(token: string): JWTPayload {
  return decodeJwt(token);
}

/** Introspect as the client the token was issued to. */
export async function introspect(h: Harness, token: string, client: [string, string]): Promise<Record<string, unknown>> {
  const res = await h.post('/introspect', { token }, { basic: client });
  assert.equal(res.status, 200, res.body);
  return h.json(res);
}
