/**
 * OAuth 2.0 error codes as constants, named as the flow-builder seed package names them, for the
 * error objects a `generateToken` handler returns: `{ error: OAuth2ErrorCode.INVALID_GRANT }`.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */

/** RFC 6749 §4.1.2.1 and §5.2. */
export const StandardOAuth2ErrorCode = Object.freeze({
  INVALID_REQUEST: 'invalid_request',
  UNAUTHORIZED_CLIENT: 'unauthorized_client',
  ACCESS_DENIED: 'access_denied',
  UNSUPPORTED_RESPONSE_TYPE: 'unsupported_response_type',
  INVALID_SCOPE: 'invalid_scope',
  SERVER_ERROR: 'server_error',
  TEMPORARILY_UNAVAILABLE: 'temporarily_unavailable',
  INVALID_CLIENT: 'invalid_client',
  INVALID_GRANT: 'invalid_grant',
  UNSUPPORTED_GRANT_TYPE: 'unsupported_grant_type',
} as const);

/** OpenID Connect and common extensions (sent with status 400 from the token endpoint). */
export const ExtendedOAuth2ErrorCode = Object.freeze({
  LOGIN_REQUIRED: 'login_required',
  INTERACTION_REQUIRED: 'interaction_required',
  CONSENT_REQUIRED: 'consent_required',
  ACCOUNT_LOCKED: 'account_locked',
  PASSWORD_EXPIRED: 'password_expired',
  INVALID_TARGET: 'invalid_target',
  UNSUPPORTED_TOKEN_TYPE: 'unsupported_token_type',
} as const);

/** RFC 8628 §3.5: answers to device-code polling. */
export const DeviceFlowOAuth2ErrorCode = Object.freeze({
  ACCESS_DENIED: 'access_denied',
  AUTHORIZATION_PENDING: 'authorization_pending',
  SLOW_DOWN: 'slow_down',
  EXPIRED_TOKEN: 'expired_token',
} as const);

/** RFC 6750 §3.1: resource-server errors (not token-endpoint errors). */
export const OAuth2TokenErrorCode = Object.freeze({
  INVALID_TOKEN: 'invalid_token',
  INSUFFICIENT_SCOPE: 'insufficient_scope',
} as const);

/** Every token-endpoint error code: standard, extended and device-flow ones. */
export const OAuth2ErrorCode = Object.freeze({ ...StandardOAuth2ErrorCode, ...ExtendedOAuth2ErrorCode, ...DeviceFlowOAuth2ErrorCode } as const);

/** Every error code above, resource-server ones included. */
export const AllOAuth2ErrorCode = Object.freeze({ ...OAuth2ErrorCode, ...OAuth2TokenErrorCode } as const);

export type StandardOAuth2ErrorCode = (typeof StandardOAuth2ErrorCode)[keyof typeof StandardOAuth2ErrorCode];
export type ExtendedOAuth2ErrorCode = (typeof ExtendedOAuth2ErrorCode)[keyof typeof ExtendedOAuth2ErrorCode];
export type DeviceFlowOAuth2ErrorCode = (typeof DeviceFlowOAuth2ErrorCode)[keyof typeof DeviceFlowOAuth2ErrorCode];
export type OAuth2TokenErrorCode = (typeof OAuth2TokenErrorCode)[keyof typeof OAuth2TokenErrorCode];
export type OAuth2ErrorCode = (typeof OAuth2ErrorCode)[keyof typeof OAuth2ErrorCode];
export type AllOAuth2ErrorCode = (typeof AllOAuth2ErrorCode)[keyof typeof AllOAuth2ErrorCode];

/**
 * An error a `generateToken` handler returns. Sent with its status: `invalid_client` → 401 with
 * `WWW-Authenticate: Basic`, `server_error` → 500, `temporarily_unavailable` → 503, any other → 400.
 * The description must use the RFC 6749 characters (others become `?`).
 */
export interface OAuth2ErrorBody {
  error: OAuth2ErrorCode;
  error_description?: string;
  error_uri?: string;
}
