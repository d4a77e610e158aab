import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { html } from '../../src/interaction/html.js';
import { createHarness } from '../helpers/harness.js';

describe('hosted pages can be replaced by the app (render hooks)', () => {
  it('a custom login page receives the form action and CSRF token and is served with the page security headers', async () => {
    const seen: { action?: string; csrf?: string } = {};
    const h = await createHarness({
      serviceName: 'Acme ID',
      pages: {
        login: (props) => {
          seen.action = props.action;
          seen.csrf = props.csrfToken;
          return html`<!doctype html><title>${props.serviceName}</title><form method="post" action="${props.action}"><input type="hidden" name="csrf" value="${props.csrfToken}"><p>custom login for ${props.clientName}</p></form>`;
        },
      },
    });
    try {
      await h.portcullis.clients.upsert({ client_id: 'brand', client_secret: 'brand-secret-012345', client_name: 'Brand <App>', grant_types: ['authorization_code'], redirect_uris: ['https://brand.example.com/cb'] });
      const query = new URLSearchParams({ response_type: 'code', client_id: 'brand', redirect_uri: 'https://brand.example.com/cb', code_challenge: createHash('sha256').update('v'.repeat(43)).digest('base64url'), code_challenge_method: 'S256' }).toString();
      const start = await h.portcullis.handle({ method: 'GET', path: '/authorize', query, headers: {} });
      assert.equal(start.status, 302);
      const cookie = (start.setCookies ?? []).map((c) => c.split(';')[0]).join('; ');
      const page = await h.portcullis.handle({ method: 'GET', path: new URL(start.headers.location!).pathname, query: '', headers: { cookie } });
      assert.equal(page.status, 200);
      assert.match(page.body, /custom login for Brand &lt;App&gt;/);
      assert.match(page.body, /<title>Acme ID<\/title>/);
      assert.ok(seen.action?.endsWith('/login'));
      assert.ok((seen.csrf ?? '').length > 20);
      assert.equal(page.headers['x-frame-options'], 'DENY');
      assert.match(page.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
      // The default consent page is still used.
      assert.equal(typeof seen.action, 'string');
    } finally {
      await h.close();
    }
  });
});
