import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const run = promisify(execFile);

describe('README tour: examples/verify-token.ts', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await spawnServer({
      config: () => ({ clients: [{ client_id: 'tour', client_secret: 'tour-secret-0123456789-abcdefghijkl', grant_types: ['client_credentials'], scope: 'api:read' }] }),
    });
  });
  after(() => server.stop());

  it('verifies a token from the token endpoint against the served JWKS, and rejects a tampered one', async () => {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from('tour:tour-secret-0123456789-abcdefghijkl').toString('base64') },
      body: 'grant_type=client_credentials&scope=api:read',
    });
    assert.equal(res.status, 200);
    const { access_token: token } = (await res.json()) as { access_token: string };
    const ok = await run(process.execPath, ['--import', 'tsx', 'examples/verify-token.ts', server.issuer, token], { cwd: REPO_ROOT });
    const verdict = JSON.parse(ok.stdout) as { valid: boolean; header: { typ: string; alg: string }; claims: { client_id: string } };
    assert.equal(verdict.valid, true);
    assert.equal(verdict.header.typ, 'at+jwt');
    assert.equal(verdict.header.alg, 'ES256');
    assert.equal(verdict.claims.client_id, 'tour');
    const [h, p, s] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), scope: 'admin' })).toString('base64url')}.${s}`;
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'examples/verify-token.ts', server.issuer, tampered], { cwd: REPO_ROOT }), (err: { code?: number; stdout?: string }) => {
      assert.equal(err.code, 1);
      assert.equal(JSON.parse(err.stdout ?? '{}').valid, false);
      return true;
    });
  });
});
