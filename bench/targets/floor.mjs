/**
 * The floor: a bare node:http server that drains the request and answers a constant JSON body of
 * the size of a token response. It checks nothing and signs nothing: it shows what node:http plus
 * the load generator cost on this machine, the ceiling no token endpoint can pass.
 *
 * Environment: PORT, HOST (default 127.0.0.1).
 */
import { createServer } from 'node:http';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 0);
const body = JSON.stringify({
  access_token: 'x'.repeat(560),
  token_type: 'Bearer',
  expires_in: 3600,
  scope: 'api:read',
});
const headers = {
  'content-type': 'application/json;charset=UTF-8',
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'content-length': Buffer.byteLength(body),
};

const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.keepAliveTimeout = 5000;
server.listen(port, host, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
