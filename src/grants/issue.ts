import { invalidClient } from '../client-auth/index.js';
import { OAuthError, SERVER_ERROR_DESCRIPTION, type OAuthErrorCode } from '../core/errors.js';
import type { GenerateTokenContext, MintAccessTokenInput, MintIdTokenInput, TokenMint } from '../core/options.js';
import { parseScope } from '../core/scope.js';
import type { SigningAlgorithm } from '../keys/jwt-signer.js';
import { ACR_PASSWORD, createIdToken, tokenHash } from '../oidc/id-token.js';
import type { GrantRecord } from '../storage/contract.js';
import { assertTargetsAllowed, assertWithinGrant, audienceOf, parseResourceIndicators } from '../tokens/resource-indicators.js';
import type { AccessTokenInput } from '../tokens/token-service.js';
import type { GrantContext, TokenResponseBody } from './grant.js';

export interface IssueInput {
  grantType: string;
  scope: readonly string[];
  userId?: string;
  /** The grant the tokens belong to (absent for client_credentials). */
  grant?: GrantRecord;
  /** Mint a refresh token of `grant` and return it. */
  refreshToken?: boolean;
  /** Add an OIDC ID token when the scope has `openid` and the grant has a user. */
  idToken?: { includeNonce: boolean };
  /**
   * RFC 8707 resources the access token is for, already checked by the grant (see
   * `resolveTokenResources`). They become its `aud`; none: the server's default audience.
   */
  resources?: readonly string[];
  /** Further audience values (e.g. RFC 8693 `audience`), already checked; merged with `resources`. */
  audience?: string | readonly string[];
  /** Access-token lifetime in seconds; default: the resource's, else ttl.accessToken. */
  ttl?: number;
}

/**
 * The last step of every grant: let the app's hook refuse or shape the token, mint the access token
 * (and a refresh token when asked), and build the RFC 6749 §5.1 response. When the app set
 * `hooks.generateToken` (the flow builders), that hook produces the response instead of the core's
 * own minting, with {@link GenerateTokenContext.mint} to mint through the core; what it returns is
 * validated here (see {@link hookResponse}).
 */
export async function issueTokens(ctx: GrantContext, input: IssueInput): Promise<TokenResponseBody> {
  const { server, client } = ctx;
  const delegated = ctx.clientAuthentication === 'delegated';
  const resources = input.resources ?? [];
  // The resources are already de-duplicated (parseResourceIndicators); merge only when there is an audience.
  const targets = input.audience === undefined ? [...resources] : [...new Set([...resources, ...(typeof input.audience === 'string' ? [input.audience] : input.audience)])];
  const audience = audienceOf(targets);
  // The access token's scope: narrowed to the resource's scopes when one configured resource is targeted.
  const scope = server.tokens.accessScope(input.scope, audience);
  let extraClaims: Record<string, unknown> | undefined;
  if (server.hooks.beforeIssue !== undefined) {
    const decision = await server.hooks.beforeIssue({
      grantType: input.grantType,
      client,
      scope: [...scope],
      params: ctx.params,
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
      ...(targets.length > 0 ? { resources: targets } : {}),
    });
    extraClaims = decision?.accessTokenClaims;
  }

  async function mintDefault(): Promise<TokenResponseBody> {
    const request: AccessTokenInput = { client, scope };
    if (input.userId !== undefined) request.userId = input.userId;
    if (input.grant !== undefined) request.grantId = input.grant.id;
    if (extraClaims !== undefined) request.extraClaims = extraClaims;
    if (audience !== undefined) request.audience = audience;
    if (input.ttl !== undefined) request.ttl = input.ttl;
    const accessToken = await server.tokens.issueAccessToken(request);
    const body: TokenResponseBody = {
      access_token: accessToken.token,
      token_type: 'Bearer',
      expires_in: accessToken.expiresIn,
    };
    if (input.refreshToken === true && input.grant !== undefined) {
      body.refresh_token = await server.tokens.issueRefreshToken(input.grant);
    }
    if (input.idToken !== undefined && input.scope.includes('openid') && input.grant !== undefined && input.userId !== undefined) {
      const user = await server.storage.getUser(input.userId);
      if (user === undefined) throw new OAuthError('invalid_grant', 'The user of the grant no longer exists');
      body.id_token = createIdToken(server, { client, user, grant: input.grant, scope: input.scope, accessToken: accessToken.token, includeNonce: input.idToken.includeNonce });
    }
    if (scope.length > 0) body.scope = scope.join(' ');
    return body;
  }

  const generateToken = server.hooks.generateToken;
  if (generateToken === undefined) {
    if (delegated) throw new OAuthError('server_error', SERVER_ERROR_DESCRIPTION, { detail: 'delegated client authentication without a generateToken hook' });
    return mintDefault();
  }
  const accessTokenTtl = input.ttl ?? server.tokens.resourceSettings(audience)?.accessTokenTtl ?? server.ttl.accessToken;
  const hookContext: GenerateTokenContext = {
    grantType: input.grantType,
    clientAuthentication: delegated ? 'delegated' : 'registry',
    client,
    authMethod: ctx.authMethod,
    scope: [...scope],
    params: ctx.params,
    request: ctx.request,
    accessTokenTtl,
    mint: createMint(ctx, input, { scope, audience, extraClaims, accessTokenTtl, mintDefault }),
    ...(delegated && ctx.clientSecret !== undefined ? { clientSecret: ctx.clientSecret } : {}),
    ...(input.userId !== undefined ? { userId: input.userId } : {}),
    ...(input.grant !== undefined ? { grant: input.grant } : {}),
    ...(targets.length > 0 ? { resources: targets } : {}),
  };
  return hookResponse(await generateToken(hookContext), server);
}

