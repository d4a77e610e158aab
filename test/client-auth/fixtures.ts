import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { normalizeClientMetadata } from '../../src/clients/metadata.js';
import type { ClientMetadataInput } from '../../src/clients/metadata.js';
import { OAuthError } from '../../src/core/errors.js';
import { parseForm } from '../../src/core/form.js';
import type { OAuthRequest } from '../../src/core/http.js';
import { silentLogger } from '../../src/core/logger.js';
import { Sealer } from '../../src/core/seal.js';
import { authenticateClient } from '../../src/client-auth/index.js';
import type { AuthenticatedClient, ClientAuthOptions } from '../../src/client-auth/types.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import type { Storage } from '../../src/storage/contract.js';

export const ISSUER = 'https://auth.example.com';
export const TOKEN_ENDPOINT = 'https://auth.example.com/token';
export const REALM = `Basic realm="${ISSUER}"`;
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Start of the injected clock: 20 s into a fixed 60 s window (1_700_000_000 % 60 === 20). */
export const T0 = 1_700_000_000;

export interface Harness {
  storage: Storage;
  options: ClientAuthOptions;
  sealer: Sealer;
  /** Current time in seconds; assign to move the injected clock. */
  now: number;
  register(metadata: ClientMetadataInput): Promise<void>;
  auth(body: Record<string, string>, headers?: Record<string, string>): Promise<AuthenticatedClient>;
}

export function harness(overrides: Partial<ClientAuthOptions> = {}): Harness {
  const storage = createMemoryStorage();
  const sealer = new Sealer('a-test-key-encryption-secret-0123456789');
  const h: Harness = {
    storage,
    sealer,
    now: T0,
    options: undefined as unknown as ClientAuthOptions,
    async register(metadata) {
      const record = normalizeClientMetadata(metadata, {
        now: h.now,
        grantTypes: ['authorization_code', 'client_credentials', 'refresh_token'],
        sealer,
      });
      await storage.upsertClient(record);
    },
    async auth(body, headers = {}) {
      const req = request(body, headers);
      return authenticateClient(req, parseForm(req), h.options);
    },
  };
  h.options = {
    storage,
    issuer: ISSUER,
    tokenEndpoint: TOKEN_ENDPOINT,
    clock: () => h.now,
    logger: silentLogger,
    sealer,
    methods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
    assertionSigningAlgorithms: ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'],
    maxAssertionLifetime: 300,
    clockTolerance: 15,
    maxFailuresPerMinute: 20,
    ...overrides,
  };
  return h;
}

export function request(body: Record<string, string>, headers: Record<string, string> = {}): OAuthRequest {
  return {
    method: 'POST',
    path: '/token',
    query: '',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...body }).toString(),
  };
}

/** RFC 6749 App. B encoding of one part. */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

export function basic(id: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}` };
}

export function basicRaw(credentials: string | Buffer): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** Await a rejection and return the OAuthError, checking code and status. */
export async function rejects(promise: Promise<unknown>, error: string, status: number): Promise<OAuthError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof OAuthError, `expected OAuthError, got ${String(err)}`);
    assert.equal(err.error, error, `error code (detail: ${err.detail ?? err.description})`);
    assert.equal(err.status, status);
    return err;
  }
  assert.fail(`expected ${error}, but authentication succeeded`);
}

/** Exactly the uniform invalid_client answer (no Retry-After). */
export async function rejectsClient(promise: Promise<unknown>): Promise<OAuthError> {
  const err = await rejects(promise, 'invalid_client', 401);
  assert.deepEqual(err.headers, { 'www-authenticate': REALM });
  assert.deepEqual(err.toJSON(), { error: 'invalid_client', error_description: 'Client authentication failed' });
  return err;
}

/** The caller-visible part of an OAuthError: what reaches the wire. */
export function wire(err: OAuthError): { status: number; headers: Record<string, string>; body: string } {
  return { status: err.status, headers: err.headers, body: JSON.stringify(err.toJSON()) };
}

export interface TestKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  alg: string;
}

export async function testKey(alg: string, kid = `${alg}-key`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { privateKey, publicJwk, alg };
}

export interface AssertionInput {
  iss?: string | undefined;
  sub?: string | undefined;
  aud?: string | string[] | undefined;
  exp?: number | undefined;
  nbf?: number | undefined;
  iat?: number | undefined;
  jti?: string | undefined;
  [claim: string]: unknown;
}

let counter = 0;

/** Claims of a valid assertion for `clientId` at `now`; `overrides` replace (undefined removes). */
export function claims(clientId: string, now: number, overrides: AssertionInput = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    iss: clientId,
    sub: clientId,
    aud: TOKEN_ENDPOINT,
    exp: now + 60,
    iat: now,
    jti: `jti-${++counter}-${Math.random().toString(36).slice(2)}`,
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

export async function sign(
  payload: Record<string, unknown>,
  key: CryptoKey | Uint8Array,
  header: Record<string, unknown> & { alg: string },
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

export function assertionBody(assertion: string, clientId?: string): Record<string, string> {
  const body: Record<string, string> = { client_assertion: assertion, client_assertion_type: JWT_BEARER };
  if (clientId !== undefined) body.client_id = clientId;
  return body;
}
