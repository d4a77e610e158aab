/**
 * Hapi 21 for the server object: `requestFromHapi`, `handleHapiResponse`, `handleHapiError`, named
 * like the other frameworks' trios.
 *
 * Give the OAuth routes the raw body, so the core applies its own form rules (one value per
 * parameter, byte cap): `options: { payload: { parse: false, output: 'data' } }`. A payload hapi
 * already parsed into an object is used as it is.
 * @example
 * ```ts
 * server.route({
 *   method: 'POST',
 *   path: '/token',
 *   options: { payload: { parse: false, output: 'data' } },
 *   handler: async (req, h) => {
 *     try {
 *       return handleHapiResponse(h, await authorizationServer.respondToAccessTokenRequest(requestFromHapi(req)));
 *     } catch (e) {
 *       return handleHapiError(e, h);
 *     }
 *   },
 * });
 * ```
 */
import type { Request, ResponseObject, ResponseToolkit } from '@hapi/hapi';
import { errorToWire, OAuthRequest, OAuthResponse, rawQueryOf, toWire, type ResponseInterface, type WireResponse } from './http.js';
import { parsedView } from './node.js';

export function requestFromHapi(req: Request): OAuthRequest {
  const payload = req.payload as unknown;
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined;
  const parsed = payload !== null && typeof payload === 'object' && !Buffer.isBuffer(payload) ? (payload as Record<string, unknown>) : undefined;
  const request = new OAuthRequest({
    headers: { ...req.headers },
    query: { ...(req.query as Record<string, unknown>) },
    body: parsed ?? (text !== undefined ? parsedView(req.headers['content-type'] as string | undefined, text) : {}),
  });
  return OAuthRequest.withCore(request, {
    method: req.method.toUpperCase(),
    query: rawQueryOf(req.url.search),
    ...(text !== undefined ? { body: text } : parsed !== undefined ? { body: parsed } : {}),
    ...(req.info.remoteAddress !== undefined ? { ip: req.info.remoteAddress } : {}),
  });
}

/** Send a server-object response through hapi's toolkit. Return what it returns from the handler. */
export function handleHapiResponse(h: ResponseToolkit, response: OAuthResponse | ResponseInterface): ResponseObject {
  return send(h, toWire(response));
}

/** Send what a caught error must look like: its OAuth response, or a bare 500 with no text. */
export function handleHapiError(e: unknown, h: ResponseToolkit): ResponseObject {
  return send(h, errorToWire(e));
}

function send(h: ResponseToolkit, wire: WireResponse): ResponseObject {
  const res = (wire.body === '' ? h.response() : h.response(wire.body)).code(wire.status);
  for (const [name, value] of Object.entries(wire.headers)) res.header(name, value);
  return res;
}
