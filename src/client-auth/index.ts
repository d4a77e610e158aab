import { verifyClientSecret } from '../clients/secrets.js';
import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import { ConfigError, OAuthError } from '../core/errors.js';
import type { FormParams } from '../core/form.js';
import type { OAuthRequest } from '../core/http.js';
import type { ClientRecord, Storage } from '../storage/contract.js';
import { JWT_BEARER_CLIENT_ASSERTION_TYPE, assertionAlgorithm, unverifiedAssertionIssuer } from './assertion.js';
import { parseBasicAuthorization, verifyClientSecretBasic } from './client-secret-basic.js';
import { verifyClientSecretJwt } from './client-secret-jwt.js';
import { verifyClientSecretPost } from './client-secret-post.js';
import { verifyPrivateKeyJwt } from './private-key-jwt.js';
import type { AuthenticatedClient, ClientAuthOptions } from './types.js';

export type { AuthenticatedClient, ClientAuthOptions } from './types.js';

/** The one description of every client-authentication failure (the real reason goes to `detail`). */
export const CLIENT_AUTH_FAILED = 'Client authentication failed';
/** Rate-limit key prefix of failed authentications; the window is {@link FAILURE_WINDOW_SECONDS}. */
export const FAILURE_KEY_PREFIX = 'client_auth_failure:';
export const FAILURE_WINDOW_SECONDS = 60;

/** Same syntax as `normalizeClientMetadata` accepts: 1-255 printable ASCII, no space. */
const CLIENT_ID_FORMAT = /^[\x21-\x7e]{1,255}$/;

/**
 * The 401 `invalid_client` every failed authentication produces (RFC 6749 §5.2). It is the same for
 * an unknown client, a wrong secret, a wrong method, a bad or replayed assertion…: only `detail`
 * (logged, never sent) tells them apart. `WWW-Authenticate: Basic realm="<issuer>"` (with `"` and
 * `\` escaped); `retryAfterSeconds` adds `Retry-After` while the client is throttled.
 */
