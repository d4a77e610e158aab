import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ACCESS_TOKEN_TYPE, ORDERS_API, claimsOf, main } from '../../examples/token-exchange.js';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/token-exchange.ts', () => {
  it('the gateway gets a token for the orders API, for alice, with act naming the gateway', async () => {
    const { status, body } = await main();
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'orders:read');
    const claims = claimsOf(body.access_token as string);
    assert.equal(claims.aud, ORDERS_API);
    assert.equal(claims.client_id, 'gateway');
    assert.deepEqual(claims.act, { sub: 'gateway' });
    assert.notEqual(claims.sub, 'gateway');
  });

  it('runs as a script', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/token-exchange.ts'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.match(out, /^200 /);
    assert.match(out, /act: \{ sub: 'gateway' \}/);
  });
});
