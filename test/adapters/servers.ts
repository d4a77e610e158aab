/**
 * Test support: one authorization server mounted under `/oauth` through each adapter, listening on
 * 127.0.0.1 with the issuer `http://127.0.0.1:<port>/oauth`; a tiny node:http ↔ fetch bridge (what
 * @hono/node-server does, which is not installed); and a raw HTTP client that shows every response
 * header line as sent (HEAD, repeated Set-Cookie, a spoofed Host).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Hapi from '@hapi/hapi';
import { portcullisRouter } from '../../src/adapters/express.js';
import { portcullisFastify } from '../../src/adapters/fastify.js';
import { portcullisHono } from '../../src/adapters/hono.js';
import { portcullisHapi } from '../../src/adapters/hapi.js';
import { toNodeListener } from '../../src/adapters/node-http.js';
import { fetchToOAuthRequest, oauthResponseToFetch } from '../../src/adapters/fetch.js';
import { toOAuthError } from '../../src/core/errors.js';
import { errorResponse } from '../../src/endpoints/respond.js';
import type { OAuthRequest } from '../../src/core/http.js';
import type { PortcullisOptions } from '../../src/core/options.js';
import { createPortcullis } from '../../src/provider.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

export const HOST = '127.0.0.1';
export const MOUNT = '/oauth';
export const ADAPTERS = ['node', 'node-coalesced', 'fetch', 'express', 'fastify', 'hono', 'hapi'] as const;
export type AdapterName = (typeof ADAPTERS)[number];

export interface MountOptions {
  /** Let the framework parse form bodies before the adapter (express.urlencoded(), a Hono parseBody middleware). */
  preParse?: boolean;
  /** Wrap the server before mounting (e.g. to record what the core receives). */
  wrap?: (portcullis: Portcullis) => Portcullis;
  /** Called with the framework app before the adapter is mounted (express/hono: extra routes). */
  beforeMount?: (app: unknown) => void;
  /** Express only: where the router is mounted (default /oauth; `/` mounts it at the root). */
  at?: string;
  /** Called with the framework app after the adapter is mounted. */
  afterMount?: (app: unknown, portcullis: Portcullis) => void | Promise<void>;
}

export interface Mounted {
  name: AdapterName;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** http://127.0.0.1:<port>/oauth */
  issuer: string;
  portcullis: Portcullis;
  /** Every request the core received (through `wrap`). */
  seen: OAuthRequest[];
  close(): Promise<void>;
}

/** Record what the core receives. */
export function recording(portcullis: Portcullis, seen: OAuthRequest[]): Portcullis {
  const handle = (req: OAuthRequest) => {
    seen.push(req);
    return portcullis.handle(req);
  };
  return {
    ...portcullis,
    handle,
    // What portcullis.fetch does, through the recording handle.
    async fetch(request) {
      let req: OAuthRequest;
      try {
        req = await fetchToOAuthRequest(request, { maxBodyBytes: 64 * 1024 });
      } catch (err) {
        return oauthResponseToFetch(errorResponse(toOAuthError(err)));
      }
      return oauthResponseToFetch(await handle(req));
    },
  };
}

/**
 * Start `name` on 127.0.0.1:0, mounted under /oauth, with a server created by `setup` for the
 * issuer `http://127.0.0.1:<port>/oauth`.
 */