/** Registered claims of an ID token the app cannot set in registry mode (the core knows them). */
const ID_TOKEN_CORE_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'azp', 'at_hash', 'c_hash', 'nonce', 'auth_time', 'acr', 'amr', 'sid']);
/** In delegated mode the app owns the authentication facts (nonce, auth_time, acr, amr, sid) but not these. */
const ID_TOKEN_PROTECTED_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'azp', 'at_hash', 'c_hash', 'sub']);

function positiveSeconds(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive whole number of seconds`);
  return value;
}

/** The minting functions handed to the hook: every token carries the core's issuer, keys, lifetimes and bindings. */
function createMint(
  ctx: GrantContext,
  input: IssueInput,
  resolved: { scope: string[]; audience: string | string[] | undefined; extraClaims: Record<string, unknown> | undefined; accessTokenTtl: number; mintDefault: () => Promise<TokenResponseBody> },
): TokenMint {
  const { server, client } = ctx;
  const delegated = ctx.clientAuthentication === 'delegated';
  /** The subject the core proved (registry mode): the grant's user, else the client. */
  const provenSubject = input.userId ?? client.client_id;
  return {
    async accessToken(request: MintAccessTokenInput = {}) {
      let subject: string | undefined;
      let tokenScope = resolved.scope;
      if (delegated) {
        subject = request.subject;
        if (request.scope !== undefined) tokenScope = [...request.scope];
      } else {
        if (request.subject !== undefined && request.subject !== provenSubject) {
          throw new TypeError('createJwtAccessToken: the subject is the one the core authenticated; a different `sub` is refused');
        }
        subject = input.userId;
        if (request.scope !== undefined) {
          const extra = request.scope.filter((s) => !resolved.scope.includes(s));
          if (extra.length > 0) throw new TypeError(`createJwtAccessToken: the scope may only narrow the granted scope (not granted: ${extra.join(' ')})`);
          tokenScope = [...request.scope];
        }
      }
      for (const token of tokenScope) {
        if (typeof token !== 'string' || !SCOPE_TOKEN.test(token)) throw new TypeError('createJwtAccessToken: each scope must be one scope token');
      }
      const ttl = positiveSeconds(request.ttl, 'ttl') ?? resolved.accessTokenTtl;
      const claims = request.claims === undefined ? resolved.extraClaims : { ...resolved.extraClaims, ...request.claims };
      const audience = request.audience ?? resolved.audience;
      const issued = await server.tokens.issueAccessToken({
        client,
        scope: tokenScope,
        format: 'jwt',
        ttl,
        ...(subject !== undefined ? { userId: subject } : {}),
        ...(!delegated && input.grant !== undefined ? { grantId: input.grant.id } : {}),
        ...(claims !== undefined ? { extraClaims: claims } : {}),
        ...(audience !== undefined ? { audience } : {}),
      });
      return { token: issued.token, expiresIn: issued.expiresIn };
    },
    async refreshToken() {
      if (delegated || input.grant === undefined) {
        throw new TypeError('refresh tokens of the core belong to a grant: registry mode (registered clients) and a grant with a user only');
      }
      if (!mayRefresh(ctx, server.grantTypes())) throw new TypeError(`client ${client.client_id} is not registered for the refresh_token grant`);
      return server.tokens.issueRefreshToken(input.grant);
    },
    idToken(request: MintIdTokenInput = {}) {
      const now = server.clock();
      const ttl = positiveSeconds(request.ttl, 'ttl') ?? server.ttl.idToken;
      const alg = (client.id_token_signed_response_alg ?? server.idTokenSigningAlgorithm) as SigningAlgorithm;
      const payload: Record<string, unknown> = {};
      const blocked = delegated ? ID_TOKEN_PROTECTED_CLAIMS : ID_TOKEN_CORE_CLAIMS;
      for (const [k, v] of Object.entries(request.claims ?? {})) if (!blocked.has(k) && v !== undefined) payload[k] = v;
      let subject: string;
      if (delegated) {
        if (typeof request.subject !== 'string' || request.subject === '') throw new TypeError('createIdToken: `sub` is required');
        subject = request.subject;
      } else {
        const proven = input.userId;
        if (proven === undefined && request.subject === undefined) throw new TypeError('createIdToken: this grant has no end user; pass `sub`');
        if (proven !== undefined && request.subject !== undefined && request.subject !== proven) {
          throw new TypeError('createIdToken: the subject is the user the core authenticated; a different `sub` is refused');
        }
        subject = proven ?? request.subject!;
      }
      Object.assign(payload, { iss: server.issuer, sub: subject, aud: client.client_id, exp: now + ttl, iat: now, azp: client.client_id });
      const grant = input.grant;
      if (!delegated && grant !== undefined && input.userId !== undefined) {
        const data = grant.data ?? {};
        payload.auth_time = grant.auth_time ?? grant.created_at;
        payload.acr = ACR_PASSWORD;
        payload.amr = Array.isArray(data.amr) ? data.amr : ['pwd'];
        if (input.idToken?.includeNonce === true && typeof data.nonce === 'string') payload.nonce = data.nonce;
        if (typeof data.sid === 'string') payload.sid = data.sid;
      }
      if (request.accessToken !== undefined) payload.at_hash = tokenHash(request.accessToken, alg);
      return server.keys.sign(payload, 'JWT', alg);
    },
    defaultResponse: resolved.mintDefault,
  };
}

/** RFC 6749 §5.2 error codes the hook may return with their status; other well-formed codes get 400. */
const ERROR_CODE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;
const ERROR_URI = /^[\x21\x23-\x5b\x5d-\x7e]{1,2048}$/;
/** RFC 6749 App. A: token_type is a type name; access and refresh tokens are 1*VSCHAR. */
const TOKEN_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const VSCHAR = /^[\x20-\x7e]+$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const NULL_DESCRIPTION = 'The token request was refused';

/** An error chosen by the app's hook: its code, status and description; no description when it gave none. */
class HookRefusal extends OAuthError {
  readonly #uri: string | undefined;
  readonly #hasDescription: boolean;

  constructor(code: string, description: string | undefined, uri: string | undefined, options: { status: number; headers?: Record<string, string> }) {
    super(code as OAuthErrorCode, description ?? '', options);
    this.#uri = uri;
    this.#hasDescription = description !== undefined && description !== '';
  }

  override toJSON(): ReturnType<OAuthError['toJSON']> {
    const body: Record<string, string> = { error: this.error };
    if (this.#hasDescription) body.error_description = this.description;
    if (this.#uri !== undefined) body.error_uri = this.#uri;
    return body as ReturnType<OAuthError['toJSON']>;
  }
}

/**
 * Turn what the hook returned into the response body, or throw the error it chose:
 * - `null` / `undefined` → 400 `invalid_request`;
 * - `{ error, error_description?, error_uri? }` → that error with its status (`invalid_client` → 401
 *   with `WWW-Authenticate: Basic realm="<issuer>"`; codes the core does not know → 400);
 * - a token response (an object, or anything with `toJSON()`) → checked: `access_token` (VSCHAR),
 *   `token_type` (a type name; `Bearer` when absent), `expires_in` a positive whole number,
 *   `refresh_token`, `scope` (scope grammar) and `id_token` strings when present;
 * - anything else, or a malformed response → 500 `server_error` (the reason is logged).
 */
export function hookResponse(result: unknown, server: GrantContext['server']): TokenResponseBody {
  if (result === null || result === undefined) throw new OAuthError('invalid_request', NULL_DESCRIPTION, { detail: 'generateToken returned null' });
  if (typeof result !== 'object') throw invalidHookResponse(`generateToken returned a ${typeof result}`);
  let value: unknown = result;
  const toJSON = (result as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') value = toJSON.call(result);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidHookResponse('generateToken returned something that is not an object');
  const body = value as Record<string, unknown>;
  if (body.error !== undefined) return refuse(body, server);
  const out: TokenResponseBody = { access_token: '', token_type: 'Bearer' };
  for (const [key, member] of Object.entries(body)) if (member !== undefined) out[key] = member;
  if (typeof out.access_token !== 'string' || !VSCHAR.test(out.access_token)) throw invalidHookResponse('access_token must be a non-empty string of visible ASCII');
  if (typeof out.token_type !== 'string' || !TOKEN_TYPE.test(out.token_type)) throw invalidHookResponse('token_type must be a token type name');
  if (out.expires_in !== undefined && (!Number.isSafeInteger(out.expires_in) || (out.expires_in as number) <= 0)) {
    throw invalidHookResponse('expires_in must be a positive whole number of seconds');
  }
  if (out.refresh_token !== undefined && (typeof out.refresh_token !== 'string' || !VSCHAR.test(out.refresh_token))) throw invalidHookResponse('refresh_token must be a non-empty string of visible ASCII');
  if (out.id_token !== undefined && (typeof out.id_token !== 'string' || out.id_token === '')) throw invalidHookResponse('id_token must be a non-empty string');
  if (out.scope !== undefined) {
    if (typeof out.scope !== 'string') throw invalidHookResponse('scope must be a string');
    try {
      parseScope(out.scope);
    } catch {
      throw invalidHookResponse('scope must follow the scope grammar');
    }
    if (out.scope === '') delete out.scope;
  }
  try {
    JSON.stringify(out);
  } catch {
    throw invalidHookResponse('the token response is not JSON-serialisable');
  }
  return out;
}

function refuse(body: Record<string, unknown>, server: GrantContext['server']): never {
  const code = body.error;
  if (typeof code !== 'string' || !ERROR_CODE.test(code)) throw invalidHookResponse('error must be an RFC 6749 error code');
  const description = body.error_description;
  if (description !== undefined && typeof description !== 'string') throw invalidHookResponse('error_description must be a string');
  const uri = body.error_uri;
  if (uri !== undefined && (typeof uri !== 'string' || !ERROR_URI.test(uri))) throw invalidHookResponse('error_uri must be a URI');
  const status = code === 'server_error' ? 500 : code === 'temporarily_unavailable' ? 503 : code === 'invalid_client' ? 401 : 400;
  const headers = code === 'invalid_client' ? invalidClient(server.clientAuth, 'refused by generateToken').headers : code === 'temporarily_unavailable' ? { 'retry-after': '5' } : undefined;
  throw new HookRefusal(code, description, uri, { status, ...(headers !== undefined ? { headers } : {}) });
}

function invalidHookResponse(detail: string): OAuthError {
  return new OAuthError('server_error', SERVER_ERROR_DESCRIPTION, { detail: `invalid generateToken result: ${detail}` });
}

/**
 * The RFC 8707 resources a token request's access token is for, checked: each `resource` value must
 * be an absolute URI without a fragment and allowed for the client; with `granted` (the resources of
 * an existing grant: authorization_code, refresh_token) each must be one of them, and none requested
 * means all of them. Also checks that the scope keeps something after narrowing to a resource's
 * scopes. Call it before consuming anything, so a refused request costs nothing.
 * @throws OAuthError `invalid_target` (or `invalid_scope`).
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 */
export function resolveTokenResources(ctx: GrantContext, scope: readonly string[], granted?: readonly string[]): string[] {
  const { server, client } = ctx;
  const defaultAudience = server.tokens.defaultAudience;
  const requested = parseResourceIndicators(ctx.multiParams?.resource);
  assertTargetsAllowed(client, requested, defaultAudience);
  if (granted !== undefined) assertWithinGrant(requested, granted, defaultAudience);
  const resources = requested.length > 0 ? requested : [...(granted ?? [])];
  // The client may have lost a resource since the grant was made.
  assertTargetsAllowed(client, resources, defaultAudience);
  server.tokens.accessScope(scope, audienceOf(resources));
  return resources;
}

/** Whether the client may receive refresh tokens (it lists the refresh_token grant and the server serves it). */
export function mayRefresh(ctx: GrantContext, grantTypes: readonly string[]): boolean {
  return ctx.client.grant_types.includes('refresh_token') && grantTypes.includes('refresh_token');
}
