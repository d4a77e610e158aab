import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { magicCodes, magicLinkGrant } from '../../examples/custom-grant.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { assertOAuthError, assertTokenResponse } from '../helpers/harness.js';

describe('examples/custom-grant.ts', () => {
  it('a custom grant is dispatched, advertised, single-use, and refused to clients not registered for it', async () => {
    const server = await createPortcullis({ issuer: 'http://127.0.0.1:3000', storage: createMemoryStorage(), customGrants: [magicLinkGrant] });
    try {
      await server.clients.upsert({ client_id: 'app', token_endpoint_auth_method: 'none', grant_types: [magicLinkGrant.type, 'refresh_token'], scope: 'api:read' });
      await server.clients.upsert({ client_id: 'other', token_endpoint_auth_method: 'none', grant_types: ['refresh_token'] });
      await server.users.upsert({ username: 'alice', password: 'alice-password' });
      magicCodes.set('abc123', 'alice');
      const post = (form: Record<string, string>) =>
        server.handle({ method: 'POST', path: '/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
      assert.ok((server.metadata().grant_types_supported as string[]).includes(magicLinkGrant.type));
      assertOAuthError(await post({ grant_type: magicLinkGrant.type, code: 'abc123', client_id: 'other' }), 400, 'unauthorized_client');
      const body = assertTokenResponse(await post({ grant_type: magicLinkGrant.type, code: 'abc123', client_id: 'app' }));
      assert.equal(body.scope, 'api:read');
      assert.equal(typeof body.refresh_token, 'string');
      assertOAuthError(await post({ grant_type: magicLinkGrant.type, code: 'abc123', client_id: 'app' }), 400, 'invalid_grant');
      assertOAuthError(await post({ grant_type: magicLinkGrant.type, client_id: 'app' }), 400, 'invalid_request');
    } finally {
      await server.close();
    }
  });

  it('runs as a script', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/custom-grant.ts'], { encoding: 'utf8' });
    assert.match(out, /^200 /);
    assert.match(out, /access_token/);
  });
});
