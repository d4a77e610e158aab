/**
 * The ready-to-run demo: `portcullis start` without a config file creates a demo user and the
 * `demo-web` client, prints a sign-in link, and answers the demo client's callback and
 * logged-out pages, so the authorization code flow runs with a browser (here: fetch) and curl.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Logger } from '../../src/core/logger.js';
import { loadConfig } from '../../src/server/config.js';
import { exchangeCurl, shellWord } from '../../src/server/demo.js';
import { startServer, type RunningServer } from '../../src/server/start.js';
import { basic, cleanup, jwtHeader, runCli, spawnCli, stop, tempDir, waitForOutput } from './helpers.js';

const running: RunningServer[] = [];
after(async () => {
  await Promise.allSettled(running.map((r) => r.close()));
  cleanup();
});

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const BANNER_END = /Stop with Ctrl-C/;

function workspace(): { cwd: string; env: Record<string, string> } {
  const cwd = tempDir('portcullis-demo-');
  return { cwd, env: { DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}`, PORT: '0' } };
}

/** What the first-start banner tells a person. */
interface Banner {
  issuer: string;
  username?: string;
  password?: string;
  secret?: string;
  authorizationUrl: string;
  codeVerifier: string;
  curl: string;
}

function parseBanner(text: string): Banner {
  const find = (re: RegExp): string | undefined => re.exec(text)?.[1];
  const need = (re: RegExp): string => {
    const value = find(re);
    assert.ok(value !== undefined, `${re} not in the banner:\n${text}`);
    return value;
  };
  const banner: Banner = {
    issuer: need(/^\s*issuer:\s+(\S+)$/m),
    authorizationUrl: need(/^Open in a browser to sign in:\n\s+(\S+)$/m),
    codeVerifier: need(/^\s+code_verifier:\s+(\S+)$/m),
    curl: need(/^\s+(curl -s -u demo-web:.*)$/m),
  };
  const username = find(/^\s+username:\s+(\S+)$/m);
  const password = find(/^\s+password:\s+(\S+)$/m);
  const secret = find(/^\s+client_id:\s+demo-web\n\s+client_secret:\s+(\S+)$/m);
  if (username !== undefined) banner.username = username;
  if (password !== undefined) banner.password = password;
  if (secret !== undefined) banner.secret = secret;
  return banner;
}

/** A browser's cookie jar, enough for one host (paths are ignored: every cookie is sent). */
class Jar {
  readonly #cookies = new Map<string, string>();

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';', 1);
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/;\s*max-age=0/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.#cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }

  names(): string[] {
    return [...this.#cookies.keys()];
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#cookies.size > 0) headers.set('cookie', this.header());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }
}

function csrfOf(page: string): string {
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
  assert.ok(csrf !== undefined, page);
  return csrf;
}

function form(values: Record<string, string>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(values).toString() };
}

/**
 * Sign in as a person would: the link, the login page, then the consent page unless the consent is
 * remembered. Returns the callback URL.
 */
async function signIn(jar: Jar, banner: Banner, credentials: { username: string; password: string }, consentRemembered = false): Promise<string> {
  const base = banner.issuer;
  const authorize = await jar.fetch(banner.authorizationUrl);
  assert.equal(authorize.status, 302, await authorize.text());
  const interaction = authorize.headers.get('location') ?? '';
  assert.match(interaction, new RegExp(`^${base}/interaction/[0-9a-f-]{36}$`));
  assert.ok(jar.names().includes('portcullis.interaction'), `an interaction cookie is set (${jar.names().join(', ')})`);

  const loginPage = await jar.fetch(interaction);
  assert.equal(loginPage.status, 200);
  const loginHtml = await loginPage.text();
  assert.ok(loginHtml.includes('Portcullis demo app'), 'the login page names the demo client');

  const login = await jar.fetch(`${interaction}/login`, form({ csrf: csrfOf(loginHtml), ...credentials }));
  assert.equal(login.status, 303, await login.text());
  if (consentRemembered) return login.headers.get('location') ?? '';
  assert.equal(login.headers.get('location'), interaction);

  const consentPage = await jar.fetch(interaction);
  assert.equal(consentPage.status, 200);
  const consentHtml = await consentPage.text();
  assert.match(consentHtml, /Portcullis demo app wants to access your account/);
  assert.match(consentHtml, /Signed in as <strong>Demo User<\/strong>/);

  const consent = await jar.fetch(`${interaction}/consent`, form({ csrf: csrfOf(consentHtml), decision: 'approve' }));
  assert.equal(consent.status, 303, await consent.text());
  return consent.headers.get('location') ?? '';
}

