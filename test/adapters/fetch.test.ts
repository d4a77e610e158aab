import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import { toFetchHandler } from '../../src/adapters/fetch.js';
import { toNodeListener } from '../../src/adapters/node-http.js';
import { basicAuth, createHarness, SVC1, type Harness } from '../helpers/harness.js';

describe('fetch adapter (Hono, Bun, Deno)', () => {
  let h: Harness;
  let handler: (request: Request) => Promise<Response>;
  before(async () => {
    h = await createHarness();
    handler = toFetchHandler(h.portcullis);
  });
  after(() => h.close());

  const tokenRequest = (body: BodyInit, headers: Record<string, string> = {}) =>
    new Request('http://127.0.0.1:3000/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...SVC1), ...headers },
      body,
      // Needed by undici for a streamed body.
      ...(typeof body === 'object' && body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);

  it('issues a token through a WHATWG Request/Response', async () => {
    const res = await handler(tokenRequest('grant_type=client_credentials'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { access_token: string; token_type: string };
    assert.equal(body.token_type, 'Bearer');
  });

  it('serves discovery and JWKS', async () => {
    const meta = await handler(new Request('http://127.0.0.1:3000/.well-known/oauth-authorization-server'));
    assert.equal(meta.status, 200);
    assert.equal(((await meta.json()) as { issuer: string }).issuer, 'http://127.0.0.1:3000');
    const jwks = await handler(new Request('http://127.0.0.1:3000/jwks'));
    assert.match(jwks.headers.get('content-type') ?? '', /jwk-set\+json/);
  });

  it('stops reading a streamed body past the cap and answers 413 with the OAuth error', async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        if (pulled > 1000) controller.close();
        else controller.enqueue(new Uint8Array(16 * 1024).fill(0x61));
      },
    });
    const res = await handler(tokenRequest(stream));
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    assert.ok(pulled < 10, `stopped reading early (pulled ${pulled} chunks)`);
  });

  it('answers errors with the RFC 6749 shape', async () => {
    const res = await handler(tokenRequest('grant_type=client_credentials', { authorization: basicAuth('svc1', 'wrong-secret') }));
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_client');
  });
});

describe('node:http adapter', () => {
  let h: Harness;
  let server: Server;
  let base: string;
  before(async () => {
    h = await createHarness();
    server = createServer(toNodeListener(h.portcullis));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await h.close();
  });

  it('issues a token over a real socket, and answers HEAD without a body', async () => {
    const res = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...SVC1) }, body: 'grant_type=client_credentials' });
    assert.equal(res.status, 200);
    const head = await fetch(`${base}/jwks`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });

  it('refuses a declared oversized body before reading it, and keeps serving', async () => {
    const big = 'grant_type=client_credentials&pad=' + 'a'.repeat(1024 * 1024);
    const outcome = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...SVC1) }, body: big }).then(
      async (res) => ({ status: res.status, body: await res.text() }),
      (err: unknown) => ({ status: 0, body: String(err) }),
    );
    if (outcome.status !== 0) {
      assert.equal(outcome.status, 413);
      assert.equal(JSON.parse(outcome.body).error, 'invalid_request');
    }
    const again = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...SVC1) }, body: 'grant_type=client_credentials' });
    assert.equal(again.status, 200);
  });

  it('a wrong content type is a clean 400 JSON error, never a stack trace', async () => {
    const res = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(res.status, 400);
    const text = await res.text();
    assert.doesNotMatch(text, /at |\.ts:/);
  });
});
