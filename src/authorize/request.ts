import { OAuthError, type OAuthErrorCode } from '../core/errors.js';

/**
 * An authorization request that passed validation: serialisable (plain JSON), so it can wait in
 * storage while the user signs in and consents, or be handed to an app's own login/consent UI and
 * completed later with {@link AuthorizationDecision}.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 */
export interface AuthorizationRequest {
  /** Interaction id (also the path segment of the hosted pages). */
  id: string;
  client_id: string;
  client_name?: string;
  redirect_uri: string;
  /** Whether the client sent redirect_uri (then the token request must repeat it). */
  redirect_uri_sent: boolean;
  response_type: 'code';
  response_mode: 'query' | 'form_post';
  /** Validated, de-duplicated scope tokens. */
  scope: string[];
  state?: string;
  nonce?: string;
  code_challenge?: string;
  code_challenge_method?: 'S256' | 'plain';
  /** OIDC `prompt` values. */
  prompt: string[];
  max_age?: number;
  login_hint?: string;
  acr_values?: string[];
  ui_locales?: string[];
  /** RFC 8707 resource indicators (checked: absolute URIs, allowed for the client), de-duplicated. */
  resource?: string[];
  /** OIDC `claims` parameter: requested claim names per target. */
  claims?: { userinfo?: Record<string, unknown>; id_token?: Record<string, unknown> };
  created_at: number;
  expires_at: number;
  /** Set when the user has authenticated for this request. */
  user?: { id: string; auth_time: number; amr: string[]; session_id?: string };
}

/** How an app (or the hosted pages) finishes an authorization request. */
export interface AuthorizationDecision {
  /** The authenticated user. Required when approving. */
  user?: { id: string; auth_time?: number; amr?: string[]; session_id?: string };
  /** True to issue a code; false to answer `access_denied`. */
  isAuthorizationApproved: boolean;
  /** Narrow the scope the user approved (must be a subset of the request's). */
  scope?: string[];
}

/** An error at the authorization endpoint: redirected to the client once its redirect URI is trusted. */
export type AuthorizeErrorCode =
  | OAuthErrorCode
  | 'unsupported_response_type'
  | 'access_denied'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'account_selection_required'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'registration_not_supported';

export class AuthorizeError extends OAuthError {
  readonly authorizeError: AuthorizeErrorCode;
  /** Where to send the error: only set once client and redirect URI were validated. */
  readonly redirect?: { uri: string; mode: 'query' | 'form_post'; state?: string };

  constructor(error: AuthorizeErrorCode, description: string, redirect?: AuthorizeError['redirect']) {
    super(isTokenError(error) ? error : 'invalid_request', description);
    this.authorizeError = error;
    if (redirect !== undefined) this.redirect = redirect;
  }
}

function isTokenError(code: AuthorizeErrorCode): code is OAuthErrorCode {
  return ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'unsupported_token_type', 'invalid_target', 'server_error', 'temporarily_unavailable'].includes(code);
}

/** RFC 7636 §4.1: code_verifier / code_challenge = 43*128unreserved. */
export const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

export const PROMPT_VALUES = ['none', 'login', 'consent', 'select_account'] as const;

/** Longest accepted state / nonce (a 384-character value must work; OIDC conformance sends long ones). */
export const MAX_STATE_LENGTH = 2048;
