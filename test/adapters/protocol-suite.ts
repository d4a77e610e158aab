/**
 * The protocol checks every framework adapter must pass, run once per adapter by
 * test/adapters/<framework>.test.ts, with the server mounted under /oauth.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { OAuthRequest } from '../../src/core/http.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { basic, memoryServer, mount, MOUNT, oversized, raw, type AdapterName, type Mounted } from './servers.js';

export const SVC = { id: 'svc', secret: 'svc-secret-0123456789abcdef' };
export const WEB = { id: 'web', secret: 'web-secret-0123456789abcdef', redirect: 'https://web.test/cb' };
export const ALICE = { username: 'alice', password: 'alice-password-123' };
const NO_STACK = /\bat \S+ \(|\.ts:\d+|node_modules|Error:/;

/** A server with a service client, a first-party web client (no consent page) and a user. */
export async function seededServer(issuer: string): Promise<Portcullis> {
  const p = await memoryServer()(issuer);
  await p.clients.upsert({ client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read api:write' });
  await p.clients.upsert({
    client_id: WEB.id,
    client_secret: WEB.secret,
    redirect_uris: [WEB.redirect],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile api:read',
    first_party: true,
  });
  await p.users.upsert({ username: ALICE.username, password: ALICE.password });
  return p;
}

function tokenForm(extra = ''): string {
  return `grant_type=client_credentials&scope=api%3Aread${extra}`;
}

/** Run the shared checks against one adapter. `preParsedBody` says what the core must see when the framework parsed the form first. */
export function adapterProtocolSuite(name: AdapterName, preParsedBody: (body: OAuthRequest['body']) => boolean): void {
  describe(`${name} adapter under ${MOUNT}: the protocol checks`, () => {
    let m: Mounted;
    let pre: Mounted;
    before(async () => {
      m = await mount(name, seededServer);
      pre = await mount(name, seededServer, { preParse: true });
    });
    after(async () => {
      await m?.close();
      await pre?.close();
    });

    it('issues a client_credentials token over the mounted path with Basic; the core sees the mount-relative path', async () => {
      const res = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: tokenForm() });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers.pragma, 'no-cache');
      const body = JSON.parse(res.body) as { access_token: string; token_type: string; scope: string };
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.scope, 'api:read');
      const seen = m.seen.at(-1)!;
      // The framework adapters strip their mount; node:http and fetch pass the full path, and the
      // core strips the issuer's path itself.
      assert.equal(seen.path, name === 'node' || name === 'node-coalesced' || name === 'fetch' ? `${MOUNT}/token` : '/token');
      assert.equal(seen.method, 'POST');
      if (name !== 'fetch') assert.equal(typeof seen.ip, 'string', 'the client address, for throttling');
      // A wrong secret: the RFC 6749 401 with its Basic challenge, through the framework unchanged.
      const bad = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, 'wrong-secret-0000000000') }, body: tokenForm() });
      assert.equal(bad.status, 401);
      assert.match(String(bad.headers['www-authenticate']), /^Basic realm="/);
      assert.equal(JSON.parse(bad.body).error, 'invalid_client');
    });

    it('discovery: issuer and endpoints come from the configuration, whatever the Host / X-Forwarded-* headers say', async () => {
      // (The RFC 8414 document of an issuer with a path lives at the host root, outside the mount:
      // /.well-known/oauth-authorization-server/oauth; docs/adapters.md shows how to route it.)
      for (const path of ['/.well-known/openid-configuration']) {
        const honest = await raw('GET', `${m.issuer}${path}`);
        const spoofed = await raw('GET', `${m.issuer}${path}`, { headers: { host: 'evil.example:666', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-prefix': '/evil' } });
        for (const res of [honest, spoofed]) {
          assert.equal(res.status, 200, `${path}: ${res.body}`);
          assert.match(String(res.headers['cache-control']), /^public, max-age=/);
          const meta = JSON.parse(res.body) as Record<string, unknown>;
          assert.equal(meta.issuer, m.issuer);
          for (const key of ['token_endpoint', 'authorization_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'userinfo_endpoint']) {
            assert.equal(typeof meta[key], 'string', key);
            assert.ok(String(meta[key]).startsWith(`${m.issuer}/`), `${key} = ${String(meta[key])}`);
          }
          assert.equal(meta.token_endpoint, `${m.issuer}/token`);
        }
        assert.equal(spoofed.body, honest.body);
      }
    });

    it('uses a body the framework already parsed instead of reading the stream again', async () => {
      const res = await raw('POST', `${pre.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: tokenForm() });
      assert.equal(res.status, 200, res.body);
      const seen = pre.seen.at(-1)!;
      assert.ok(preParsedBody(seen.body), `the core got the parsed body (${Object.prototype.toString.call(seen.body)})`);
      // A repeated parameter in the parsed body is still refused (RFC 6749 §3.1).
      const twice = await raw('POST', `${pre.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: tokenForm('&scope=api%3Awrite') });
      assert.equal(twice.status, 400);
      assert.equal(JSON.parse(twice.body).error, 'invalid_request');
    });

    it('refuses a 1 MiB body with a 413 OAuth JSON error (declared or streamed), and keeps serving', async () => {
      for (const declared of [true, false]) {
        const res = await oversized(`${m.issuer}/token`, 1024 * 1024, declared, { authorization: basic(SVC.id, SVC.secret) });
        assert.equal(res.status, 413, `declared=${declared}: ${res.body}`);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        assert.equal(JSON.parse(res.body).error, 'invalid_request');
        assert.doesNotMatch(res.body, NO_STACK);
      }
      const again = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: tokenForm() });
      assert.equal(again.status, 200);
    });

    it('answers HEAD like GET without a body', async () => {
      for (const path of ['/jwks', '/.well-known/openid-configuration']) {
        const get = await raw('GET', `${m.issuer}${path}`);
        const head = await raw('HEAD', `${m.issuer}${path}`);
        assert.equal(head.status, 200, path);
        assert.equal(head.body, '');
        assert.equal(head.headers['content-type'], get.headers['content-type']);
        assert.equal(head.headers['cache-control'], get.headers['cache-control']);
      }
    });

    it('keeps every Set-Cookie header line (authorize → interaction cookie → sign-in sets the session and clears the interaction)', async () => {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const query = new URLSearchParams({ response_type: 'code', client_id: WEB.id, redirect_uri: WEB.redirect, scope: 'openid api:read', state: 'st-1', code_challenge: challenge, code_challenge_method: 'S256' });
      const authorize = await raw('GET', `${m.issuer}/authorize?${query}`);
      assert.equal(authorize.status, 302, authorize.body);
      const location = String(authorize.headers.location);
      assert.ok(location.startsWith(`${m.issuer}/interaction/`), location);
      const first = authorize.rawHeaders.filter(([k]) => k === 'set-cookie').map(([, v]) => v);
      assert.equal(first.length, 1);
      assert.match(first[0]!, new RegExp(`^portcullis\\.interaction=.*; Path=${MOUNT}/interaction/`));
      const cookie = first[0]!.split(';', 1)[0]!;

      const page = await raw('GET', location, { headers: { cookie } });
      assert.equal(page.status, 200, page.body.slice(0, 300));
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
      const action = /<form method="post" action="([^"]+)"/.exec(page.body)?.[1]?.replace(/&#x2F;/g, '/').replace(/&amp;/g, '&');
      assert.ok(csrf !== undefined && action !== undefined);
      assert.ok(action.startsWith(`${m.issuer}/interaction/`), action);
      const login = await raw('POST', action, { headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, username: ALICE.username, password: ALICE.password }).toString() });
      assert.equal(login.status, 303, login.body.slice(0, 300));
      const cookies = login.rawHeaders.filter(([k]) => k === 'set-cookie').map(([, v]) => v);
      assert.equal(cookies.length, 2, `two Set-Cookie lines: ${JSON.stringify(cookies)}`);
      assert.ok(cookies.some((c) => c.startsWith('portcullis.session=')), JSON.stringify(cookies));
      assert.ok(cookies.some((c) => c.startsWith('portcullis.interaction=;') && /Max-Age=0/i.test(c)), JSON.stringify(cookies));
      assert.ok(String(login.headers.location).startsWith(`${WEB.redirect}?code=`), String(login.headers.location));
    });

    it('errors are RFC 6749 JSON, never a stack trace', async () => {
      const cases: { body: string; headers: Record<string, string>; status: number; error: string }[] = [
        { body: 'x', headers: { 'content-type': 'text/plain' }, status: 400, error: 'invalid_request' },
        { body: '{"grant_type":"client_credentials"}', headers: { 'content-type': 'application/json', authorization: basic(SVC.id, SVC.secret) }, status: 400, error: 'invalid_request' },
        { body: '{"grant_type":', headers: { 'content-type': 'application/json' }, status: 400, error: 'invalid_request' },
        { body: 'grant_type=urn:nope', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, status: 400, error: 'unsupported_grant_type' },
      ];
      for (const target of [m, pre]) {
        for (const c of cases) {
          const res = await raw('POST', `${target.issuer}/token`, { headers: c.headers, body: c.body });
          assert.equal(res.status, c.status, `${c.headers['content-type']} ${c.body}: ${res.body}`);
          assert.match(String(res.headers['content-type']), /^application\/json/);
          assert.equal(JSON.parse(res.body).error, c.error, res.body);
          assert.doesNotMatch(res.body, NO_STACK);
        }
      }
      // Broken percent-encoding in a raw form body (a framework parser may be lenient about it).
      const broken = await raw('POST', `${m.issuer}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) }, body: 'grant_type=%E0%A4%A' });
      assert.equal(broken.status, 400);
      assert.equal(JSON.parse(broken.body).error, 'invalid_request');
      // GET on the token endpoint: the core's 405.
      const get = await raw('GET', `${m.issuer}/token`);
      assert.equal(get.status, 405);
      assert.doesNotMatch(get.body, NO_STACK);
    });
  });
}

/** A server whose core throws (it never does): what the adapter does with a failure of its own. */
export function throwingServer(portcullis: Portcullis): Portcullis {
  return {
    ...portcullis,
    async handle(req) {
      if (req.headers['x-test-throw'] === '1') throw new Error('secret internal detail at /srv/app.ts:1');
      return portcullis.handle(req);
    },
  };
}
