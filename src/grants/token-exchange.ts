/**
 * OAuth 2.0 Token Exchange (RFC 8693): a confidential client trades a token it holds (the subject
 * token, optionally with an actor token) for a new access token, usually for another audience.
 * See docs/token-exchange.md for the default policy and why.
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */
import { ConfigError, OAuthError } from '../core/errors.js';
import { difference, parseScope } from '../core/scope.js';
import { assertTargetsAllowed, audienceOf, parseResourceIndicators } from '../tokens/resource-indicators.js';
import type { AccessTokenInfo } from '../tokens/token-service.js';
import type { ClientRecord } from '../storage/contract.js';
import type { GrantContext, GrantHandler, TokenResponseBody } from './grant.js';
import {
  buildTrustedIssuers,
  MAX_TRUSTED_JWT_LENGTH,
  unverifiedIssuer,
  verifyTrustedJwt,
  type TrustedIssuer,
  type TrustedIssuerOptions,
} from './trusted-issuers.js';

export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** RFC 8693 §3 token type identifiers. */
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';

/** Types accepted as subject_token_type / actor_token_type. */
export const EXCHANGE_INPUT_TOKEN_TYPES: readonly string[] = Object.freeze([TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT]);
/** Types that may be requested (requested_token_type). */
export const EXCHANGE_OUTPUT_TOKEN_TYPES: readonly string[] = Object.freeze([TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT]);

/** Clock skew tolerated on `nbf` / `iat` of tokens from other issuers, seconds. */
export const TOKEN_EXCHANGE_CLOCK_TOLERANCE = 15;
/** Deepest accepted `act` chain (RFC 8693 §4.1 nesting). */
export const MAX_ACT_DEPTH = 10;

const INVALID_SUBJECT = 'The subject_token is invalid, expired or revoked';
const INVALID_ACTOR = 'The actor_token is invalid, expired or revoked';

/** A JWT issuer whose tokens may be exchanged (subject or actor of type `…:jwt`). */
export interface TokenExchangeTrustedIssuer extends TrustedIssuerOptions {
  /** When set, the token's `aud` must be (or contain) this value. */
  audience?: string;
}