export async function mount(name: AdapterName, setup: (issuer: string) => Promise<Portcullis>, options: MountOptions = {}): Promise<Mounted> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const origin = `http://${HOST}:${(server.address() as AddressInfo).port}`;
  const issuer = origin + MOUNT;
  const real = await setup(issuer);
  const seen: OAuthRequest[] = [];
  const portcullis = (options.wrap ?? ((p) => p))(recording(real, seen));
  let stopFramework: () => Promise<void> = async () => {};

  switch (name) {
    case 'node':
      server.on('request', toNodeListener(portcullis));
      break;
    case 'node-coalesced':
      // What the ready-to-run server uses: responses written together at the end of the poll phase.
      server.on('request', toNodeListener(portcullis, { coalesceWrites: true }));
      break;
    case 'fetch':
      server.on('request', fetchBridge((request) => portcullis.fetch(request)));
      break;
    case 'express': {
      const app = express();
      options.beforeMount?.(app);
      if (options.preParse === true) app.use(express.urlencoded({ extended: false }));
      app.use(options.at ?? MOUNT, portcullisRouter(portcullis));
      await options.afterMount?.(app, real);
      server.on('request', app);
      break;
    }
    case 'fastify': {
      let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
      const app = Fastify({
        serverFactory: (h) => {
          handler = h;
          return createServer();
        },
      });
      options.beforeMount?.(app);
      await app.register(portcullisFastify, { prefix: MOUNT, portcullis });
      await options.afterMount?.(app, real);
      await app.ready();
      server.on('request', (req, res) => handler!(req, res));
      stopFramework = () => app.close();
      break;
    }
    case 'hono': {
      const app = new Hono();
      options.beforeMount?.(app);
      if (options.preParse === true) {
        app.use('*', async (c, next) => {
          if ((c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) await c.req.parseBody();
          await next();
        });
      }
      app.route(MOUNT, portcullisHono(portcullis, { clientIp: (c) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress }));
      await options.afterMount?.(app, real);
      server.on('request', fetchBridge((request, incoming) => app.fetch(request, { incoming })));
      break;
    }
    case 'hapi': {
      const app = Hapi.server({ listener: server, autoListen: false });
      options.beforeMount?.(app);
      await app.register({ plugin: portcullisHapi, options: { portcullis }, routes: { prefix: MOUNT } });
      await options.afterMount?.(app, real);
      await app.start();
      // hapi did not listen (autoListen: false), so app.stop() has no sockets to close: we close the listener below.
      break;
    }
  }

  return {
    name,
    origin,
    issuer,
    portcullis: real,
    seen,
    async close() {
      await stopFramework();
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      await real.close();
    },
  };
}

/** A fresh in-memory server for an issuer (the standard memory storage), plus options. */
export function memoryServer(options: Partial<PortcullisOptions> = {}): (issuer: string) => Promise<Portcullis> {
  return (issuer) => createPortcullis({ issuer, storage: createMemoryStorage(), ...options });
}

/**
 * node:http → fetch handler: the request as a WHATWG Request (body streamed), the Response written
 * back with one Set-Cookie line per cookie. A cancelled body stops being read, nothing more.
 */
export function fetchBridge(handler: (request: Request, incoming: IncomingMessage) => Response | Promise<Response>): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const method = req.method ?? 'GET';
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    let body: ReadableStream<Uint8Array> | undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      body = new ReadableStream<Uint8Array>({
        start(controller) {
          req.on('data', (chunk: Buffer) => {
            controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            if ((controller.desiredSize ?? 0) <= 0) req.pause();
          });
          req.on('end', () => controller.close());
          req.on('error', (err) => controller.error(err));
        },
        pull() {
          req.resume();
        },
        cancel() {
          req.pause();
        },
      });
    }
    let url: string;
    try {
      url = new URL(req.url ?? '/', `http://${req.headers.host ?? HOST}`).href;
    } catch {
      res.writeHead(400).end();
      return;
    }
    const request = new Request(url, { method, headers, ...(body !== undefined ? { body, duplex: 'half' } : {}) } as RequestInit);
    Promise.resolve()
      .then(() => handler(request, req))
      .then(async (response) => {
        res.statusCode = response.status;
        response.headers.forEach((value, key) => {
          if (key !== 'set-cookie') res.setHeader(key, value);
        });
        const cookies = response.headers.getSetCookie();
        if (cookies.length > 0) res.setHeader('set-cookie', cookies);
        const bytes = method === 'HEAD' || response.body === null ? undefined : Buffer.from(await response.arrayBuffer());
        if (response.status === 413) res.setHeader('connection', 'close');
        res.end(bytes);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('bridge failure');
      });
  };
}

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  /** Header lines exactly as received: [name, value] pairs. */
  rawHeaders: [string, string][];
  body: string;
}

/** One request over a fresh socket, with full control of headers (Host included). */
export function raw(method: string, url: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, method, path: target.pathname + target.search, headers: { connection: 'close', ...options.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const pairs: [string, string][] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: pairs, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * POST an oversized body and return the answer: `declared` sends Content-Length (the server can
 * refuse before reading), otherwise chunked; either way the body is written until the server answers.
 */
export function oversized(url: string, totalBytes: number, declared: boolean, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: 'POST',
        path: target.pathname,
        agent: false,
        headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close', ...(declared ? { 'content-length': String(totalBytes) } : {}), ...headers },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
          req.destroy();
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    chunk.write('grant_type=client_credentials&pad=');
    let sent = 0;
    const pump = (): void => {
      while (!answered && sent < totalBytes) {
        const piece = sent + chunk.length <= totalBytes ? chunk : chunk.subarray(0, totalBytes - sent);
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
}

/** RFC 6749 §2.3.1 Basic credentials. */
export function basic(id: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

export type { Server };
