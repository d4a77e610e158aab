import type { IncomingMessage, ServerResponse } from 'node:http';
import { OAuthError, toOAuthError } from '../core/errors.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { errorResponse } from '../endpoints/respond.js';
import type { Portcullis } from '../portcullis-types.js';

export interface NodeListenerOptions {
  /** Take the client address from `X-Forwarded-For` (only behind a proxy you run). Default false. */
  trustProxy?: boolean;
  /** Maximum body size read from the socket, bytes. Default 65,536. */
  maxBodyBytes?: number;
  /** Called for errors the adapter itself meets (a socket that fails mid-request). */
  onError?: (err: unknown) => void;
}

/**
 * A `node:http` request listener serving the core.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * createServer(toNodeListener(portcullis)).listen(3000, '127.0.0.1');
 * ```
 */
export function toNodeListener(portcullis: Portcullis, options: NodeListenerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  return (req, res) => {
    nodeToOAuthRequest(req, { maxBodyBytes, trustProxy: options.trustProxy === true })
      .then(
        (oauthReq) => portcullis.handle(oauthReq),
        (err: unknown) => {
          const response = errorResponse(toOAuthError(err));
          // The rest of an oversized body is not read: close the connection after answering.
          response.headers.connection = 'close';
          return response;
        },
      )
      .then((response) => writeNodeResponse(req, res, response))
      .catch((err: unknown) => {
        options.onError?.(err);
        if (!res.headersSent) writeNodeResponse(req, res, errorResponse(toOAuthError(err)));
        else res.destroy();
      });
  };
}

/** Read a node:http request into the core's shape, refusing bodies over `maxBodyBytes` early. */
export function nodeToOAuthRequest(req: IncomingMessage, options: { maxBodyBytes: number; trustProxy: boolean }): Promise<OAuthRequest> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers: Record<string, string | undefined> = Object.create(null);
  const raw = req.headers;
  for (const key in raw) {
    const value = raw[key];
    headers[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  const oauthReq: OAuthRequest = {
    method: (req.method ?? 'GET').toUpperCase(),
    path: q === -1 ? url : url.slice(0, q),
    query: q === -1 ? '' : url.slice(q + 1),
    headers,
  };
  const forwarded = options.trustProxy ? headers['x-forwarded-for']?.split(',', 1)[0]?.trim() : undefined;
  const ip = forwarded ?? req.socket.remoteAddress;
  if (ip !== undefined) oauthReq.ip = ip;

  if (oauthReq.method === 'GET' || oauthReq.method === 'HEAD') {
    req.resume();
    return Promise.resolve(oauthReq);
  }
  const declared = headers['content-length'];
  if (declared !== undefined && Number(declared) > options.maxBodyBytes) {
    return Promise.reject(new OAuthError('invalid_request', 'The request body is too large', { status: 413 }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > options.maxBodyBytes) {
        failed = true;
        req.pause();
        reject(new OAuthError('invalid_request', 'The request body is too large', { status: 413 }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (failed) return;
      if (size > 0) oauthReq.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      resolve(oauthReq);
    });
    req.on('error', (err) => {
      if (!failed) reject(new OAuthError('invalid_request', 'The request body could not be read', { cause: err }));
      failed = true;
    });
  });
}

function writeNodeResponse(req: IncomingMessage, res: ServerResponse, response: OAuthResponse): void {
  res.statusCode = response.status;
  for (const key in response.headers) res.setHeader(key, response.headers[key]!);
  if (response.setCookies !== undefined && response.setCookies.length > 0) res.setHeader('set-cookie', response.setCookies);
  if (req.method === 'HEAD' || response.body === '') {
    res.end();
    return;
  }
  res.setHeader('content-length', Buffer.byteLength(response.body));
  res.end(response.body);
  if (response.headers.connection === 'close') res.once('finish', () => req.socket.destroySoon?.());
}
