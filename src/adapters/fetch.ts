import { OAuthError } from '../core/errors.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import type { Portcullis } from '../portcullis-types.js';

/** Convert a WHATWG Request into the core's shape, reading at most `maxBodyBytes` of body. */
export async function fetchToOAuthRequest(request: Request, options: { maxBodyBytes: number; ip?: string }): Promise<OAuthRequest> {
  const url = new URL(request.url);
  const headers: Record<string, string> = Object.create(null);
  request.headers.forEach((value, key) => {
    headers[key] = value;
  });
  const req: OAuthRequest = { method: request.method.toUpperCase(), path: url.pathname, query: url.search.slice(1), headers };
  if (options.ip !== undefined) req.ip = options.ip;
  if (request.body !== null && request.method !== 'GET' && request.method !== 'HEAD') {
    // A declared length over the cap is refused before a byte is read.
    const declared = headers['content-length'];
    if (declared !== undefined && Number(declared) > options.maxBodyBytes) {
      await request.body.cancel().catch(() => {});
      throw new OAuthError('invalid_request', 'The request body is too large', { status: 413 });
    }
    req.body = await readCapped(request.body, options.maxBodyBytes);
  }
  return req;
}

/** Read a body stream, refusing (413) more than `max` bytes without reading the rest. */
export async function readCapped(stream: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new OAuthError('invalid_request', 'The request body is too large', { status: 413 });
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

export function oauthResponseToFetch(res: OAuthResponse): Response {
  const body = res.status === 204 || res.status === 304 || res.body === '' ? null : res.body;
  const headers = new Headers(res.headers);
  for (const cookie of res.setCookies ?? []) headers.append('set-cookie', cookie);
  return new Response(body, { status: res.status, headers });
}

/**
 * A fetch handler `(request: Request) => Promise<Response>` for Hono, Bun, Deno and workers.
 * @example
 * ```ts
 * Bun.serve({ port: 3000, fetch: toFetchHandler(portcullis) });
 * ```
 */
export function toFetchHandler(portcullis: Portcullis): (request: Request) => Promise<Response> {
  return (request) => portcullis.fetch(request);
}
