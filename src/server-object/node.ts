/**
 * node:http for the server object: `requestFromNode`, `handleNodeResponse`, `handleNodeError`.
 * @example
 * ```ts
 * createServer(async (req, res) => {
 *   try {
 *     const oauthResponse = await authorizationServer.respondToAccessTokenRequest(await requestFromNode(req));
 *     handleNodeResponse(res, oauthResponse);
 *   } catch (e) {
 *     handleNodeError(e, res);
 *   }
 * });
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nodeToOAuthRequest } from '../adapters/node-http.js';
import { bodyText } from '../core/form.js';
import type { OAuthRequest as CoreRequest } from '../core/http.js';
import { errorToWire, MAX_BODY_BYTES, OAuthRequest, OAuthResponse, toWire, type ResponseInterface, type WireResponse } from './http.js';

export interface NodeRequestOptions {
  /** Maximum body size read, bytes (default 65,536; a larger body is a 413). */
  maxBodyBytes?: number;
  /** Take the client address from `X-Forwarded-For` (only behind a proxy you run). Default false. */
  trustProxy?: boolean;
}

/** Read a node:http request (its body too, capped) into an {@link OAuthRequest}. */
export async function requestFromNode(req: IncomingMessage, options: NodeRequestOptions = {}): Promise<OAuthRequest> {
  return fromCoreRequest(await nodeToOAuthRequest(req, { maxBodyBytes: options.maxBodyBytes ?? MAX_BODY_BYTES, trustProxy: options.trustProxy === true }));
}

/** The server object's request over a request already read into the core's shape (node:http and fetch). */
export function fromCoreRequest(core: CoreRequest): OAuthRequest {
  const request = new OAuthRequest({
    headers: { ...core.headers },
    query: Object.fromEntries(new URLSearchParams(core.query)),
    body: parsedView(core.headers['content-type'], core.body === undefined ? '' : bodyText(core)),
  });
  return OAuthRequest.withCore(request, {
    method: core.method,
    query: core.query,
    ...(core.body !== undefined ? { body: core.body } : {}),
    ...(core.ip !== undefined ? { ip: core.ip } : {}),
  });
}

/** Write a server-object response to a node:http response. */
export function handleNodeResponse(res: ServerResponse, oauthResponse: OAuthResponse | ResponseInterface): void {
  writeNode(res, toWire(oauthResponse));
}

/** Write what an error must look like to the client (see `errorToWire`); unexpected errors become a bare 500. */
export function handleNodeError(e: unknown, res: ServerResponse): void {
  writeNode(res, errorToWire(e));
}

/** A response as the seed's `responseFromExpress` built it: the headers already set. */
export function responseFromNode(res: ServerResponse): OAuthResponse {
  return new OAuthResponse({ headers: res.getHeaders() as Record<string, unknown> });
}

/** @internal also used by the Express adapter (an Express response is a node:http response). */
export function writeNode(res: ServerResponse, wire: WireResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = wire.status;
  for (const [k, v] of Object.entries(wire.headers)) res.setHeader(k, v);
  if (wire.body === '') {
    res.end();
    return;
  }
  res.setHeader('content-length', Buffer.byteLength(wire.body));
  res.end(wire.body);
}

/** @internal the parsed `body` view of a form or JSON body (what the seed's request objects show). */
export function parsedView(contentType: string | undefined, text: string): Record<string, unknown> {
  const type = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (type === 'application/json') {
    try {
      const parsed: unknown = JSON.parse(text);
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
  return {};
}
