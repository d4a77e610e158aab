/**
 * The one error family of Portcullis. Every error a client can see is an {@link OAuthError}
 * with an RFC `error` code, an HTTP status and a safe description; `detail` is logged, never sent.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'unsupported_token_type'
  | 'invalid_target'
  | 'server_error'
  | 'temporarily_unavailable'
  // RFC 8628 §3.5: device-code polling.
  | 'authorization_pending'
  | 'slow_down'
  | 'access_denied'
  | 'expired_token';

/** Default HTTP status for each error code. */
export const ERROR_STATUS: Readonly<Record<OAuthErrorCode, number>> = Object.freeze({
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  unsupported_token_type: 400,
  invalid_target: 400,
  server_error: 500,
  temporarily_unavailable: 503,
  authorization_pending: 400,
  slow_down: 400,
  access_denied: 400,
  expired_token: 400,
});

export interface OAuthErrorOptions {
  /** Internal detail for logs. Never sent to the client. */
  detail?: string;
  /** Extra response headers (e.g. `WWW-Authenticate`, `Retry-After`). */
  headers?: Record<string, string>;
  /** Override the default status. */
  status?: number;
  cause?: unknown;
}

export class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  readonly status: number;
  readonly description: string;
  readonly detail?: string;
  readonly headers: Record<string, string>;

  constructor(error: OAuthErrorCode, description: string, options: OAuthErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.error = error;
    this.status = options.status ?? ERROR_STATUS[error];
    this.description = sanitizeDescription(description);
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The RFC 6749 §5.2 JSON body. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

/** RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E. */
export function sanitizeDescription(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

/** Raised when storage cannot be reached; becomes 503 `temporarily_unavailable`. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/** Raised for invalid configuration at start-up; names the object and the field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const SERVER_ERROR_DESCRIPTION = 'The server encountered an unexpected error';
export const UNAVAILABLE_DESCRIPTION = 'The service is temporarily unavailable; try again later';

/** Turn anything thrown into a safe OAuthError: known errors pass, the rest lose their text. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof StorageUnavailableError) {
    return new OAuthError('temporarily_unavailable', UNAVAILABLE_DESCRIPTION, {
      detail: err.message,
      headers: { 'retry-after': '5' },
      cause: err,
    });
  }
  return new OAuthError('server_error', SERVER_ERROR_DESCRIPTION, {
    detail: err instanceof Error ? err.stack ?? err.message : String(err),
    cause: err,
  });
}