/** What the server learned from a verified subject or actor token. */
export interface ExchangeParty {
  sub: string;
  /**
   * The client of THIS server the token was issued to (access tokens: `client_id`; ID tokens: `azp`
   * or the single `aud`). Absent for tokens of other issuers: their client ids are another namespace.
   */
  client_id?: string;
  /** The token's scope (ID tokens have none; other issuers: their `scope` claim). */
  scope: string[];
  aud: string[];
  /** Every claim of the token (for opaque access tokens: what introspection would show). */
  claims: Record<string, unknown>;
  /** Who issued it: this server's issuer, or a trusted issuer. */
  issuer: string;
  /** The token type the client declared (`subject_token_type` / `actor_token_type`). */
  tokenType: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export interface TokenExchangePolicyContext {
  client: ClientRecord;
  subject: ExchangeParty;
  actor?: ExchangeParty;
  /** `audience` and `resource` values, in order, without duplicates. */
  requestedAudiences: string[];
  requestedScope: string[];
  requestedTokenType: string;
}

export interface TokenExchangePolicyDecision {
  /** false: refused with invalid_request (throw an OAuthError for another code). */
  allow: boolean;
  /** Issue without a new `act` claim even though an actor token was sent. */
  impersonation?: boolean;
  /** The scope to issue (still within the client's registered scope). Default: the default scope rule. */
  scope?: string[];
  /** The audience to issue, used as given. Default: the default audience rule. */
  audience?: string[];
}

export interface TokenExchangeOptions {
  /** Issuers whose JWTs may be exchanged as `urn:ietf:params:oauth:token-type:jwt`. */
  trustedIssuers?: TokenExchangeTrustedIssuer[];
  /**
   * Decide who may exchange what. Return nothing to apply the default policy; `{ allow: false }` to
   * refuse; `{ allow: true, … }` to authorise the parties (audience and scope keep their default
   * rules unless returned). Hard rules (valid tokens, `may_act`, lifetime cap, the client's registered
   * scope) hold whatever it returns.
   */
  policy?(ctx: TokenExchangePolicyContext): Promise<TokenExchangePolicyDecision | void> | TokenExchangePolicyDecision | void;
}

interface Party extends ExchangeParty {
  /** The grant of one of our access tokens: the exchanged token joins it. */
  grantId?: string;
  act?: unknown;
  mayAct?: unknown;
}

interface ExternalIssuer extends TrustedIssuer {
  audience?: string;
}

/**
 * Build the grant. Checks, in order: parameters (`subject_token`, `subject_token_type`, both or
 * neither of `actor_token` / `actor_token_type`, supported types; invalid_request) → targets
 * (`resource` must be an absolute URI; invalid_target) → the subject token, then the actor token,
 * are valid and live (invalid_request) → `may_act` of the subject names the actor (invalid_request) →
 * the policy, or the default one: without an actor only the client the subject token was issued to may
 * exchange it (impersonation), with one the actor token must have been issued to this client
 * (delegation) → audience (invalid_target) → scope (invalid_scope) → lifetime capped by the subject's
 * (and actor's) → `beforeIssue` hook → the access token, in the subject's grant when it has one.
 */
export function createTokenExchangeGrant(options: TokenExchangeOptions, settings: { issuer: string; defaultAudience: string }): GrantHandler {
  if (options === null || typeof options !== 'object') throw new ConfigError('tokenExchange must be an object { trustedIssuers?, policy? }');
  const built = buildTrustedIssuers(options.trustedIssuers, 'tokenExchange.trustedIssuers', [settings.issuer]);
  const trusted = new Map<string, ExternalIssuer>();
  (options.trustedIssuers ?? []).forEach((entry, i) => {
    const audience = entry.audience;
    if (audience !== undefined && (typeof audience !== 'string' || audience === '')) {
      throw new ConfigError(`tokenExchange.trustedIssuers[${i}].audience must be a non-empty string`);
    }
    const base = built.get(entry.issuer)!;
    trusted.set(entry.issuer, audience === undefined ? base : { ...base, audience });
  });
  const policy = options.policy;
  if (policy !== undefined && typeof policy !== 'function') throw new ConfigError('tokenExchange.policy must be a function');

  return {
    type: TOKEN_EXCHANGE_GRANT_TYPE,
    allowPublicClients: false,
    async handle(ctx: GrantContext): Promise<TokenResponseBody> {
      const { server, client, params } = ctx;
      if (ctx.authMethod === 'none') throw new OAuthError('unauthorized_client', 'Public clients may not use this grant type');
      const subjectToken = params.subject_token;
      const subjectType = params.subject_token_type;
      if (subjectToken === undefined) throw new OAuthError('invalid_request', 'Missing parameter: subject_token');
      if (subjectType === undefined) throw new OAuthError('invalid_request', 'Missing parameter: subject_token_type');
      if (!EXCHANGE_INPUT_TOKEN_TYPES.includes(subjectType)) throw new OAuthError('invalid_request', 'Unsupported subject_token_type');
      const actorToken = params.actor_token;
      const actorType = params.actor_token_type;
      if ((actorToken === undefined) !== (actorType === undefined)) throw new OAuthError('invalid_request', 'actor_token and actor_token_type must be sent together');
      if (actorType !== undefined && !EXCHANGE_INPUT_TOKEN_TYPES.includes(actorType)) throw new OAuthError('invalid_request', 'Unsupported actor_token_type');
      const requestedType = params.requested_token_type ?? TOKEN_TYPE_ACCESS_TOKEN;
      if (!EXCHANGE_OUTPUT_TOKEN_TYPES.includes(requestedType)) throw new OAuthError('invalid_request', 'Unsupported requested_token_type');
      const targets = requestedTargets(ctx);
      const requestedScope = parseScope(params.scope);

      const subject = await readToken(ctx, trusted, subjectToken, subjectType, 'subject');
      const actor = actorToken !== undefined && actorType !== undefined ? await readToken(ctx, trusted, actorToken, actorType, 'actor') : undefined;

      // The subject's own restriction on who may act for it holds whatever the policy says.
      if (actor !== undefined && subject.mayAct !== undefined && !mayActMatches(subject.mayAct, actor, subject.issuer)) {
        throw new OAuthError('invalid_request', 'The actor is not allowed to act for the subject (may_act)', { detail: `actor ${actor.sub} of ${actor.issuer} not named by may_act` });
      }

      let decision: TokenExchangePolicyDecision | undefined;
      if (policy !== undefined) {
        const result = await policy({
          client,
          subject: publicParty(subject),
          ...(actor !== undefined ? { actor: publicParty(actor) } : {}),
          requestedAudiences: [...targets],
          requestedScope: [...requestedScope],
          requestedTokenType: requestedType,
        });
        if (result !== undefined && result !== null) {
          if (typeof result !== 'object' || result.allow !== true) {
            throw new OAuthError('invalid_request', 'The token exchange is not allowed', { detail: 'refused by tokenExchange.policy' });
          }
          decision = result;
        }
      }
      if (decision === undefined) {
        if (actor === undefined && subject.client_id !== client.client_id) {
          throw new OAuthError('invalid_request', 'Without an actor_token only the client the subject_token was issued to may exchange it', {
            detail: `impersonation refused: subject token of ${subject.client_id ?? subject.issuer} presented by ${client.client_id}`,
          });
        }
        if (actor !== undefined && actor.client_id !== client.client_id) {
          throw new OAuthError('invalid_request', 'The actor_token was not issued to this client', { detail: `actor token of ${actor.client_id ?? actor.issuer} presented by ${client.client_id}` });
        }
      }

      const audience = audienceOf(resolveAudience(decision, targets, client, settings.defaultAudience) ?? []);
      // Within the client's scope (and the subject's, by default), then narrowed to the resource's scopes.
      const scope = server.tokens.accessScope(resolveScope(ctx, decision, requestedScope, subject), audience);

      // Delegation unless impersonation: the new act names the actor, with the subject's chain nested.
      const impersonation = actor === undefined || decision?.impersonation === true;
      let act = subject.act === undefined ? undefined : (subject.act as Record<string, unknown>);
      if (!impersonation) {
        act = { sub: actor.sub, ...(actor.issuer !== server.issuer ? { iss: actor.issuer } : {}), ...(act !== undefined ? { act } : {}) };
        if (actDepth(act) > MAX_ACT_DEPTH) throw new OAuthError('invalid_request', 'The delegation chain is too long');
      }

      // Never outlive the subject token (nor the actor token).
      const now = server.clock();
      const lifetime = server.tokens.resourceSettings(audience)?.accessTokenTtl ?? server.ttl.accessToken;
      const ttl = Math.min(lifetime, Math.floor(subject.exp) - now, actor === undefined ? Infinity : Math.floor(actor.exp) - now);
      if (ttl <= 0) throw new OAuthError('invalid_request', Math.floor(subject.exp) <= now ? INVALID_SUBJECT : INVALID_ACTOR, { detail: 'token expired during the request' });

      const isUser = subject.issuer === server.issuer && subject.sub !== subject.client_id;
      let extraClaims: Record<string, unknown> = {};
      if (server.hooks.beforeIssue !== undefined) {
        const hook = await server.hooks.beforeIssue({
          grantType: TOKEN_EXCHANGE_GRANT_TYPE,
          client,
          scope: [...scope],
          params,
          ...(isUser ? { userId: subject.sub } : {}),
          ...(audience !== undefined ? { resources: typeof audience === 'string' ? [audience] : [...audience] } : {}),
        });
        extraClaims = { ...hook?.accessTokenClaims };
      }
      // The act claim of an exchanged token is always the server's.
      delete extraClaims.act;
      if (act !== undefined) extraClaims.act = act;

      const issued = await server.tokens.issueAccessToken({
        client,
        scope,
        userId: subject.sub,
        ...(subject.grantId !== undefined ? { grantId: subject.grantId } : {}),
        ...(audience !== undefined ? { audience } : {}),
        ...(Object.keys(extraClaims).length > 0 ? { extraClaims } : {}),
        // requested_token_type=jwt: a JWT access token whatever the client's or resource's format.
        ...(requestedType === TOKEN_TYPE_JWT ? { format: 'jwt' as const } : {}),
        ttl,
      });
      server.logger.info(
        {
          event: 'token_exchange.issued',
          client_id: client.client_id,
          subject_iss: subject.issuer,
          subject_client_id: subject.client_id,
          actor_sub: actor?.sub,
          mode: impersonation ? 'impersonation' : 'delegation',
          by_policy: decision !== undefined,
        },
        'token exchanged',
      );
      const body: TokenResponseBody = {
        access_token: issued.token,
        issued_token_type: requestedType,
        token_type: 'Bearer',
        expires_in: issued.expiresIn,
      };
      if (scope.length > 0) body.scope = scope.join(' ');
      return body;
    },
  };
}

/**
 * `audience` and `resource` values (RFC 8693 §2.1), deduplicated, order kept; each `resource` must be
 * an absolute URI without a fragment (RFC 8707 rules, invalid_target).
 */
function requestedTargets(ctx: GrantContext): string[] {
  const resources = parseResourceIndicators(ctx.multiParams.resource);
  return [...new Set([...(ctx.multiParams.audience ?? []), ...resources])];
}

/**
 * The audience to issue: the policy's when it returns one; else the requested targets, each of which
 * must be in the client's `allowed_audiences` or be the server's default audience (invalid_target);
 * none requested → undefined (the server's default audience).
 */
function resolveAudience(decision: TokenExchangePolicyDecision | undefined, targets: readonly string[], client: ClientRecord, defaultAudience: string): string[] | undefined {
  if (decision?.audience !== undefined) {
    const aud = decision.audience;
    if (!Array.isArray(aud) || aud.some((a) => typeof a !== 'string' || a === '')) throw new TypeError('tokenExchange.policy returned an audience that is not an array of non-empty strings');
    return aud.length === 0 ? undefined : [...new Set(aud)];
  }
  if (targets.length === 0) return undefined;
  assertTargetsAllowed(client, targets, defaultAudience);
  return [...targets];
}

/**
 * The scope to issue. Always within the client's registered scope and the server's known scopes.
 * Default: a requested scope must be within the subject token's scope too (else invalid_scope); no
 * scope requested → the subject's scope that the client may hold. A policy's `scope` replaces the
 * subject rule.
 */
function resolveScope(ctx: GrantContext, decision: TokenExchangePolicyDecision | undefined, requested: readonly string[], subject: Party): string[] {
  const { server, client } = ctx;
  if (decision?.scope !== undefined) {
    const scope = decision.scope;
    if (!Array.isArray(scope) || scope.some((s) => typeof s !== 'string')) throw new TypeError('tokenExchange.policy returned a scope that is not an array of strings');
    return scope.length === 0 ? [] : server.scopes.resolve(scope.join(' '), client);
  }
  if (requested.length > 0) {
    const scope = server.scopes.resolve(requested.join(' '), client);
    const extra = difference(scope, subject.scope);
    if (extra.length > 0) throw new OAuthError('invalid_scope', `The requested scope exceeds the scope of the subject_token: ${extra.join(' ')}`);
    return scope;
  }
  const clientScope = client.scope === undefined ? undefined : parseScope(client.scope);
  const known = server.scopes.known;
  return subject.scope.filter((s) => (clientScope === undefined || clientScope.includes(s)) && (known === undefined || known.has(s)));
}

/** Verify a subject or actor token of the declared type; anything wrong → invalid_request. */
async function readToken(ctx: GrantContext, trusted: ReadonlyMap<string, ExternalIssuer>, token: string, type: string, role: 'subject' | 'actor'): Promise<Party> {
  const { server } = ctx;
  const description = role === 'subject' ? INVALID_SUBJECT : INVALID_ACTOR;
  const invalid = (detail: string): OAuthError => new OAuthError('invalid_request', description, { detail: `token exchange ${role}: ${detail}` });
  if (token.length > MAX_TRUSTED_JWT_LENGTH) throw invalid('token too long');

  let party: Party | undefined;
  if (type === TOKEN_TYPE_ACCESS_TOKEN) {
    const info = await server.tokens.inspectAccessToken(token);
    if (info === undefined) throw invalid('not an active access token of this server');
    party = fromAccessToken(info, server.issuer, type);
  } else if (type === TOKEN_TYPE_ID_TOKEN) {
    party = ourIdToken(ctx, token, type);
    if (party === undefined) throw invalid('not a valid ID token of this server');
  } else {
    const iss = unverifiedIssuer(token);
    if (iss === undefined) throw invalid('not a JWT with an iss claim');
    if (iss === server.issuer) {
      const info = await server.tokens.inspectAccessToken(token);
      party = info !== undefined && info.format === 'jwt' ? fromAccessToken(info, server.issuer, type) : ourIdToken(ctx, token, type);
      if (party === undefined) throw invalid('not an active JWT of this server');
    } else {
      const issuer = trusted.get(iss);
      if (issuer === undefined) throw invalid(`issuer ${JSON.stringify(iss)} is not trusted`);
      const now = server.clock();
      const verified = await verifyTrustedJwt(token, issuer, now, TOKEN_EXCHANGE_CLOCK_TOLERANCE);
      if (!verified.ok) throw invalid(verified.detail);
      const claims = verified.payload as Record<string, unknown>;
      const { sub, exp, iat } = claims;
      if (typeof sub !== 'string' || sub === '') throw invalid('no sub');
      if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid('no numeric exp');
      if (exp <= now) throw invalid('expired');
      if (iat !== undefined && (typeof iat !== 'number' || iat > now + TOKEN_EXCHANGE_CLOCK_TOLERANCE)) throw invalid('iat in the future');
      const aud = audienceList(claims.aud);
      if (issuer.audience !== undefined && !aud.includes(issuer.audience)) throw invalid(`aud does not include ${issuer.audience}`);
      party = {
        sub,
        scope: typeof claims.scope === 'string' ? claims.scope.split(' ').filter((s) => /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) : [],
        aud,
        claims,
        issuer: issuer.issuer,
        tokenType: type,
        exp,
      };
      if (claims.act !== undefined) party.act = claims.act;
      if (claims.may_act !== undefined) party.mayAct = claims.may_act;
    }
  }
  if (party.act !== undefined && (!isActClaim(party.act) || actDepth(party.act) > MAX_ACT_DEPTH)) throw invalid('malformed or too deep act claim');
  return party;
}

function fromAccessToken(info: AccessTokenInfo, issuer: string, type: string): Party {
  const extra = info.extra ?? {};
  const claims: Record<string, unknown> = {
    ...extra,
    iss: issuer,
    sub: info.sub,
    aud: info.aud,
    exp: info.exp,
    iat: info.iat,
    client_id: info.client_id,
    scope: info.scope,
    ...(info.jti !== undefined ? { jti: info.jti } : {}),
  };
  const party: Party = {
    sub: info.sub,
    client_id: info.client_id,
    scope: info.scope === '' ? [] : info.scope.split(' '),
    aud: audienceList(info.aud),
    claims,
    issuer,
    tokenType: type,
    exp: info.exp,
  };
  if (info.grant_id !== undefined) party.grantId = info.grant_id;
  if (extra.act !== undefined) party.act = extra.act;
  if (extra.may_act !== undefined) party.mayAct = extra.may_act;
  return party;
}

/** One of our ID tokens (OIDC Core §2): signed by our keys with `typ: JWT`, our `iss`, live. */
function ourIdToken(ctx: GrantContext, token: string, type: string): Party | undefined {
  const { server } = ctx;
  if (token.length > 8192) return undefined;
  const payload = server.keys.verify(token, 'JWT');
  if (payload === undefined || payload.iss !== server.issuer) return undefined;
  const { sub, exp, azp } = payload;
  if (typeof sub !== 'string' || sub === '' || typeof exp !== 'number' || exp <= server.clock()) return undefined;
  const aud = audienceList(payload.aud);
  if (aud.length === 0) return undefined;
  const clientId = typeof azp === 'string' ? azp : aud.length === 1 ? aud[0] : undefined;
  const party: Party = { sub, scope: [], aud, claims: payload, issuer: server.issuer, tokenType: type, exp };
  if (clientId !== undefined) party.client_id = clientId;
  return party;
}

/**
 * RFC 8693 §4.4: `may_act` names who may act for the subject. Every claim it has must match the
 * actor (`sub`, `iss`, or any other claim of the actor token); without `iss`, the actor must come from
 * the subject token's issuer. An empty or malformed `may_act` matches nobody.
 */
function mayActMatches(mayAct: unknown, actor: Party, subjectIssuer: string): boolean {
  if (mayAct === null || typeof mayAct !== 'object' || Array.isArray(mayAct)) return false;
  const entries = Object.entries(mayAct as Record<string, unknown>);
  if (entries.length === 0) return false;
  if (!('iss' in mayAct) && actor.issuer !== subjectIssuer) return false;
  return entries.every(([claim, value]) => {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false;
    if (claim === 'sub') return actor.sub === value;
    if (claim === 'iss') return actor.issuer === value;
    if (claim === 'client_id') return actor.client_id === value;
    return actor.claims[claim] === value;
  });
}

function isActClaim(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const act = value as Record<string, unknown>;
  if (typeof act.sub !== 'string' || act.sub === '') return false;
  return act.act === undefined || isActClaim(act.act);
}

function actDepth(act: unknown): number {
  let depth = 0;
  for (let cur = act; cur !== null && typeof cur === 'object' && depth <= MAX_ACT_DEPTH + 1; cur = (cur as Record<string, unknown>).act) depth++;
  return depth;
}

function audienceList(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

function publicParty(party: Party): ExchangeParty {
  const out: ExchangeParty = {
    sub: party.sub,
    scope: [...party.scope],
    aud: [...party.aud],
    claims: structuredClone(party.claims),
    issuer: party.issuer,
    tokenType: party.tokenType,
    exp: party.exp,
  };
  if (party.client_id !== undefined) out.client_id = party.client_id;
  return out;
}