export function invalidClient(
  options: Pick<ClientAuthOptions, 'issuer'>,
  detail: string,
  retryAfterSeconds?: number,
): OAuthError {
  const headers: Record<string, string> = {
    'www-authenticate': `Basic realm="${options.issuer.replace(/["\\]/g, '\\$&')}"`,
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  return new OAuthError('invalid_client', CLIENT_AUTH_FAILED, { headers, detail });
}

type Attempt =
  | { mechanism: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string }
  | { mechanism: 'client_secret_jwt' | 'private_key_jwt'; clientId: string; assertion: string }
  | { mechanism: 'none'; clientId: string };

/**
 * Authenticate the client of a token / revocation / introspection / PAR request
 * (RFC 6749 §2.3, §2.3.1, §5.2; RFC 7523 §2.2, §3; OIDC Core §9).
 *
 * Mechanisms and how the request picks one:
 * - `Authorization: Basic …` → `client_secret_basic` (see {@link parseBasicAuthorization}: a
 *   non-Basic scheme or malformed credentials → 400 invalid_request);
 * - `client_secret` in the body (with `client_id`) → `client_secret_post`;
 * - `client_assertion` + `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
 *   → `client_secret_jwt` when the JWS `alg` is HS*, else `private_key_jwt`;
 * - `client_id` alone → `none` (public client).
 *
 * 400 `invalid_request`: more than one mechanism; a Basic user different from the body
 * `client_id`; `client_secret` without `client_id`; `client_assertion` without its type or the
 * other way round; an assertion type other than jwt-bearer.
 *
 * 401 `invalid_client` (byte-identical, see {@link invalidClient}): no credentials and no
 * `client_id`; unknown client; a mechanism other than the client's registered
 * `token_endpoint_auth_method`, or a method not in `options.methods`; wrong secret (also a secret
 * sent for a `none` client); `client_id` only for a confidential client; any assertion failure
 * (malformed, signature, alg, iss/sub/aud/exp/nbf/iat/jti, replay).
 *
 * Throttling (per client_id, fixed 60 s windows in storage):
 * - every failed authentication of a well-formed client_id (registered or not, so throttling does
 *   not reveal which ids exist) counts one hit on `client_auth_failure:<client_id>` with the
 *   atomic `storage.hitRateLimit`. Successes are never counted and never reset the counter (else a
 *   legitimate client's traffic would wipe an attacker's failures).
 * - when a hit returns `count >= maxFailuresPerMinute`, the client is blocked until the window
 *   ends: that answer and every later attempt in the window get the same invalid_client plus
 *   `Retry-After`, and later attempts are refused BEFORE the secret or assertion is checked (so a
 *   correct guess cannot be told apart, and an assertion's jti is not burnt).
 * - the block is known through a per-process cache filled from the counter's answers, so a
 *   successful authentication costs ZERO extra storage calls (`client_secret_basic` success = one
 *   `getClient`). Cost of that choice, by design small and bounded: checks that are already in
 *   flight when the limit is reached, and, with several server processes sharing one storage, the
 *   first failure each other process sees in the window, may still be verified — at most
 *   (concurrency + processes − 1) guesses beyond the limit per window. The counter itself is exact.
 * - requests with `client_id` only (method `none`) are exempt from the block: they carry no
 *   credential to guess, and blocking them would let anyone lock a public client out.
 * - a non-finite `maxFailuresPerMinute` (e.g. `Infinity`) disables throttling.
 * Per-client lockout lets anyone who knows a client_id delay that client for up to a minute by
 * sending bad credentials; this is the accepted cost of bounding online guessing (rate limiting
 * per IP belongs to the endpoint layer).
 */
export async function authenticateClient(
  req: OAuthRequest,
  params: FormParams,
  options: ClientAuthOptions,
): Promise<AuthenticatedClient> {
  const now = options.clock();
  const attempt = await detectAttempt(req, params, options, now);

  if (!CLIENT_ID_FORMAT.test(attempt.clientId)) {
    // Cannot be a registered client; not counted (the key would be unbounded garbage).
    if ('secret' in attempt) verifyClientSecret(attempt.secret, undefined);
    throw invalidClient(options, 'client_id has an invalid format');
  }

  if (attempt.mechanism !== 'none') {
    const blockedUntil = blockedUntilOf(options.storage, attempt.clientId, now);
    if (blockedUntil !== undefined) {
      throw invalidClient(options, 'too many failed client authentications; refused without checking', blockedUntil - now);
    }
  }

  const client = await options.storage.getClient(attempt.clientId);
  const methodProblem = registeredMethodProblem(client, attempt.mechanism, options);
  let failure: string | undefined;
  switch (attempt.mechanism) {
    case 'client_secret_basic':
      // The hash comparison runs whatever the method problem, so timing does not reveal it.
      failure = verifyClientSecretBasic(methodProblem === undefined ? client : undefined, attempt.secret);
      break;
    case 'client_secret_post':
      failure = verifyClientSecretPost(methodProblem === undefined ? client : undefined, attempt.secret);
      break;
    case 'client_secret_jwt':
      failure = methodProblem ?? (await verifyClientSecretJwt(attempt.assertion, client!, options));
      break;
    case 'private_key_jwt':
      failure = methodProblem ?? (await verifyPrivateKeyJwt(attempt.assertion, client!, options));
      break;
    case 'none':
      failure = undefined;
      break;
  }
  failure = methodProblem ?? failure;
  if (failure === undefined && client !== undefined) return { client, method: attempt.mechanism };
  throw await failed(attempt.clientId, failure ?? 'client unknown', options, now);
}

/** Credentials as a request presents them, for delegated client authentication (see {@link delegatedClientCredentials}). */
export interface PresentedClient {
  clientId: string;
  method: TokenEndpointAuthMethod;
  /** The secret exactly as sent (client_secret_basic: form-decoded). */
  clientSecret?: string;
}

/**
 * Delegated client authentication (`clientAuthentication: 'delegated'`, flow builders without
 * registered clients): the same detection as {@link authenticateClient} — exactly one method, a
 * malformed Authorization header or a repeated method → 400 `invalid_request`, no credentials and no
 * client_id → 401 — then the method must be one of `options.methods`, and the credentials are
 * returned raw for the app's `generateToken` hook to check. JWT assertions need a registered key or
 * secret, so they are refused (401). A client_id that IS registered is refused too (401): registered
 * clients are authenticated by the registry, never delegated (restart in registry mode).
 */
export async function delegatedClientCredentials(req: OAuthRequest, params: FormParams, options: ClientAuthOptions): Promise<PresentedClient> {
  const attempt = await detectAttempt(req, params, options, options.clock());
  if (!CLIENT_ID_FORMAT.test(attempt.clientId)) throw invalidClient(options, 'client_id has an invalid format');
  if (!options.methods.includes(attempt.mechanism)) throw invalidClient(options, `method ${attempt.mechanism} is not enabled on this server`);
  if (attempt.mechanism === 'client_secret_jwt' || attempt.mechanism === 'private_key_jwt') {
    throw invalidClient(options, `${attempt.mechanism} needs a registered client; delegated client authentication cannot verify it`);
  }
  if ((await options.storage.getClient(attempt.clientId)) !== undefined) {
    throw invalidClient(options, 'client registered while the server runs with delegated client authentication; restart to use the registry');
  }
  const presented: PresentedClient = { clientId: attempt.clientId, method: attempt.mechanism };
  if ('secret' in attempt) presented.clientSecret = attempt.secret;
  return presented;
}

/**
 * Start-up checks of delegated client authentication, and its loud warning (log and console
 * banner): the options come from the flow builders, a `generateToken` hook exists, and no client is
 * registered in storage (registered clients must be authenticated by the registry).
 */
export async function checkDelegatedClientAuthentication(
  options: { hooks?: { generateToken?: unknown }; clientAuthMethods?: readonly string[] },
  allowed: boolean,
  storage: Storage,
  logger: { warn(obj: object, msg?: string): void },
): Promise<void> {
  if (!allowed) {
    throw new ConfigError("clientAuthentication 'delegated' is reserved for the flow builders (portcullis/builders); register clients instead");
  }
  if (typeof options.hooks?.generateToken !== 'function') {
    throw new ConfigError("clientAuthentication 'delegated' needs hooks.generateToken: the app authenticates clients there");
  }
  const jwtMethods = (options.clientAuthMethods ?? []).filter((m) => m === 'client_secret_jwt' || m === 'private_key_jwt');
  if (jwtMethods.length > 0) {
    throw new ConfigError(`clientAuthentication 'delegated' cannot use ${jwtMethods.join(', ')}: JWT client assertions need registered clients (their keys or secrets)`);
  }
  const clients = await storage.listClients();
  if (clients.length > 0) {
    throw new ConfigError(`clientAuthentication 'delegated' refused: ${clients.length} client(s) are registered in storage; registered clients are authenticated by the registry, so start in registry mode`);
  }
  const message =
    'NO CLIENTS ARE REGISTERED: client authentication at the token endpoint is left to the app\'s generateToken hook, which receives the credentials raw (clientId, clientSecret) and MUST check them. ' +
    'The authorization, device, revocation, introspection and userinfo endpoints are not served. Register clients (addClient) to have Portcullis authenticate them.';
  logger.warn({ event: 'config.insecure', clientAuthentication: 'delegated' }, message);
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! Portcullis: delegated client authentication\n!! ${message}\n${bar}\n`);
}

/** Which mechanism the request uses, with the client id it claims. Throws the 400s and the no-id 401. */
async function detectAttempt(req: OAuthRequest, params: FormParams, options: ClientAuthOptions, now: number): Promise<Attempt> {
  const basic = parseBasicAuthorization(req.headers.authorization);
  const bodyId = params.client_id;
  const bodySecret = params.client_secret;
  const assertion = params.client_assertion;
  const assertionType = params.client_assertion_type;

  if (assertionType !== undefined && assertionType !== JWT_BEARER_CLIENT_ASSERTION_TYPE) {
    throw invalidRequest('Unsupported client_assertion_type');
  }
  if ((assertion === undefined) !== (assertionType === undefined)) {
    throw invalidRequest('client_assertion and client_assertion_type must be sent together');
  }
  const mechanisms = [basic !== undefined, bodySecret !== undefined, assertion !== undefined].filter(Boolean).length;
  if (mechanisms > 1) throw invalidRequest('Use exactly one client authentication method per request');

  if (basic !== undefined) {
    if (bodyId !== undefined && bodyId !== basic.clientId) {
      throw invalidRequest('client_id does not match the client of the Authorization header');
    }
    return { mechanism: 'client_secret_basic', clientId: basic.clientId, secret: basic.clientSecret };
  }
  if (bodySecret !== undefined) {
    if (bodyId === undefined) throw invalidRequest('client_secret needs client_id');
    return { mechanism: 'client_secret_post', clientId: bodyId, secret: bodySecret };
  }
  if (assertion !== undefined) {
    const clientId = bodyId ?? unverifiedAssertionIssuer(assertion);
    if (clientId === undefined) throw invalidClient(options, 'client_assertion is malformed or has no iss, and no client_id was sent');
    const alg = assertionAlgorithm(assertion);
    if (alg === undefined) {
      if (CLIENT_ID_FORMAT.test(clientId)) throw await failed(clientId, 'client_assertion is not a valid JWS', options, now);
      throw invalidClient(options, 'client_assertion is not a valid JWS');
    }
    const mechanism = /^HS\d+$/i.test(alg) ? 'client_secret_jwt' : 'private_key_jwt';
    return { mechanism, clientId, assertion };
  }
  if (bodyId === undefined) throw invalidClient(options, 'no client authentication and no client_id');
  return { mechanism: 'none', clientId: bodyId };
}

/** Why `client` may not authenticate with `mechanism`, or `undefined` when it may. */
function registeredMethodProblem(
  client: ClientRecord | undefined,
  mechanism: TokenEndpointAuthMethod,
  options: ClientAuthOptions,
): string | undefined {
  if (client === undefined) return 'client unknown';
  if (client.token_endpoint_auth_method !== mechanism) {
    return `client is registered for ${client.token_endpoint_auth_method} but used ${mechanism}`;
  }
  if (!options.methods.includes(mechanism)) return `method ${mechanism} is not enabled on this server`;
  return undefined;
}

/** Count one failure and build the answer (with Retry-After once the limit is reached). */
async function failed(clientId: string, detail: string, options: ClientAuthOptions, now: number): Promise<OAuthError> {
  const max = options.maxFailuresPerMinute;
  if (!Number.isFinite(max)) return invalidClient(options, detail);
  const hit = await options.storage.hitRateLimit(FAILURE_KEY_PREFIX + clientId, FAILURE_WINDOW_SECONDS, now);
  if (hit.count < max) return invalidClient(options, detail);
  rememberBlock(options.storage, clientId, hit.reset_at);
  if (hit.count === max) {
    options.logger.warn({ client_id: clientId, failures: hit.count, reset_at: hit.reset_at }, 'client authentication throttled');
  }
  return invalidClient(options, `${detail}; client throttled until ${hit.reset_at}`, hit.reset_at - now);
}

// ---------------------------------------------------------------------------------------------
// Per-process cache of blocked client ids (per storage instance), filled from the counter.

const MAX_BLOCKED_ENTRIES = 10_000;
const blocked = new WeakMap<Storage, Map<string, number>>();

function blockedUntilOf(storage: Storage, clientId: string, now: number): number | undefined {
  const map = blocked.get(storage);
  const until = map?.get(clientId);
  if (until === undefined) return undefined;
  if (until > now) return until;
  map!.delete(clientId);
  return undefined;
}

function rememberBlock(storage: Storage, clientId: string, until: number): void {
  let map = blocked.get(storage);
  if (map === undefined) {
    map = new Map();
    blocked.set(storage, map);
  }
  map.delete(clientId);
  if (map.size >= MAX_BLOCKED_ENTRIES) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  map.set(clientId, until);
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError('invalid_request', description);
}
