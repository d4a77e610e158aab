import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { main } from '../../examples/jwt-bearer.js';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/jwt-bearer.ts', () => {
  it('trades the identity provider\'s assertion for an access token for alice', async () => {
    const { status, body } = await main();
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'reports:read');
    assert.equal(body.refresh_token, undefined, 'the client is not registered for refresh_token');
    const claims = JSON.parse(Buffer.from((body.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.client_id, 'batch-job');
    assert.equal(typeof claims.gid, 'string');
  });

  it('runs as a script', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/jwt-bearer.ts'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.match(out, /^200 /);
    assert.match(out, /access_token/);
  });
});
