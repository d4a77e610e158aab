/**
 * The plain request/response shape the core speaks. Adapters convert a framework's
 * request into an {@link OAuthRequest} and write an {@link OAuthResponse} back.
 */
export interface OAuthRequest {
  /** Upper-case HTTP method. */
  method: string;
  /** Path without the query string, as seen by the core (mount prefixes already removed). */
  path: string;
  /** Raw query string without the leading `?` (may be empty). */
  query: string;
  /** Header names in lower case. A repeated header is joined with `, ` as node:http does. */
  headers: Readonly<Record<string, string | undefined>>;
  /**
   * The body: raw bytes or text as received, or `undefined` when there is none. Adapters whose
   * framework already parsed a form body pass the parsed object (string values only).
   */
  body?: string | Uint8Array | Readonly<Record<string, unknown>>;
  /** Remote address of the peer, for throttling. */
  ip?: string;
}

export interface OAuthResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** `Set-Cookie` values (kept apart: one header each). */
  setCookies?: string[];
}

export const NO_STORE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  pragma: 'no-cache',
});

/** A JSON response that must never be cached (token, error, introspection, revocation). */
export function noStoreJson(status: number, body: unknown, extra?: Record<string, string>): OAuthResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', pragma: 'no-cache' };
  if (extra !== undefined) Object.assign(headers, extra);
  return { status, headers, body: JSON.stringify(body) };
}

/** A public, cacheable JSON document (discovery, JWKS). */
export function publicJson(body: unknown, maxAgeSeconds: number, contentType = 'application/json; charset=utf-8'): OAuthResponse {
  return {
    status: 200,
    headers: {
      'content-type': contentType,
      'cache-control': `public, max-age=${maxAgeSeconds}`,
      'access-control-allow-origin': '*',
    },
    body: JSON.stringify(body),
  };
}
