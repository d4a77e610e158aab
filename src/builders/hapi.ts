/**
 * Mount a flow design in Hapi 21 (the way the seed package mounts its designs), as a plugin that
 * registers the design's routes. Typed structurally: `@hapi/hapi` is not imported.
 * @example
 * ```ts
 * const server = Hapi.server({ port: 3000, host: '127.0.0.1' });
 * await server.register({ plugin: design.hapiPlugin(), options: { issuer: 'http://127.0.0.1:3000' } });
 * await server.start();
 * ```
 */
import { ConfigError } from '../core/errors.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import type { Storage } from '../storage/contract.js';
import type { FlowDesign } from './design.js';

export interface HapiPluginOptions {
  /** The issuer, when the builder did not set one. Must include the plugin's route prefix, if any. */
  issuer?: string;
  storage?: Storage;
}

/** The parts of a Hapi request the plugin reads. */
interface HapiRequestLike {
  method: string;
  path: string;
  url: URL;
  headers: Record<string, string | undefined>;
  payload?: unknown;
  info: { remoteAddress?: string };
}

interface HapiResponseObjectLike {
  code(status: number): HapiResponseObjectLike;
  header(name: string, value: string, options?: { append?: boolean }): HapiResponseObjectLike;
  takeover(): HapiResponseObjectLike;
}

interface HapiToolkitLike {
  response(value?: unknown): HapiResponseObjectLike;
}

interface HapiServerLike {
  realm: { modifiers: { route: { prefix?: string } } };
  route(route: Record<string, unknown> | Record<string, unknown>[]): void;
  ext(event: string, method: () => Promise<void> | void): void;
}

export interface HapiPlugin {
  name: string;
  version: string;
  multiple: boolean;
  /** `server` is a Hapi `Server` (typed `unknown` so the plugin fits Hapi's `Plugin` type without importing it). */
  register(server: unknown, options?: HapiPluginOptions): Promise<void>;
}

function toHapi(h: HapiToolkitLike, res: OAuthResponse): HapiResponseObjectLike {
  const response = h.response(res.body === '' ? null : res.body).code(res.status);
  for (const [name, value] of Object.entries(res.headers)) response.header(name, value);
  for (const cookie of res.setCookies ?? []) response.header('set-cookie', cookie, { append: true });
  return response;
}

/** A Hapi plugin serving `design` (see {@link FlowDesign.hapiPlugin}). */
export function createHapiPlugin(design: FlowDesign, defaults: HapiPluginOptions = {}): HapiPlugin {
  return {
    name: `portcullis-builders:${design.getStrategyName()}`,
    version: '0.1.0',
    multiple: true,
    async register(hapiServer, options = {}) {
      const server = hapiServer as HapiServerLike;
      const built = await design.start({ ...defaults, ...options });
      const prefix = server.realm?.modifiers?.route?.prefix ?? '';
      const issuerPath = new URL(built.issuer).pathname.replace(/\/$/, '');
      if (prefix !== '' && issuerPath !== prefix && !issuerPath.startsWith(prefix + '/')) {
        throw new ConfigError(`the Hapi route prefix ${prefix} must be (the start of) the issuer's path: set the issuer to the URL the plugin is mounted at`);
      }
      const mount = issuerPath.slice(prefix.length);
      const maxBytes = 64 * 1024;
      const handler = async (request: HapiRequestLike, h: HapiToolkitLike) => {
        const req: OAuthRequest = {
          method: request.method.toUpperCase(),
          path: request.path,
          query: request.url.search.replace(/^\?/, ''),
          headers: request.headers,
        };
        if (request.info.remoteAddress !== undefined) req.ip = request.info.remoteAddress;
        const payload = request.payload;
        if (payload instanceof Uint8Array && payload.byteLength > 0) req.body = payload;
        return toHapi(h, await built.handle(req));
      };
      const failAction = (_request: HapiRequestLike, h: HapiToolkitLike, err: unknown) => {
        const status = (err as { output?: { statusCode?: number } } | undefined)?.output?.statusCode === 413 ? 413 : 400;
        const description = status === 413 ? 'The request body is too large' : 'The request body could not be read';
        const res: OAuthResponse = {
          status,
          headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', pragma: 'no-cache' },
          body: JSON.stringify({ error: 'invalid_request', error_description: description }),
        };
        return toHapi(h, res).takeover();
      };
      for (const { method, path } of design.routeTable(built.mode)) {
        server.route({
          method,
          path: mount + path,
          handler,
          options: {
            tags: ['portcullis', design.getStrategyName()],
            ...(method === 'POST' ? { payload: { parse: false, output: 'data', maxBytes, failAction } } : {}),
          },
        });
      }
      // RFC 8414 §3.1: with a path in the issuer, the metadata lives at /.well-known/oauth-authorization-server/<path> (root only).
      if (issuerPath !== '' && prefix === '') server.route({ method: 'GET', path: `/.well-known/oauth-authorization-server${issuerPath}`, handler });
      server.ext('onPostStop', () => design.close());
    },
  };
}
