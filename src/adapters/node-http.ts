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
  /**
   * Hold each finished response until the end of the event loop's poll phase (`setImmediate`) and
   * write all of them together, instead of one by one as each is ready. Default false.
   *
   * Under load, one turn of the loop reads several requests; written one by one, each response
   * wakes the peer (a load balancer, a proxy on the same machine, a client) separately, and on a
   * virtual machine each wake-up of an idle CPU costs an inter-processor interrupt the server pays
   * in kernel time. Written together, the first wakes the peer and the rest find it awake. A
   * response waits at most for the other requests of its turn; with one request per turn it goes
   * out in the same turn. The ready-to-run server turns it on (see docs/performance.md).
   */
  coalesceWrites?: boolean;
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
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    options.onError?.(err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    try {
      writeNodeResponse(req, res, errorResponse(toOAuthError(err)));
    } catch {
      res.destroy();
    }
  };
  const write = options.coalesceWrites === true ? coalescedWriter(fail) : writeNodeResponse;
  return (req, res) => {
    nodeToOAuthRequest(req, { maxBodyBytes, trustProxy: options.trustProxy === true })
      .then(
        (oauthReq) => portcullis.handle(oauthReq),
        // The rest of an oversized body is not read: close the connection after answering.
        (err: unknown) => unreadableRequestResponse(err),
      )
      .then((response) => write(req, res, response))
      .catch((err: unknown) => fail(req, res, err));
  };
}

/**
 * A `writeNodeResponse` that queues the response and writes the queue at the end of the poll phase
 * (one `setImmediate` per batch), in order. A write that throws is answered by `fail` and does not
 * stop the others.
 */
function coalescedWriter(
  fail: (req: IncomingMessage, res: ServerResponse, err: unknown) => void,
): (req: IncomingMessage, res: ServerResponse, response: OAuthResponse) => void {
  let queue: Array<[IncomingMessage, ServerResponse, OAuthResponse]> = [];
  const flush = (): void => {
    const batch = queue;
    queue = [];
    for (const [req, res, response] of batch) {
      try {
        writeNodeResponse(req, res, response);
      } catch (err) {
        fail(req, res, err);
      }
    }
  };
  return (req, res, response) => {
    if (queue.length === 0) setImmediate(flush);
    queue.push([req, res, response]);
  };
}

/** Read a node:http request into the core's shape, refusing bodies over `maxBodyBytes` early. */
export function nodeToOAuthRequest(req: IncomingMessage, options: { maxBodyBytes: number; trustProxy: boolean }): Promise<OAuthRequest> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers = nodeHeaders(req);
  const oauthReq: OAuthRequest = {
    method: (req.method ?? 'GET').toUpperCase(),
    path: q === -1 ? url : url.slice(0, q),
    query: q === -1 ? '' : url.slice(q + 1),
    headers,
  };
  const forwarded = options.trustProxy ? headers['x-forwarded-for']?.split(',', 1)[0]?.trim() : undefined;
  const ip = forwarded ?? req.socket.remoteAddress;
  if (ip !== undefined) oauthReq.ip = ip;
  return readNodeBody(req, options.maxBodyBytes).then((body) => {
    if (body !== undefined) oauthReq.body = body;
    return oauthReq;
  });
}

/** The headers of a node:http request: names in lower case, repeated values joined with `, `. */
export function nodeHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = Object.create(null);
  const raw = req.headers;
  for (const key in raw) {
    const value = raw[key];
    headers[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/**
 * Read the body of a node:http request: `undefined` for GET and HEAD, for an empty body, or when
 * the stream was already consumed (by a body parser). More than `maxBodyBytes` (declared or
 * received) rejects with a 413 `OAuthError` without reading the rest.
 */
export function readNodeBody(req: IncomingMessage, maxBodyBytes: number): Promise<Uint8Array | undefined> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (method === 'GET' || method === 'HEAD') {
    if (!req.readableEnded) req.resume();
    return Promise.resolve(undefined);
  }
  if (req.readableEnded) return Promise.resolve(undefined);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    return Promise.reject(new OAuthError('invalid_request', 'The request body is too large', { status: 413 }));
  }
  return readStreamCapped(req, maxBodyBytes);
}

/**
 * Read a byte stream to its end, refusing (413 `OAuthError`) more than `maxBytes`: reading stops
 * there and the rest is left unread. Resolves `undefined` for an empty stream.
 */
export function readStreamCapped(stream: NodeJS.ReadableStream, maxBytes: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    stream.on('data', (chunk: Buffer | string) => {
      if (failed) return;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > maxBytes) {
        failed = true;
        stream.pause();
        reject(new OAuthError('invalid_request', 'The request body is too large', { status: 413 }));
        return;
      }
      chunks.push(bytes);
    });
    stream.on('end', () => {
      if (failed) return;
      resolve(size === 0 ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    stream.on('error', (err) => {
      if (!failed) reject(new OAuthError('invalid_request', 'The request body could not be read', { cause: err }));
      failed = true;
    });
  });
}

/**
 * The answer to a request whose body could not be read (too large, broken stream): the OAuth error,
 * and `Connection: close` because the rest of the body is left unread.
 */
export function unreadableRequestResponse(err: unknown): OAuthResponse {
  const response = errorResponse(toOAuthError(err));
  response.headers.connection = 'close';
  return response;
}

/**
 * Write a core response to a node:http (or Express) response: every header, one `Set-Cookie` line
 * per cookie, no body for HEAD, and the connection closed after a `Connection: close` answer.
 */
export function writeNodeResponse(req: IncomingMessage, res: ServerResponse, response: OAuthResponse): void {
  // One writeHead with the whole block (headers set on `res` before, e.g. by a wrapper, are kept).
  const headers: Record<string, string | string[] | number> = {};
  for (const key in response.headers) headers[key] = response.headers[key]!;
  if (response.setCookies !== undefined && response.setCookies.length > 0) headers['set-cookie'] = response.setCookies;
  const withBody = req.method !== 'HEAD' && response.body !== '';
  if (withBody) headers['content-length'] = Buffer.byteLength(response.body);
  res.writeHead(response.status, headers);
  if (withBody) res.end(response.body);
  else res.end();
  if (response.headers.connection === 'close') res.once('finish', () => req.socket.destroySoon?.());
}
