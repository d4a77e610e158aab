/** Mount flow designs over real HTTP (Hapi like the seed package, node:http, fetch) and drive them like a browser or a client. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Hapi from '@hapi/hapi';
import type { FlowDesign } from '../../src/builders/index.js';
import { toNodeListener } from '../../src/adapters/node-http.js';

export const HOST = '127.0.0.1';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const port = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

export interface Mounted {
  /** The base URL (= the issuer). */
  url: string;
  issuer: string;
  stop(): Promise<void>;
}

/** Run `fn` with console.warn captured; returns what was printed. */
export async function captureWarnings<T>(fn: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const original = console.warn;
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
  };
  try {
    return { result: await fn(), warnings };
  } finally {
    console.warn = original;
  }
}

/** Mount a design in Hapi 21 with its plugin (the issuer is the server's own URL). */
export async function mountHapi(design: FlowDesign, options: { prefix?: string } = {}): Promise<Mounted & { warnings: string[] }> {
  const port = await freePort();
  const issuer = `http://${HOST}:${port}${options.prefix ?? ''}`;
  const server = Hapi.server({ host: HOST, port });
  const { warnings } = await captureWarnings(async () => {
    await server.register({ plugin: design.hapiPlugin(), options: { issuer } }, options.prefix !== undefined ? { routes: { prefix: options.prefix } } : {});
  });
  await server.start();
  return { url: issuer, issuer, warnings, stop: () => server.stop() };
}

/** Mount a design on node:http with the core's node adapter. */
export async function mountNode(design: FlowDesign): Promise<Mounted & { warnings: string[] }> {
  const port = await freePort();
  const issuer = `http://${HOST}:${port}`;
  const { result: built, warnings } = await captureWarnings(() => design.start({ issuer }));
  const server: Server = createServer(toNodeListener(built));
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
  return {
    url: issuer,
    issuer,
    warnings,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await design.close();
    },
  };
}

export function basic(id: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

export interface TokenCall {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POST a form to the token endpoint (or another path). */
export async function postForm(base: string, path: string, form: Record<string, string>, authorization?: string): Promise<TokenCall> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization !== undefined) headers.authorization = authorization;
  const res = await fetch(base + path, { method: 'POST', headers, body: new URLSearchParams(form).toString() });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** A token response: 200, no-store, the body. */
export function assertTokens(call: TokenCall): Record<string, unknown> {
  assert.equal(call.status, 200, JSON.stringify(call.body));
  assert.equal(call.headers.get('cache-control'), 'no-store');
  assert.equal(call.headers.get('pragma'), 'no-cache');
  assert.match(call.headers.get('content-type') ?? '', /^application\/json/);
  return call.body;
}

/** An RFC 6749 §5.2 error with its status, no-store, and nothing internal. */
export function assertError(call: TokenCall, status: number, error: string): Record<string, unknown> {
  assert.equal(call.status, status, JSON.stringify(call.body));
  assert.equal(call.body.error, error, JSON.stringify(call.body));
  assert.equal(call.headers.get('cache-control'), 'no-store');
  const text = JSON.stringify(call.body);
  assert.doesNotMatch(text, /\bat \S+ \(|\.ts:\d+|node_modules|TypeError|Error:/);
  if (status === 401) assert.match(call.headers.get('www-authenticate') ?? '', /^Basic realm="/);
  else assert.equal(call.headers.get('www-authenticate'), null);
  return call.body;
}

/** A minimal browser over real HTTP: a cookie jar, no automatic redirects, the hosted pages' forms. */
export class HttpBrowser {
  readonly #jar = new Map<string, string>();

  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<{ status: number; location: string | undefined; body: string }> {
    const headers: Record<string, string> = {};
    if (this.#jar.size > 0) headers.cookie = [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, redirect: 'manual', ...(form !== undefined ? { body: new URLSearchParams(form).toString() } : {}) });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === '') this.#jar.delete(name);
      else this.#jar.set(name, value);
    }
    const location = res.headers.get('location') ?? undefined;
    return { status: res.status, location: location === undefined ? undefined : new URL(location, url).toString(), body: await res.text() };
  }

  /** Follow the authorization flow from `authorizationUrl`: sign in, approve, until the redirect to `redirectUri`. */
  async authorize(authorizationUrl: string, redirectUri: string, user: { username: string; password: string }): Promise<URL> {
    let res = await this.request('GET', authorizationUrl);
    for (let step = 0; step < 8; step++) {
      const location = res.location;
      assert.ok(location !== undefined, `a redirect, got ${res.status}: ${res.body.slice(0, 300)}`);
      if (location.startsWith(redirectUri)) return new URL(location);
      const page = await this.request('GET', location);
      res = await this.submit(page.body, location, user);
    }
    assert.fail('the authorization flow did not finish');
  }

  /** Fill and post the page's form: login (username/password) or consent (approve). */
  async submit(html: string, pageUrl: string, user: { username: string; password: string }): Promise<{ status: number; location: string | undefined; body: string }> {
    const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1]?.replace(/&amp;/g, '&').replace(/&#x2F;/g, '/');
    const csrf = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(html)?.[1];
    assert.ok(action !== undefined && csrf !== undefined, `a form with a CSRF token: ${html.slice(0, 500)}`);
    const target = new URL(action, pageUrl).toString();
    if (/\/(login)$/.test(action)) return this.request('POST', target, { csrf, username: user.username, password: user.password });
    return this.request('POST', target, { csrf, decision: 'approve' });
  }
}
