/**
 * The authorization request of the server object, shaped like the seed's `AuthorizationRequest`:
 * `client`, `scopes`, `redirectUri`, `state`, `codeChallenge`… to read, and `user`,
 * `isAuthorizationApproved` (and `authTime`) to set before `completeAuthorizationRequest`.
 *
 * It is plain data: `JSON.stringify(authRequest)` can wait in a session, and
 * `AuthorizationRequest.fromJSON(JSON.parse(text))` (or the parsed object itself) completes later.
 * The validated request the core will honour is `request`, sealed with an HMAC under a key kept in
 * storage (`seal`): changing it, or the `client` / `redirectUri` / `state` / `codeChallenge` views,
 * makes completion fail instead of sending a code elsewhere. Only `scopes` may change, and only to
 * narrow (a consent screen that lets the user untick scopes).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AuthorizationRequest as CoreAuthorizationRequest } from '../authorize/request.js';
import type { ClientRecord } from '../storage/contract.js';
import type { GrantIdentifier, OAuthScope, OAuthUser } from './repositories.js';

/** The client as the seed's `authRequest.client` shows it. */
export interface AuthorizationRequestClient {
  id: string;
  name: string;
  redirectUris: string[];
  allowedGrants: GrantIdentifier[];
  scopes: OAuthScope[];
}

export class AuthorizationRequest {
  readonly grantTypeId: GrantIdentifier = 'authorization_code';
  readonly client: AuthorizationRequestClient;
  /** The validated scopes. You may remove some (the user declined them) before completing. */
  scopes: OAuthScope[];
  readonly redirectUri: string;
  readonly state?: string;
  readonly codeChallenge?: string;
  readonly codeChallengeMethod?: 'S256' | 'plain';
  readonly nonce?: string;
  readonly maxAge?: number;
  readonly prompt: string[];
  readonly loginHint?: string;
  /** RFC 8707 resources requested (the seed's `audience`). */
  readonly audience?: string[];
  /** The signed-in user. Set it before completing. */
  user?: OAuthUser;
  /** Set to true once the user approved; false completes with `access_denied`. */
  isAuthorizationApproved = false;
  /** When the user authenticated (OIDC `auth_time`); default: when the request is completed. */
  authTime?: Date | number;
  /** The validated request as the core keeps it. */
  readonly request: CoreAuthorizationRequest;
  /** HMAC of `request`; checked at completion. */
  readonly seal: string;

  /** @internal Built by `validateAuthorizationRequest`, or by {@link AuthorizationRequest.fromJSON}. */
  constructor(request: CoreAuthorizationRequest, seal: string, client: AuthorizationRequestClient) {
    this.request = request;
    this.seal = seal;
    this.client = client;
    this.scopes = request.scope.map((name) => ({ name }));
    this.redirectUri = request.redirect_uri;
    if (request.state !== undefined) this.state = request.state;
    if (request.code_challenge !== undefined) this.codeChallenge = request.code_challenge;
    if (request.code_challenge_method !== undefined) this.codeChallengeMethod = request.code_challenge_method;
    if (request.nonce !== undefined) this.nonce = request.nonce;
    if (request.max_age !== undefined) this.maxAge = request.max_age;
    this.prompt = [...request.prompt];
    if (request.login_hint !== undefined) this.loginHint = request.login_hint;
    if (request.resource !== undefined) this.audience = [...request.resource];
  }

  /** Rebuild a request kept as JSON (the settable fields come back as they were saved). */
  static fromJSON(json: unknown): AuthorizationRequest {
    if (json instanceof AuthorizationRequest) return json;
    const o = (typeof json === 'string' ? JSON.parse(json) : json) as Partial<AuthorizationRequest> | null;
    if (o === null || typeof o !== 'object' || o.request === undefined || typeof o.seal !== 'string' || o.client === undefined) {
      throw new TypeError('AuthorizationRequest.fromJSON: not a serialised authorization request');
    }
    const out = new AuthorizationRequest(o.request, o.seal, o.client);
    // The views are rebuilt from `request`, then the saved values are laid over them so completion can compare.
    Object.assign(out, pick(o, ['scopes', 'user', 'isAuthorizationApproved', 'authTime', 'redirectUri', 'state', 'codeChallenge', 'codeChallengeMethod', 'client']));
    return out;
  }
}

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** The seed-shaped view of a client record. */
export function clientView(client: ClientRecord): AuthorizationRequestClient {
  return {
    id: client.client_id,
    name: client.client_name ?? client.client_id,
    redirectUris: [...client.redirect_uris],
    allowedGrants: [...client.grant_types],
    scopes: (client.scope ?? '').split(' ').filter((s) => s !== '').map((name) => ({ name })),
  };
}

/** JSON with sorted keys: the same text whatever the store did to key order (e.g. PostgreSQL jsonb). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as Record<string, unknown>)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function sealRequest(key: Buffer, request: CoreAuthorizationRequest): string {
  return createHmac('sha256', key).update('portcullis.server-object.authorization-request.v1\n').update(canonicalJson(request)).digest('base64url');
}

export function verifySeal(key: Buffer, request: CoreAuthorizationRequest, seal: string): boolean {
  const expected = Buffer.from(sealRequest(key, request));
  const actual = Buffer.from(seal);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
