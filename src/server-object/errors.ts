/**
 * Errors of the server object, shaped like the seed package's (`OAuthException`, `ErrorType`,
 * `isOAuthError`), so route handlers that catch them keep working. An exception thrown by the server
 * object carries the exact {@link OAuthResponse} the client must see (`response`): the RFC 6749 §5.2
 * JSON with its status and headers (`WWW-Authenticate` on 401), a redirect to the client with
 * `error` and `state`, or an error page. The framework adapters' `handle<Framework>Error` write it.
 */
import { OAuthError, type OAuthErrorCode } from '../core/errors.js';
import { errorResponse } from '../endpoints/respond.js';
import type { OAuthResponse } from './http.js';

/** Error codes (RFC 6749 §4.1.2.1, §5.2; RFC 7009; RFC 6750), as the seed's `ErrorType` enum values. */
export const ErrorType = Object.freeze({
  InvalidRequest: 'invalid_request',
  InvalidClient: 'invalid_client',
  InvalidGrant: 'invalid_grant',
  InvalidScope: 'invalid_scope',
  UnauthorizedClient: 'unauthorized_client',
  UnsupportedGrantType: 'unsupported_grant_type',
  UnsupportedResponseType: 'unsupported_response_type',
  UnsupportedTokenType: 'unsupported_token_type',
  AccessDenied: 'access_denied',
  InvalidTarget: 'invalid_target',
  InvalidToken: 'invalid_token',
  InsufficientScope: 'insufficient_scope',
  ServerError: 'server_error',
  TemporarilyUnavailable: 'temporarily_unavailable',
  /** The seed's non-standard code; it reaches clients as `invalid_scope`. */
  UnauthorizedScope: 'unauthorized_scope',
} as const);
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

const MARKER = Symbol.for('portcullis.server-object.oauth-exception');

/**
 * An OAuth error. Same fields as the seed's: `error` (a human message, also `message`), `errorType`
 * (the RFC code), `errorDescription`, `status`. Recognised across bundles by {@link isOAuthError}
 * (a marker, not `instanceof`).
 */
export class OAuthException extends Error {
  readonly errorType: ErrorType;
  readonly errorDescription?: string;
  readonly errorUri?: string;
  readonly status: number;
  /** The response the client must see; built from the fields when absent. */
  readonly response?: OAuthResponse;
  readonly [MARKER] = true;

  constructor(error: string, errorType: ErrorType, errorDescription?: string, errorUri?: string, status = 400, response?: OAuthResponse) {
    super(error);
    this.name = 'OAuthException';
    this.errorType = errorType;
    if (errorDescription !== undefined) this.errorDescription = errorDescription;
    if (errorUri !== undefined) this.errorUri = errorUri;
    this.status = status;
    if (response !== undefined) this.response = response;
  }

  /** The seed's `error` field: the human-readable message. */
  get error(): string {
    return this.message;
  }

  static invalidParameter(parameter: string, errorDescription?: string): OAuthException {
    return new OAuthException(`The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed: ${parameter}`, ErrorType.InvalidRequest, errorDescription ?? `Check the \`${parameter}\` parameter`);
  }
  static badRequest(message: string): OAuthException {
    return new OAuthException(message, ErrorType.InvalidRequest, message);
  }
  static invalidClient(errorDescription?: string): OAuthException {
    return new OAuthException('Client authentication failed', ErrorType.InvalidClient, errorDescription, undefined, 401);
  }
  static invalidGrant(errorDescription?: string): OAuthException {
    return new OAuthException('The provided authorization grant is invalid, expired or revoked', ErrorType.InvalidGrant, errorDescription);
  }
  static invalidScope(scope?: string): OAuthException {
    return new OAuthException('The requested scope is invalid, unknown, or malformed', ErrorType.InvalidScope, scope === undefined ? undefined : `Check the \`${scope}\` scope(s)`);
  }
  static unauthorizedScope(scope?: string): OAuthException {
    return new OAuthException('The requested scope is not allowed for this client', ErrorType.UnauthorizedScope, scope === undefined ? undefined : `Check the \`${scope}\` scope(s)`);
  }
  static unauthorizedClient(): OAuthException {
    return new OAuthException('The client is not authorized to use this grant type', ErrorType.UnauthorizedClient);
  }
  static unsupportedGrantType(): OAuthException {
    return new OAuthException('The authorization grant type is not supported by the authorization server', ErrorType.UnsupportedGrantType);
  }
  static unsupportedTokenType(): OAuthException {
    return new OAuthException('The token type is not supported', ErrorType.UnsupportedTokenType);
  }
  static accessDenied(errorDescription?: string): OAuthException {
    return new OAuthException('The resource owner or authorization server denied the request', ErrorType.AccessDenied, errorDescription);
  }
  static internalServerError(): OAuthException {
    return new OAuthException('The server encountered an unexpected error', ErrorType.ServerError, undefined, undefined, 500);
  }
}

/**
 * Whether `e` is an {@link OAuthException}: from any copy of this module, or the seed package's own
 * (its `oauth` marker), so exceptions thrown by repositories written for the seed keep their meaning.
 */
export function isOAuthError(e: unknown): e is OAuthException {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<PropertyKey, unknown>;
  return o[MARKER] === true || (o.oauth === true && typeof o.errorType === 'string' && typeof o.status === 'number');
}

/** Codes the core may send at the token endpoint; anything else from app code becomes one of these. */
const CORE_CODES: readonly string[] = [
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope',
  'unsupported_token_type', 'invalid_target', 'server_error', 'temporarily_unavailable', 'access_denied',
];

/**
 * An exception thrown by app code (a repository, `finalize`, a hook) as a core error: RFC codes pass,
 * the seed's `unauthorized_scope` becomes `invalid_scope`, anything else `invalid_request`.
 * Descriptions of app exceptions are kept (apps write them for clients); the seed's `error` message is not.
 */
export function coreErrorFromException(e: OAuthException): OAuthError {
  const code = (e.errorType === 'unauthorized_scope' ? 'invalid_scope' : CORE_CODES.includes(e.errorType) ? e.errorType : 'invalid_request') as OAuthErrorCode;
  return new OAuthError(code, e.errorDescription ?? e.message, { detail: `OAuthException from app code: ${e.message}` });
}

/** The wire response of a seed-style exception built by app code (RFC 6749 §5.2 JSON). */
export function responseOfException(e: OAuthException): { status: number; headers: Record<string, string>; body: string } {
  const core = coreErrorFromException(e);
  const res = errorResponse(new OAuthError(core.error, core.description, { status: e.status, ...(e.status === 401 ? { headers: { 'www-authenticate': 'Basic' } } : {}) }));
  return res;
}
