import { ConfigError } from '../core/errors.js';
import { isLoopbackHost } from '../core/loopback.js';
import { parseScope } from '../core/scope.js';
import type { Sealer } from '../core/seal.js';
import type { ClientRecord } from '../storage/contract.js';
import { hashClientSecret } from './secrets.js';

export type TokenEndpointAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'client_secret_jwt'
  | 'private_key_jwt'
  | 'none';

export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
  'private_key_jwt',
  'none',
];

/** Client metadata as an operator writes it (RFC 7591 names), with the secret in clear. */
export interface ClientMetadataInput {
  client_id: string;
  client_secret?: string;
  client_name?: string;
  redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: TokenEndpointAuthMethod;
  token_endpoint_auth_signing_alg?: string;
  scope?: string;
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  access_token_format?: 'jwt' | 'opaque';
  rotate_refresh_tokens?: boolean;
  resource_server_audiences?: string[];
  post_logout_redirect_uris?: string[];
  id_token_signed_response_alg?: string;
  first_party?: boolean;
  allowed_audiences?: string[];
  [extra: string]: unknown;
}

export interface NormalizeClientOptions {
  now: number;
  /** Grant types the server serves; a client may only list these. */
  grantTypes: readonly string[];
  /** Present when a key-encryption secret is configured (needed by client_secret_jwt). */
  sealer?: Sealer;
  /** The stored record, to keep its secret hash when the input has no new secret. */
  existing?: ClientRecord;
  /** Allow http redirect URIs on non-loopback hosts (development only). */
  allowInsecureRedirectUris?: boolean;
}

const KNOWN_FIELDS = new Set([
  'client_id', 'client_secret', 'client_name', 'redirect_uris', 'grant_types', 'response_types',
  'token_endpoint_auth_method', 'token_endpoint_auth_signing_alg', 'scope', 'jwks', 'jwks_uri',
  'access_token_format', 'rotate_refresh_tokens', 'resource_server_audiences', 'post_logout_redirect_uris',
  'id_token_signed_response_alg', 'first_party', 'allowed_audiences',
]);
const ID_TOKEN_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'];
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];
const CLIENT_ID = /^[\x21-\x7e]{1,255}$/;

