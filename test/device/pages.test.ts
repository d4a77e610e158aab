/**
 * The device flow's page renderers: structure, accessibility, escaping and CSP-compatibility, like the
 * other hosted pages (test/interaction/pages.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { escapeHtml, type HtmlString } from '../../src/interaction/html.js';
import { defaultPages } from '../../src/interaction/pages.js';

const HOSTILE = `<script>alert(1)</script>"'&`;
const HOSTILE_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;';
const NONCE = 'bm9uY2Utbm9uY2Utbm9uY2U=';
const shared = { nonce: NONCE, serviceName: 'Portcullis' };

const samples: Record<string, () => HtmlString> = {
  'device-code': () => defaultPages.deviceCode({ ...shared, action: '/device', csrfToken: 'csrf-123' }),
  'device-code-prefilled': () => defaultPages.deviceCode({ ...shared, action: '/device', csrfToken: 'csrf-123', userCode: 'BCDF-GHJK' }),
  'device-code-error': () =>
    defaultPages.deviceCode({ ...shared, action: '/device', csrfToken: 'csrf-123', userCode: 'BCDF-GHJK', error: 'That code is not valid. Check the code shown on your device and try again.' }),
  'device-confirm': () =>
    defaultPages.deviceConfirm({
      ...shared,
      action: '/device/confirm',
      csrfToken: 'BCDFGHJK.mac',
      clientName: 'Living Room TV',
      userName: 'alice@example.com',
      userCode: 'BCDF-GHJK',
      scopes: [
        { name: 'openid', description: 'Sign you in with your account' },
        { name: 'api:read', description: 'Read your data' },
      ],
    }),
  'device-done': () => defaultPages.deviceDone({ ...shared, approved: true, clientName: 'Living Room TV' }),
  'device-denied': () => defaultPages.deviceDone({ ...shared, approved: false, clientName: 'Living Room TV' }),
};

const hostile: Record<string, () => HtmlString> = {
  deviceCode: () => defaultPages.deviceCode({ ...shared, serviceName: HOSTILE, action: '/device', csrfToken: HOSTILE, userCode: HOSTILE, error: HOSTILE }),
  deviceConfirm: () =>
    defaultPages.deviceConfirm({
      ...shared,
      serviceName: HOSTILE,
      action: '/device/confirm',
      csrfToken: HOSTILE,
      clientName: HOSTILE,
      userName: HOSTILE,
      userCode: HOSTILE,
      scopes: [{ name: HOSTILE, description: HOSTILE }],
    }),
  deviceConfirmNoScopes: () => defaultPages.deviceConfirm({ ...shared, action: '/c', csrfToken: 't', clientName: HOSTILE, userName: 'u', userCode: 'BCDF-GHJK', scopes: [] }),
  deviceDone: () => defaultPages.deviceDone({ ...shared, serviceName: HOSTILE, approved: true, clientName: HOSTILE }),
  deviceDenied: () => defaultPages.deviceDone({ ...shared, approved: false, clientName: HOSTILE }),
};

function tags(doc: string, tag: string): Array<Record<string, string | true>> {
  const out: Array<Record<string, string | true>> = [];
  for (const m of doc.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'gi'))) {
    const attrs: Record<string, string | true> = {};
    for (const a of (m[1] ?? '').matchAll(/([a-z_-]+)(?:="([^"]*)")?/gi)) attrs[a[1]!.toLowerCase()] = a[2] ?? true;
    out.push(attrs);
  }
  return out;
}

describe('device pages', () => {
  for (const [name, render] of Object.entries(hostile)) {
    it(`${name}: escapes hostile values`, () => {
      const doc = render().toString();
      assert.ok(!doc.includes(HOSTILE), 'the raw hostile string never appears');
      assert.ok(!doc.includes('<script>alert'), 'no injected script element');
      assert.ok(doc.includes(HOSTILE_ESCAPED), 'the escaped string does appear');
    });
  }

  for (const [name, render] of Object.entries(samples)) {
    it(`${name}: a complete, accessible document that runs under the strict CSP`, () => {
      const doc = render().toString();
      assert.match(doc, /^<!doctype html>\n<html lang="en">/);
      assert.match(doc, /<title>[^<]+ – Portcullis<\/title>/);
      assert.equal(tags(doc, 'style').length, 1);
      for (const el of [...tags(doc, 'style'), ...tags(doc, 'script')]) assert.equal(el.nonce, NONCE);
      assert.equal(tags(doc, 'script').length, 0, 'no script at all');
      assert.ok(!doc.includes(' style="'));
      assert.doesNotMatch(doc, /\son[a-z]+\s*=/i);
      assert.doesNotMatch(doc, /<(link|img|iframe|object|embed|base|a)\b/i);
      assert.doesNotMatch(doc, /https?:\/\//i);
      const ids = tags(doc, '[a-z0-9]+').flatMap((t) => (typeof t.id === 'string' ? [t.id] : []));
      assert.equal(new Set(ids).size, ids.length, 'ids are unique');
      const labelled = new Set(tags(doc, 'label').map((l) => l.for));
      for (const input of tags(doc, 'input').filter((i) => i.type !== 'hidden')) assert.ok(labelled.has(input.id as string), `label for #${String(input.id)}`);
      for (const m of doc.matchAll(/aria-describedby="([^"]+)"/g)) assert.ok(ids.includes(m[1]!));
      for (const m of doc.matchAll(/<button\b([^>]*)>([^<]*)<\/button>/g)) assert.match(m[1]!, /type="submit"/);
      for (const form of tags(doc, 'form')) {
        assert.equal(form.method, 'post');
        assert.ok(doc.includes('<input type="hidden" name="csrf"'), 'every form carries the CSRF token');
      }
    });
  }

  it('deviceCode: one form, csrf and user_code fields, labelled, autofocus on the empty input', () => {
    const doc = samples['device-code']!().toString();
    assert.match(doc, /<h1>Connect a device<\/h1>/);
    assert.deepEqual(tags(doc, 'form'), [{ method: 'post', action: '/device' }]);
    const inputs = tags(doc, 'input');
    assert.deepEqual(inputs.map((i) => i.name), ['csrf', 'user_code']);
    assert.deepEqual(inputs[0], { type: 'hidden', name: 'csrf', value: 'csrf-123' });
    const code = inputs[1]!;
    assert.equal(code.id, 'user_code');
    assert.equal(code.type, undefined, 'a text input');
    assert.equal(code.required, true);
    assert.equal(code.autofocus, true);
    assert.equal(code.autocomplete, 'off');
    assert.equal(code.value, undefined);
    assert.match(doc, /<label for="user_code">Code<\/label>/);
    assert.doesNotMatch(doc, /role="alert"/);
  });

  it('deviceCode: a prefilled code moves the focus to Continue; an error is an alert linked to the input', () => {
    const prefilled = samples['device-code-prefilled']!().toString();
    assert.equal(tags(prefilled, 'input')[1]!.value, 'BCDF-GHJK');
    assert.equal(tags(prefilled, 'input')[1]!.autofocus, undefined);
    assert.match(prefilled, /<button type="submit" autofocus>Continue<\/button>/);
    const error = samples['device-code-error']!().toString();
    assert.match(error, /<div id="code-error" class="alert" role="alert">That code is not valid/);
    const input = tags(error, 'input')[1]!;
    assert.equal(input['aria-invalid'], 'true');
    assert.equal(input['aria-describedby'], 'code-error');
  });

  it('deviceConfirm: client, user, the code to compare, every scope, both decisions, csrf only', () => {
    const doc = samples['device-confirm']!().toString();
    assert.match(doc, /<h1>Allow Living Room TV on your device\?<\/h1>/);
    assert.match(doc, /Signed in as <strong>alice@example\.com<\/strong>/);
    assert.match(doc, /<p class="user-code">BCDF-GHJK<\/p>/);
    assert.ok(doc.includes('<li>Sign you in with your account<br><code>openid</code></li>'));
    assert.ok(doc.includes('<li>Read your data<br><code>api:read</code></li>'));
    assert.ok(doc.includes('<button type="submit" name="decision" value="approve">Allow</button>'));
    assert.ok(doc.includes('<button type="submit" name="decision" value="deny">Deny</button>'));
    assert.deepEqual(tags(doc, 'input'), [{ type: 'hidden', name: 'csrf', value: 'BCDFGHJK.mac' }]);
    assert.match(doc, /device you own/);
  });

  it('deviceDone: approved says return to your device; denied says no access', () => {
    const done = samples['device-done']!().toString();
    assert.match(done, /<h1>Device connected<\/h1>/);
    assert.match(done, /return to your device/);
    assert.doesNotMatch(done, /<form/);
    const denied = samples['device-denied']!().toString();
    assert.match(denied, /<h1>Access denied<\/h1>/);
    assert.match(denied, /was not given access/);
  });

  it('refuses script form actions', () => {
    assert.throws(() => defaultPages.deviceCode({ ...shared, action: 'javascript:alert(1)', csrfToken: 't' }), TypeError);
    assert.throws(() => defaultPages.deviceConfirm({ ...shared, action: 'data:text/html,x', csrfToken: 't', clientName: 'c', userName: 'u', userCode: 'BCDF-GHJK', scopes: [] }), TypeError);
  });

  it('renders every device page to test-artifacts/pages/', async () => {
    const dir = new URL('../../test-artifacts/pages/', import.meta.url);
    await mkdir(dir, { recursive: true });
    for (const [name, render] of Object.entries(samples)) await writeFile(new URL(`${name}.html`, dir), render().toString());
    assert.ok(escapeHtml('<') === '&lt;');
  });
});
