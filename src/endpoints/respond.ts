import { OAuthError } from '../core/errors.js';
import { noStoreJson, type OAuthResponse } from '../core/http.js';

/** The RFC 6749 §5.2 error response of an OAuthError, with its headers and no-store. */
export function errorResponse(err: OAuthError): OAuthResponse {
  return noStoreJson(err.status, err.toJSON(), err.headers);
}

export { OAuthError };