/**
 * Validate RFC 7591 client metadata and turn it into a stored {@link ClientRecord}: the secret is
 * hashed (or sealed, for client_secret_jwt). Bad metadata throws a {@link ConfigError} that names
 * the client and the field.
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 */
export function normalizeClientMetadata(input: unknown, options: NormalizeClientOptions): ClientRecord {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError('A client must be an object of RFC 7591 metadata');
  }
  const m = input as Record<string, unknown>;
  const id = m.client_id;
  if (typeof id !== 'string' || !CLIENT_ID.test(id)) {
    throw new ConfigError(`client ${JSON.stringify(id ?? null)}: field "client_id" must be 1-255 printable ASCII characters without spaces`);
  }
  const fail = (field: string, message: string): never => {
    throw new ConfigError(`client "${id}": field "${field}" ${message}`);
  };

  const secret = optionalString(m, 'client_secret', fail);
  const jwks = m.jwks;
  const jwksUri = optionalString(m, 'jwks_uri', fail);
  const defaultMethod: TokenEndpointAuthMethod =
    secret !== undefined || options.existing?.client_secret_hash !== undefined
      ? 'client_secret_basic'
      : jwks !== undefined || jwksUri !== undefined
        ? 'private_key_jwt'
        : 'none';
  const method = (m.token_endpoint_auth_method ?? defaultMethod) as TokenEndpointAuthMethod;
  if (!TOKEN_ENDPOINT_AUTH_METHODS.includes(method)) {
    fail('token_endpoint_auth_method', `must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`);
  }

  let secretHash: string | undefined;
  let secretEncrypted: string | undefined;
  const usesSecret = method === 'client_secret_basic' || method === 'client_secret_post' || method === 'client_secret_jwt';
  if (usesSecret) {
    if (secret === undefined && options.existing?.client_secret_hash === undefined) {
      fail('client_secret', `is required for token_endpoint_auth_method ${method}`);
    }
    if (secret !== undefined) {
      if (secret.length < 8) fail('client_secret', 'must be at least 8 characters');
      secretHash = hashClientSecret(secret);
      if (method === 'client_secret_jwt') {
        if (options.sealer === undefined) {
          fail('token_endpoint_auth_method', 'client_secret_jwt needs a key-encryption secret (keyEncryptionSecret / PORTCULLIS_KEY_SECRET) so the secret can be kept encrypted');
        }
        secretEncrypted = options.sealer!.seal(secret, `client_secret:${id}`);
      }
    } else {
      secretHash = options.existing?.client_secret_hash;
      secretEncrypted = options.existing?.client_secret_encrypted;
      if (method === 'client_secret_jwt' && secretEncrypted === undefined) fail('client_secret', 'is required for client_secret_jwt');
    }
  } else if (secret !== undefined) {
    fail('client_secret', `must not be set for token_endpoint_auth_method ${method}`);
  }

  if (method === 'private_key_jwt' && jwks === undefined && jwksUri === undefined) {
    fail('jwks', 'or "jwks_uri" is required for private_key_jwt');
  }
  if (jwks !== undefined) validateJwks(jwks, fail);
  if (jwks !== undefined && jwksUri !== undefined) fail('jwks_uri', 'must not be set together with "jwks"');
  if (jwksUri !== undefined) {
    const url = URL.canParse(jwksUri) ? new URL(jwksUri) : undefined;
    if (url === undefined || url.protocol !== 'https:') fail('jwks_uri', 'must be an https URL');
  }

  const grantTypes = optionalStringArray(m, 'grant_types', fail) ?? ['authorization_code'];
  for (const g of grantTypes) {
    if (!options.grantTypes.includes(g)) fail('grant_types', `lists "${g}", which this server does not serve (enabled: ${options.grantTypes.join(', ')})`);
  }
  if (method === 'none' && grantTypes.includes('client_credentials')) {
    fail('grant_types', 'client_credentials needs a confidential client (token_endpoint_auth_method other than none)');
  }
  const responseTypes = optionalStringArray(m, 'response_types', fail) ?? (grantTypes.includes('authorization_code') ? ['code'] : []);
  for (const r of responseTypes) if (r !== 'code') fail('response_types', 'may only contain "code"');

  const redirectUris = optionalStringArray(m, 'redirect_uris', fail) ?? [];
  for (const uri of redirectUris) {
    const problem = redirectUriProblem(uri, options.allowInsecureRedirectUris === true);
    if (problem !== undefined) fail('redirect_uris', `has ${JSON.stringify(uri)}: ${problem}`);
  }

  const scope = optionalString(m, 'scope', fail);
  if (scope !== undefined) {
    try {
      parseScope(scope);
    } catch {
      fail('scope', 'must be space-separated scope tokens (RFC 6749 §3.3)');
    }
  }
  const format = m.access_token_format;
  if (format !== undefined && format !== 'jwt' && format !== 'opaque') fail('access_token_format', 'must be "jwt" or "opaque"');
  const rotate = m.rotate_refresh_tokens;
  if (rotate !== undefined && typeof rotate !== 'boolean') fail('rotate_refresh_tokens', 'must be true or false');
  const alg = optionalString(m, 'token_endpoint_auth_signing_alg', fail);
  const audiences = optionalStringArray(m, 'resource_server_audiences', fail);
  const clientName = optionalString(m, 'client_name', fail);
  const postLogout = optionalStringArray(m, 'post_logout_redirect_uris', fail);
  for (const uri of postLogout ?? []) {
    const problem = redirectUriProblem(uri, options.allowInsecureRedirectUris === true);
    if (problem !== undefined) fail('post_logout_redirect_uris', `has ${JSON.stringify(uri)}: ${problem}`);
  }
  const idTokenAlg = optionalString(m, 'id_token_signed_response_alg', fail);
  if (idTokenAlg !== undefined && !ID_TOKEN_ALGORITHMS.includes(idTokenAlg)) fail('id_token_signed_response_alg', `must be one of ${ID_TOKEN_ALGORITHMS.join(', ')}`);
  const firstParty = m.first_party;
  if (firstParty !== undefined && typeof firstParty !== 'boolean') fail('first_party', 'must be true or false');
  const allowedAudiences = optionalStringArray(m, 'allowed_audiences', fail);
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) fail('redirect_uris', 'must list at least one URI for the authorization_code grant');

  const extra: Record<string, unknown> = {};
  for (const key of Object.keys(m)) if (!KNOWN_FIELDS.has(key)) extra[key] = m[key];

  const record: ClientRecord = {
    client_id: id,
    redirect_uris: redirectUris,
    grant_types: grantTypes,
    response_types: responseTypes,
    token_endpoint_auth_method: method,
    created_at: options.existing?.created_at ?? options.now,
    updated_at: options.now,
  };
  if (secretHash !== undefined) record.client_secret_hash = secretHash;
  if (secretEncrypted !== undefined) record.client_secret_encrypted = secretEncrypted;
  if (clientName !== undefined) record.client_name = clientName;
  if (scope !== undefined) record.scope = scope;
  if (jwks !== undefined) record.jwks = jwks as { keys: Record<string, unknown>[] };
  if (jwksUri !== undefined) record.jwks_uri = jwksUri;
  if (alg !== undefined) record.token_endpoint_auth_signing_alg = alg;
  if (format !== undefined) record.access_token_format = format as 'jwt' | 'opaque';
  if (rotate !== undefined) record.rotate_refresh_tokens = rotate as boolean;
  if (audiences !== undefined) record.resource_server_audiences = audiences;
  if (postLogout !== undefined) record.post_logout_redirect_uris = postLogout;
  if (idTokenAlg !== undefined) record.id_token_signed_response_alg = idTokenAlg;
  if (firstParty !== undefined) record.first_party = firstParty as boolean;
  if (allowedAudiences !== undefined) record.allowed_audiences = allowedAudiences;
  if (Object.keys(extra).length > 0) record.extra = extra;
  return record;
}

