/** examples/builders/serve.ts: the README's command serves an example over Hapi. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { assertTokens, basic, freePort, postForm } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/builders/serve.ts', () => {
  let child: ChildProcess | undefined;
  after(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGTERM');
  });

  it('serves the seed client-credentials example on the given port', { timeout: 60_000 }, async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', 'examples/builders/serve.ts', 'token-route-client-credentials', String(port)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child!.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('listening at')) resolve();
      });
      child!.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    assert.match(stderr, /NO CLIENTS ARE REGISTERED/, 'the delegated-mode banner is printed');
    const body = assertTokens(await postForm(`http://127.0.0.1:${port}`, '/oauth2/token', { grant_type: 'client_credentials' }, basic('svc', 'secret')));
    assert.equal(body.access_token, 'generated-access-token');
  });
});
