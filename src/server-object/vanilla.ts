/**
 * The Fetch API (`Request` / `Response`) for the server object, as the seed's `/vanilla` entry:
 * `requestFromVanilla` (async), `responseToVanilla` (also `handleVanillaResponse`),
 * `handleVanillaError` (→ an `OAuthResponse`, as in the seed: `responseToVanilla(handleVanillaError(e))`),
 * `responseFromVanilla`. Works with Hono, Bun, Deno, workers, Next.js route handlers…
 */
import { fetchToOAuthRequest } from '../adapters/fetch.js';
import { errorToWire, fromCoreResponse, MAX_BODY_BYTES, OAuthRequest, OAuthResponse, toWire, type ResponseInterface } from './http.js';
import { fromCoreRequest } from './node.js';

/** Read a fetch `Request` (its body too, capped) into an {@link OAuthRequest}. */
export async function requestFromVanilla(req: Request, options: { maxBodyBytes?: number; ip?: string } = {}): Promise<OAuthRequest> {
  return fromCoreRequest(await fetchToOAuthRequest(req, { maxBodyBytes: options.maxBodyBytes ?? MAX_BODY_BYTES, ...(options.ip !== undefined ? { ip: options.ip } : {}) }));
}

/** A fetch `Response` of a server-object response, byte for byte. */
export function responseToVanilla(oauthResponse: OAuthResponse | ResponseInterface): Response {
  const wire = toWire(oauthResponse);
  const empty = wire.body === '' || wire.status === 204 || wire.status === 304;
  return new Response(empty ? null : wire.body, { status: wire.status, headers: wire.headers });
}

/** The same as {@link responseToVanilla}, named like the other adapters. */
export const handleVanillaResponse = responseToVanilla;

/** What a caught error must look like, as an `OAuthResponse` (send it with `responseToVanilla`). */
export function handleVanillaError(e: unknown): OAuthResponse {
  return fromCoreResponse(errorToWire(e));
}

export function responseFromVanilla(res: Response): OAuthResponse {
  const headers: Record<string, unknown> = {};
  res.headers.forEach((value, key) => {
    headers[key] = value;
  });
  return new OAuthResponse({ headers });
}
