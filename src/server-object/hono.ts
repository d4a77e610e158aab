/**
 * Hono for the server object: `requestFromHono` (async), `handleHonoResponse`, `handleHonoError`.
 * (The seed reached Hono through its vanilla adapter; that works here too: `./vanilla.ts`.)
 * @example
 * ```ts
 * app.post('/token', async (c) => {
 *   try {
 *     return handleHonoResponse(c, await authorizationServer.respondToAccessTokenRequest(await requestFromHono(c)));
 *   } catch (e) {
 *     return handleHonoError(e, c);
 *   }
 * });
 * ```
 */
import type { Context } from 'hono';
import { errorToWire, fromCoreResponse, OAuthRequest, type OAuthResponse, type ResponseInterface } from './http.js';
import { requestFromVanilla, responseToVanilla } from './vanilla.js';

/** Read the request of a Hono context. A body Hono already parsed (`c.req.parseBody()`) is used. */
export async function requestFromHono(c: Context, options: { maxBodyBytes?: number } = {}): Promise<OAuthRequest> {
  if (!c.req.raw.bodyUsed) return requestFromVanilla(c.req.raw, options);
  // The body was consumed by Hono: use its cached parse (form or JSON).
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  const parsed = type.startsWith('application/json') ? ((await c.req.json()) as Record<string, unknown>) : ((await c.req.parseBody()) as Record<string, unknown>);
  const url = new URL(c.req.url);
  const headers: Record<string, string> = {};
  c.req.raw.headers.forEach((v, k) => {
    headers[k] = v;
  });
  const request = new OAuthRequest({ headers, query: Object.fromEntries(url.searchParams), body: parsed });
  return OAuthRequest.withCore(request, { method: c.req.method, query: url.search.slice(1), body: parsed });
}

/** The `Response` to return from a Hono handler. */
export function handleHonoResponse(_c: Context, oauthResponse: OAuthResponse | ResponseInterface): Response {
  return responseToVanilla(oauthResponse);
}

/** The `Response` of a caught error (see `handleExpressError`). */
export function handleHonoError(e: unknown, _c: Context): Response {
  return responseToVanilla(fromCoreResponse(errorToWire(e)));
}