/**
 * Why a redirect URI may not be registered, or undefined when it may. Rules of RFC 9700 §4.1 and
 * RFC 8252: absolute, no fragment, no userinfo, no wildcard, no script schemes, https unless loopback.
 */
export function redirectUriProblem(uri: string, allowInsecure = false): string | undefined {
  if (!URL.canParse(uri)) return 'not an absolute URI';
  const url = new URL(uri);
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (uri.includes('#')) return 'a fragment is not allowed';
  if (uri.includes('*')) return 'wildcards are not allowed';
  if (['javascript', 'data', 'vbscript', 'file'].includes(scheme)) return `the ${scheme}: scheme is not allowed`;
  if (url.username !== '' || url.password !== '') return 'userinfo is not allowed';
  if (scheme === 'http') {
    const host = url.hostname;
    if (!isLoopbackHost(host) && !allowInsecure) return 'plain http is only allowed for loopback hosts';
  }
  return undefined;
}

function optionalString(m: Record<string, unknown>, field: string, fail: (f: string, msg: string) => never): string | undefined {
  const v = m[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') return fail(field, 'must be a non-empty string');
  return v;
}

function optionalStringArray(m: Record<string, unknown>, field: string, fail: (f: string, msg: string) => never): string[] | undefined {
  const v = m[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) return fail(field, 'must be an array of non-empty strings');
  return [...new Set(v as string[])];
}

function validateJwks(jwks: unknown, fail: (f: string, msg: string) => never): void {
  if (jwks === null || typeof jwks !== 'object' || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    fail('jwks', 'must be a JWK Set: { "keys": [ … ] }');
  }
  for (const key of (jwks as { keys: unknown[] }).keys) {
    if (key === null || typeof key !== 'object' || typeof (key as { kty?: unknown }).kty !== 'string') fail('jwks', 'has a key without "kty"');
    const k = key as Record<string, unknown>;
    if (k.kty === 'oct') fail('jwks', 'must not contain symmetric (oct) keys');
    for (const member of PRIVATE_JWK_MEMBERS) if (member in k) fail('jwks', `has a private key member "${member}": register public keys only`);
  }
}