interface TokenBody {
  access_token?: string;
  id_token?: string;
  refresh_token?: string;
  token_type?: string;
  scope?: string;
  error?: string;
}

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

function sh(command: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${command}\n${stderr}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

function htmlText(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

describe('portcullis start: the demo web client', () => {
  test('the printed sign-in link runs the authorization code flow end to end; a restart shows no secret and still serves the callback', async () => {
    const ws = workspace();
    const first = spawnCli(['start'], ws);
    const text = (await waitForOutput(first, BANNER_END)).output();
    const banner = parseBanner(text);
    const base = banner.issuer;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(banner.username, 'demo');
    assert.ok(banner.password !== undefined && banner.password.length >= 16, text);
    assert.ok(banner.secret !== undefined && banner.secret.length >= 43, text);
    assert.ok(banner.codeVerifier.length >= 43 && /^[A-Za-z0-9._~-]+$/.test(banner.codeVerifier));
    assert.match(text, /^\s+client_secret:\s+\S+$/m, 'the demo-client block is still printed');
    assert.match(text, /curl -s -u demo-client:\S+ -d grant_type=client_credentials -d scope=api:read /);
    assert.match(text, /! the demo user demo exists: remove it before production \(portcullis users remove demo\)/);
    assert.match(text, /! the demo web client demo-web is registered/);

    const link = new URL(banner.authorizationUrl);
    assert.equal(`${link.origin}${link.pathname}`, `${base}/authorize`);
    assert.equal(link.searchParams.get('client_id'), 'demo-web');
    assert.equal(link.searchParams.get('redirect_uri'), `${base}/demo/callback`);
    assert.equal(link.searchParams.get('scope'), 'openid profile email');
    assert.equal(link.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(banner.authorizationUrl.includes('&scope=openid%20profile%20email&'));
    const state = link.searchParams.get('state')!;
    assert.equal(
      banner.curl,
      `curl -s -u demo-web:$DEMO_WEB_SECRET -d grant_type=authorization_code -d code=<code> -d redirect_uri=${base}/demo/callback -d code_verifier=${banner.codeVerifier} ${base}/token`,
    );
    assert.ok(text.includes(`export DEMO_WEB_SECRET=${banner.secret}`));

    // The device-flow lines of the banner work as printed.
    const deviceCurl = new RegExp(`curl -s -u demo-web:\\$DEMO_WEB_SECRET -d scope=openid ${base.replace(/[.]/g, '\\.')}/device_authorization`);
    assert.match(text, deviceCurl);
    assert.ok(text.includes(`-d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=<device_code> ${base}/token`));
    const deviceStart = await fetch(`${base}/device_authorization`, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from(`demo-web:${banner.secret}`).toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'scope=openid',
    });
    assert.equal(deviceStart.status, 200);
    const device = (await deviceStart.json()) as { device_code: string; user_code: string; verification_uri_complete: string };
    assert.match(device.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    const poll = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from(`demo-web:${banner.secret}`).toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code }),
    });
    assert.equal(((await poll.json()) as { error: string }).error, 'authorization_pending');

    const jar = new Jar();
    const callback = await signIn(jar, banner, { username: 'demo', password: banner.password! });
    const back = new URL(callback);
    assert.equal(`${back.origin}${back.pathname}`, `${base}/demo/callback`);
    const code = back.searchParams.get('code');
    assert.ok(code !== null, callback);
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('iss'), base);

    // The callback page: what arrived, and a ready curl with this process's verifier.
    const page = await fetch(callback);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; style-src 'nonce-[^']+'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    const pageHtml = await page.text();
    assert.ok(pageHtml.includes(`<code>${code}</code>`), 'the page shows the code');
    assert.ok(pageHtml.includes(`code_verifier=${banner.codeVerifier}`), 'the page shows the verifier of this process');
    const pageCurl = htmlText(/^(curl -s -u demo-web:[^<]*)/m.exec(pageHtml)?.[1] ?? '');
    assert.equal(
      pageCurl,
      `curl -s -u demo-web:$DEMO_WEB_SECRET -d grant_type=authorization_code -d code=${code} -d redirect_uri=${base}/demo/callback -d code_verifier=${banner.codeVerifier} ${base}/token`,
    );
    assert.ok(!pageHtml.includes(banner.secret!), 'the page never shows the secret');

    // Exchange the code, as the curl does.
    const token = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: basic('demo-web', banner.secret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${base}/demo/callback`, code_verifier: banner.codeVerifier }).toString(),
    });
    const body = (await token.json()) as TokenBody;
    assert.equal(token.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    assert.equal(typeof body.access_token, 'string');
    assert.equal(typeof body.id_token, 'string');
    assert.equal(body.refresh_token, undefined, 'no refresh token without offline_access');
    assert.equal(jwtHeader(body.id_token!).alg, 'ES256');
    const id = claims(body.id_token!);
    assert.equal(id.aud, 'demo-web');
    assert.equal(id.nonce, link.searchParams.get('nonce'));
    assert.equal(id.iss, base);

    const userinfo = (await (await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${body.access_token}` } })).json()) as Record<string, unknown>;
    assert.equal(userinfo.name, 'Demo User');
    assert.equal(userinfo.email, 'demo@example.com');
    assert.equal(userinfo.email_verified, true);

    // RP-initiated logout lands on the demo's logged-out page.
    const logout = await jar.fetch(
      `${base}/end_session?${new URLSearchParams({ id_token_hint: body.id_token!, post_logout_redirect_uri: `${base}/demo/logged-out` })}`,
    );
    assert.ok(logout.status === 302 || logout.status === 303, `${logout.status} ${await logout.text()}`);
    assert.equal(logout.headers.get('location'), `${base}/demo/logged-out`);
    const loggedOut = await fetch(`${base}/demo/logged-out`);
    assert.equal(loggedOut.status, 200);
    assert.match(loggedOut.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(await loggedOut.text(), /You are signed out/);

    assert.equal((await stop(first)).code, 0);
    assert.ok(!text.includes(code), 'the code is not logged');

    // Restart on the same data: nothing is created again, no secret is shown, the pages are still served.
    const second = spawnCli(['start'], ws);
    const text2 = (await waitForOutput(second, BANNER_END)).output();
    assert.doesNotMatch(text2, /client_secret/);
    assert.doesNotMatch(text2, /password:/);
    assert.ok(!text2.includes(banner.secret!) && !text2.includes(banner.password!));
    assert.match(text2, /The demo web client demo-web and the demo user demo exist/);
    assert.match(text2, /portcullis clients remove demo-web && portcullis users remove demo/);
    const banner2 = parseBanner(text2);
    assert.notEqual(banner2.codeVerifier, banner.codeVerifier, 'a new verifier at every start');
    const base2 = banner2.issuer;
    const plain = await fetch(`${base2}/demo/callback`);
    assert.equal(plain.status, 200);
    assert.match(await plain.text(), /No authorization response parameters were received/);

    // The new link works with the stored client (loopback redirect URIs match on any port), and the
    // consent given before is remembered. Then run the curl the page shows, as a person would.
    const callback2 = await signIn(new Jar(), banner2, { username: 'demo', password: banner.password! }, true);
    assert.ok(callback2.startsWith(`${base2}/demo/callback?code=`), callback2);
    const page2 = await (await fetch(callback2)).text();
    const curl2 = htmlText(/^(curl -s -u demo-web:[^<]*)/m.exec(page2)?.[1] ?? '');
    assert.ok(curl2.includes(`code_verifier=${banner2.codeVerifier}`), page2);
    if (existsSync('/usr/bin/curl') || existsSync('/bin/curl')) {
      const out = JSON.parse(await sh(curl2, { DEMO_WEB_SECRET: banner.secret! })) as TokenBody;
      assert.equal(typeof out.access_token, 'string', JSON.stringify(out));
      assert.equal(typeof out.id_token, 'string');
    }
    assert.equal((await stop(second, 'SIGINT')).code, 0);

    const users = JSON.parse((await runCli(['users', 'list', '--json'], ws)).stdout) as { username: string; has_password: boolean }[];
    assert.deepEqual(users.map((u) => [u.username, u.has_password]), [['demo', true]]);
  });

  test('with a config file there is no demo: /demo/callback is the core\'s 404', async () => {
    const ws = workspace();
    writeFileSync(
      join(ws.cwd, 'portcullis.config.json'),
      JSON.stringify({ clients: [{ client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['client_credentials'] }] }),
    );
    const child = spawnCli(['start'], ws);
    const text = (await waitForOutput(child, BANNER_END)).output();
    assert.doesNotMatch(text, /demo-web|demo-client|demo user|sign in/i);
    const base = /^\s*issuer:\s+(\S+)$/m.exec(text)?.[1];
    for (const path of ['/demo/callback?code=x&state=y', '/demo/logged-out']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { error: 'not_found', error_description: 'No such endpoint' });
    }
    assert.equal((await stop(child)).code, 0);
  });
});

