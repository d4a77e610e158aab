/**
 * An in-process browser over real HTTP: a cookie jar (Set-Cookie → Cookie, per host), redirects
 * followed by hand within the app's origin, and form helpers that scrape the CSRF field of a page.
 * It stops at the first redirect that leaves the app (the client's redirect URI).
 */
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';

export class CookieBrowser {
  readonly #jar = new Map<string, string>();
  /** Every response seen, newest last (status and URL), for assertions on the path taken. */
  readonly trail: { method: string; url: string; status: number }[] = [];

  constructor(readonly origin: string) {}

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url, this.origin);
    const headers: Record<string, string> = {};
    const cookie = [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (cookie !== '' && target.origin === this.origin) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const method = init.method ?? (body !== undefined ? 'POST' : 'GET');
    const res = await fetch(target, { method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === '') this.#jar.delete(name);
      else this.#jar.set(name, value);
    }
    this.trail.push({ method, url: target.href, status: res.status });
    return res;
  }

  /**
   * Request, then follow redirects while they stay on the app's origin. Returns the last response
   * (a page) or, when a redirect leaves the app, that Location as `exit`.
   */
  async navigate(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ res: Response; url: string; exit?: URL }> {
    let res = await this.request(url, init);
    let current = new URL(url, this.origin).href;
    for (let hops = 0; hops < 10; hops++) {
      if (res.status < 300 || res.status >= 400) return { res, url: current };
      const location = res.headers.get('location');
      assert.ok(location, `redirect ${res.status} without Location from ${current}`);
      const next = new URL(location, current);
      if (next.origin !== this.origin) return { res, url: current, exit: next };
      await res.arrayBuffer();
      current = next.href;
      res = await this.request(current);
    }
    throw new Error('too many redirects');
  }

  /** Submit the first form of `html` (its hidden fields, plus `fields`) to its action. */
  async submit(page: string, pageUrl: string, fields: Record<string, string>): Promise<{ res: Response; url: string; exit?: URL }> {
    const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/.exec(page);
    assert.ok(form, 'no form on the page');
    const hidden: Record<string, string> = {};
    for (const m of form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[m[1]!] = unescape(m[2]!);
    return this.navigate(new URL(unescape(form[1]!), pageUrl).href, { form: { ...hidden, ...fields } });
  }
}

function unescape(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export interface Listening {
  server: Server;
  base: string;
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 (random port); the handler is attached later, once the base URL is known. */
export async function listen(): Promise<Listening & { use(handler: RequestListener): void }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  return {
    server,
    base,
    use(handler) {
      server.on('request', handler);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
