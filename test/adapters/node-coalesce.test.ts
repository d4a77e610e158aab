/**
 * `toNodeListener(portcullis, { coalesceWrites: true })`, what the ready-to-run server uses: the
 * responses finished in one turn of the event loop are written together at its end. Nothing may be
 * lost, reordered or mixed up by that: pipelined requests on one connection, many connections at
 * once, and a response that fails to write in the middle of a batch.
 */
import assert from 'node:assert/strict';
import { createServer, Agent, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { toNodeListener } from '../../src/adapters/node-http.js';
import type { OAuthRequest, OAuthResponse } from '../../src/core/http.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { basic, HOST, memoryServer } from './servers.js';

const SVC = { id: 'svc', secret: 'svc-secret-0123456789abcdef' };
const TOKEN_BODY = 'grant_type=client_credentials&scope=api%3Aread';

/** Send `raw` on one connection and collect the status line and body of `count` responses, in order. */
function pipelined(port: number, raw: string, count: number): Promise<Array<{ status: number; body: string }>> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST);
    let buffer = Buffer.alloc(0);
    const out: Array<{ status: number; body: string }> = [];
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) break;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) break;
        out.push({ status: Number(head.split(' ')[1]), body: buffer.subarray(end + 4, end + 4 + length).toString('utf8') });
        buffer = buffer.subarray(end + 4 + length);
      }
      if (out.length === count) {
        socket.destroy();
        resolve(out);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no answer within 5 s after ${out.length} of ${count} responses`));
    });
    socket.on('close', () => {
      if (out.length < count) reject(new Error(`connection closed after ${out.length} of ${count} responses`));
    });
    socket.write(raw);
  });
}

function post(path: string, body: string, authorization: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\ncontent-type: application/x-www-form-urlencoded\r\n` +
    `authorization: ${authorization}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

function get(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
}

for (const coalesceWrites of [true, false]) {
  describe(`node:http listener, coalesceWrites ${coalesceWrites}`, () => {
    let server: Server;
    let portcullis: Portcullis;
    let port: number;
    const adapterErrors: unknown[] = [];

    before(async () => {
      server = createServer();
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      port = (server.address() as AddressInfo).port;
      const real = await memoryServer()(`http://${HOST}:${port}`);
      await real.clients.upsert({ client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read' });
      // /broken answers with a header value node:http refuses to write (a line break), so the write throws.
      portcullis = {
        ...real,
        handle: (req: OAuthRequest): Promise<OAuthResponse> =>
          req.path === '/broken'
            ? Promise.resolve({ status: 200, headers: { 'content-type': 'text/plain', 'x-bad': 'a\r\nb' }, body: 'never sent' })
            : real.handle(req),
      };
      server.on('request', toNodeListener(portcullis, { coalesceWrites, onError: (err) => adapterErrors.push(err) }));
    });

    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await portcullis.close();
    });

    it('answers pipelined requests on one connection in order, each with its own body', async () => {
      const auth = basic(SVC.id, SVC.secret);
      const raw = get('/jwks') + post('/token', TOKEN_BODY, auth) + get('/nowhere') + post('/token', TOKEN_BODY, basic(SVC.id, 'wrong')) + get('/.well-known/openid-configuration');
      const responses = await pipelined(port, raw, 5);
      assert.deepEqual(responses.map((r) => r.status), [200, 200, 404, 401, 200]);
      assert.ok(Array.isArray((JSON.parse(responses[0]!.body) as { keys: unknown[] }).keys));
      assert.equal((JSON.parse(responses[1]!.body) as { token_type: string }).token_type, 'Bearer');
      assert.equal((JSON.parse(responses[3]!.body) as { error: string }).error, 'invalid_client');
      assert.equal((JSON.parse(responses[4]!.body) as { issuer: string }).issuer, `http://${HOST}:${port}`);
    });

    it('answers 60 concurrent token requests over 10 keep-alive connections, every token distinct', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 10 });
      try {
        const one = (): Promise<{ status: number; body: string }> =>
          new Promise((resolve, reject) => {
            const req = httpRequest(
              { host: HOST, port, method: 'POST', path: '/token', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SVC.id, SVC.secret) } },
              (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (body += c));
                res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
              },
            );
            req.on('error', reject);
            req.end(TOKEN_BODY);
          });
        const results = await Promise.all(Array.from({ length: 60 }, one));
        assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
        const tokens = new Set(results.map((r) => (JSON.parse(r.body) as { access_token: string }).access_token));
        assert.equal(tokens.size, 60);
      } finally {
        agent.destroy();
      }
    });

    it('a response that cannot be written becomes a 500 without a stack, and the others of its batch still go out', async () => {
      adapterErrors.length = 0;
      const responses = await pipelined(port, get('/jwks') + get('/broken') + get('/jwks'), 3);
      assert.deepEqual(responses.map((r) => r.status), [200, 500, 200]);
      const error = JSON.parse(responses[1]!.body) as { error: string; error_description: string };
      assert.equal(error.error, 'server_error');
      assert.doesNotMatch(responses[1]!.body, /never sent|\bat \S+ \(|\.ts:\d+/);
      assert.equal(adapterErrors.length, 1, 'the adapter reports the failed write once');
    });
  });
}