describe('the demo pages (in process)', () => {
  async function start(env: Record<string, string> = {}) {
    const cwd = tempDir('portcullis-demo-');
    const config = loadConfig({ PORT: '0', DATABASE_URL: 'memory:', ...env }, cwd);
    let banner = '';
    const server = await startServer(config, { logger: quiet, write: (t) => (banner += t) });
    running.push(server);
    return { server, banner };
  }

  test('startServer reports what it created; the stored user has only an argon2id hash', async () => {
    const { server, banner } = await start();
    assert.equal(server.demoWebClient?.client_id, 'demo-web');
    assert.equal(server.demoUser?.username, 'demo');
    assert.ok(server.demoFlow !== undefined);
    assert.ok(banner.includes(server.demoFlow.authorizationUrl));
    const client = await server.portcullis.clients.get('demo-web');
    assert.deepEqual(client?.redirect_uris, [`${server.portcullis.issuer}/demo/callback`]);
    assert.deepEqual(client?.post_logout_redirect_uris, [`${server.portcullis.issuer}/demo/logged-out`]);
    assert.deepEqual(client?.grant_types, ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']);
    assert.equal(client?.scope, 'openid profile email offline_access api:read');
    assert.equal(client?.token_endpoint_auth_method, 'client_secret_basic');
    assert.equal(client?.id_token_signed_response_alg, 'ES256');
    assert.equal(client?.client_name, 'Portcullis demo app');
    assert.notEqual(client?.first_party, true, 'the consent page is part of the demo');
    const user = await server.portcullis.users.findByUsername('demo');
    assert.match(user?.password_hash ?? '', /^\$argon2id\$/);
    assert.ok(!JSON.stringify(user).includes(server.demoUser!.password));
    assert.deepEqual(user?.claims, { name: 'Demo User', email: 'demo@example.com', email_verified: true });
    await server.close();
  });

  test('everything from the request is escaped, and the curl cannot be turned into another command', async () => {
    const { server } = await start();
    const evil = `x'$(touch /tmp/pwned)<script>"`;
    const url = `${server.url}/demo/callback?${new URLSearchParams({ code: evil, state: '<b>s</b>', iss: 'https://evil.example', error_description: '<img src=x>' })}`;
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.ok(!page.includes('<script>"') && !page.includes('<b>s</b>') && !page.includes('<img src=x>'));
    assert.ok(page.includes('&lt;b&gt;s&lt;/b&gt;'));
    // Another state than this process's: the verifier is a placeholder.
    assert.ok(!page.includes(server.demoFlow!.codeVerifier));
    assert.ok(page.includes('code_verifier=$CODE_VERIFIER'));
    const curl = htmlText(/^(curl -s -u demo-web:[^<]*)/m.exec(page)?.[1] ?? '');
    assert.ok(curl.includes(`--data-urlencode ${shellWord(`code=${evil}`)}`), curl);
    assert.equal(shellWord(`code=${evil}`), `'code=x'\\''$(touch /tmp/pwned)<script>"'`);
    if (existsSync('/usr/bin/curl') || existsSync('/bin/curl')) {
      // The shell sees the whole value as one argument: echo it back instead of running curl.
      const echoed = await sh(`printf '%s\\n' ${shellWord(`code=${evil}`)}`, {});
      assert.equal(echoed, `code=${evil}\n`);
    }
    await server.close();
  });

  test('the state of this process shows its verifier; form_post and HEAD work; other methods are refused', async () => {
    const { server } = await start();
    const flow = server.demoFlow!;
    const get = await fetch(`${server.url}/demo/callback?code=abc&state=${flow.state}`);
    assert.ok((await get.text()).includes(`code_verifier=${flow.codeVerifier}`));

    const post = await fetch(`${server.url}/demo/callback`, form({ code: 'from-a-form', state: flow.state, iss: server.portcullis.issuer }));
    assert.equal(post.status, 200);
    const posted = await post.text();
    assert.ok(posted.includes('<code>from-a-form</code>'));
    assert.ok(posted.includes(exchangeCurl(server.portcullis.endpoints.token, flow.redirectUri, 'from-a-form', flow.codeVerifier)));

    const error = await (await fetch(`${server.url}/demo/callback?error=access_denied&error_description=denied&state=${flow.state}`)).text();
    assert.match(error, /role="alert">The authorization request failed/);
    assert.ok(!error.includes('curl -s'), 'no curl without a code');

    const head = await fetch(`${server.url}/demo/callback?code=abc`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');

    const put = await fetch(`${server.url}/demo/logged-out`, { method: 'POST', body: 'x' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, HEAD');
    const json = await fetch(`${server.url}/demo/callback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 415);
    await server.close();
  });

  test('the pages are served only while demo-web exists (the store is asked per request)', async () => {
    const { server } = await start();
    assert.equal((await fetch(`${server.url}/demo/logged-out`)).status, 200);
    assert.equal(await server.portcullis.clients.remove('demo-web'), true);
    assert.equal((await fetch(`${server.url}/demo/logged-out`)).status, 404);
    assert.equal((await fetch(`${server.url}/demo/callback?code=x`)).status, 404);
    await server.close();
  });

  test('a restart under another issuer does not offer a sign-in link the stored client would refuse', async () => {
    const cwd = tempDir('portcullis-demo-');
    const env = { PORT: '0', DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}` };
    let banner1 = '';
    const first = await startServer(loadConfig({ ...env, PORTCULLIS_ISSUER: 'https://a.example' }, cwd), { logger: quiet, write: (t) => (banner1 += t) });
    running.push(first);
    assert.ok(first.demoFlow !== undefined && banner1.includes('Open in a browser to sign in:'));
    await first.close();
    let banner2 = '';
    const second = await startServer(loadConfig({ ...env, PORTCULLIS_ISSUER: 'https://b.example' }, cwd), { logger: quiet, write: (t) => (banner2 += t) });
    running.push(second);
    assert.equal(second.demoFlow, undefined);
    assert.equal(second.demoWebClient, undefined);
    assert.doesNotMatch(banner2, /Open in a browser|client_secret|password:/);
    assert.match(banner2, /Its redirect URIs do not include https:\/\/b\.example\/demo\/callback/);
    assert.match(banner2, new RegExp(`delete the database file ${join(cwd, 'db.sqlite').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // The pages follow the client's existence, not the issuer.
    assert.equal((await fetch(`${second.url}/demo/logged-out`)).status, 200);
    await second.close();
  });

  test('under an issuer with a path the pages live under that path', async () => {
    const { server, banner } = await start({ PORTCULLIS_ISSUER: 'https://auth.example.com/tenant' });
    assert.ok(banner.includes('redirect_uri=https%3A%2F%2Fauth.example.com%2Ftenant%2Fdemo%2Fcallback'), banner);
    assert.match(banner, /^ {2}https:\/\/auth\.example\.com\/tenant\/authorize\?response_type=code&/m);
    const res = await fetch(`${server.url}/tenant/demo/callback?code=abc`);
    assert.equal(res.status, 200);
    assert.ok((await res.text()).includes('redirect_uri=https://auth.example.com/tenant/demo/callback'));
    assert.equal((await fetch(`${server.url}/tenant/demo/logged-out`)).status, 200);
    await server.close();
  });
});
