import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { pageHeaders, newNonce } from '../../src/interaction/headers.js';
import { escapeHtml, html, HtmlString, raw } from '../../src/interaction/html.js';
import { defaultPages, type PageRenderers } from '../../src/interaction/pages.js';

const HOSTILE = `<script>alert(1)</script>"'&`;
const HOSTILE_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;';
const NONCE = 'bm9uY2Utbm9uY2Utbm9uY2U=';
const shared = { nonce: NONCE, serviceName: 'Portcullis' };

/** A friendly rendering of every page (also written to test-artifacts/pages for humans to look at). */
const samples: Record<string, { page: keyof PageRenderers; render: () => HtmlString; passedIn: string[] }> = {
  login: {
    page: 'login',
    render: () => defaultPages.login({ ...shared, action: '/interaction/abc/login', csrfToken: 'csrf-123', clientName: 'Acme Dashboard' }),
    passedIn: [],
  },
  'login-error': {
    page: 'login',
    render: () =>
      defaultPages.login({
        ...shared,
        action: '/interaction/abc/login',
        csrfToken: 'csrf-123',
        clientName: 'Acme Dashboard',
        username: 'alice',
        error: 'The username or password is incorrect',
      }),
    passedIn: [],
  },
  consent: {
    page: 'consent',
    render: () =>
      defaultPages.consent({
        ...shared,
        action: '/interaction/abc/consent',
        csrfToken: 'csrf-123',
        clientName: 'Acme Dashboard',
        userName: 'alice@example.com',
        scopes: [
          { name: 'openid', description: 'Sign you in' },
          { name: 'profile', description: 'See your name and profile details' },
          { name: 'email', description: 'See your email address' },
          { name: 'offline_access', description: 'Stay connected when you are not using it' },
        ],
      }),
    passedIn: [],
  },
  error: {
    page: 'error',
    render: () =>
      defaultPages.error({ ...shared, error: 'invalid_request', description: 'The redirect_uri is not registered for this client.' }),
    passedIn: [],
  },
  formPost: {
    page: 'formPost',
    render: () =>
      defaultPages.formPost({
        ...shared,
        action: 'https://client.example/cb',
        fields: { code: 'SplxlOBeZQQYbYS6WxSbIA', state: 'af0ifjsldkj', iss: 'https://server.example' },
      }),
    passedIn: ['https://client.example/cb', 'https://server.example'],
  },
  logoutConfirm: {
    page: 'logoutConfirm',
    render: () => defaultPages.logoutConfirm({ ...shared, action: '/logout', csrfToken: 'csrf-123', clientName: 'Acme Dashboard' }),
    passedIn: [],
  },
  loggedOut: { page: 'loggedOut', render: () => defaultPages.loggedOut({ ...shared }), passedIn: [] },
  demoCallback: {
    page: 'demoCallback',
    render: () =>
      defaultPages.demoCallback({
        ...shared,
        code: 'SplxlOBeZQQYbYS6WxSbIA',
        state: 'af0ifjsldkj',
        iss: 'http://127.0.0.1:3000',
        tokenEndpoint: 'http://127.0.0.1:3000/token',
        curl:
          "curl -s http://127.0.0.1:3000/token -u demo:secret -d grant_type=authorization_code -d code=SplxlOBeZQQYbYS6WxSbIA -d redirect_uri=http://127.0.0.1:3000/demo/callback -d code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
      }),
    passedIn: ['http://127.0.0.1:3000/token', 'http://127.0.0.1:3000/demo/callback', 'http://127.0.0.1:3000'],
  },
  'demoCallback-error': {
    page: 'demoCallback',
    render: () =>
      defaultPages.demoCallback({
        ...shared,
        error: 'access_denied',
        errorDescription: 'The user denied the request',
        state: 'af0ifjsldkj',
        tokenEndpoint: 'http://127.0.0.1:3000/token',
      }),
    passedIn: ['http://127.0.0.1:3000/token'],
  },
};

/** Every page with every string prop set to HOSTILE. */
const hostile: Record<keyof PageRenderers, () => HtmlString> = {
  login: () => defaultPages.login({ ...shared, action: '/login', csrfToken: HOSTILE, clientName: HOSTILE, username: HOSTILE, error: HOSTILE }),
  consent: () =>
    defaultPages.consent({
      ...shared,
      action: '/consent',
      csrfToken: HOSTILE,
      clientName: HOSTILE,
      userName: HOSTILE,
      scopes: [{ name: HOSTILE, description: HOSTILE }],
    }),
  error: () => defaultPages.error({ ...shared, error: HOSTILE, description: HOSTILE }),
  formPost: () => defaultPages.formPost({ ...shared, action: `https://client.example/cb?x=${HOSTILE}`, fields: { code: HOSTILE, [HOSTILE]: 'x' } }),
  logoutConfirm: () => defaultPages.logoutConfirm({ ...shared, serviceName: HOSTILE, action: '/logout', csrfToken: HOSTILE, clientName: HOSTILE }),
  loggedOut: () => defaultPages.loggedOut({ ...shared, serviceName: HOSTILE }),
  demoCallback: () =>
    defaultPages.demoCallback({
      ...shared,
      code: HOSTILE,
      state: HOSTILE,
      iss: HOSTILE,
      error: HOSTILE,
      errorDescription: HOSTILE,
      tokenEndpoint: HOSTILE,
      curl: HOSTILE,
    }),
  deviceCode: () => defaultPages.deviceCode({ ...shared, action: '/device', csrfToken: HOSTILE, userCode: HOSTILE, error: HOSTILE }),
  deviceConfirm: () =>
    defaultPages.deviceConfirm({ ...shared, action: '/device/confirm', csrfToken: HOSTILE, clientName: HOSTILE, userName: HOSTILE, userCode: HOSTILE, scopes: [{ name: HOSTILE, description: HOSTILE }] }),
  deviceDone: () => defaultPages.deviceDone({ ...shared, serviceName: HOSTILE, approved: true, clientName: HOSTILE }),
};

const str = (h: HtmlString) => h.toString();

/** Attributes of every start tag named `tag`. */
function tags(doc: string, tag: string): Array<Record<string, string | true>> {
  const out: Array<Record<string, string | true>> = [];
  for (const m of doc.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'gi'))) {
    const attrs: Record<string, string | true> = {};
    for (const a of (m[1] ?? '').matchAll(/([a-z-]+)(?:="([^"]*)")?/gi)) {
      attrs[a[1]!.toLowerCase()] = a[2] ?? true;
    }
    out.push(attrs);
  }
  return out;
}

describe('html tagged template', () => {
  it('escapes all five special characters', () => {
    assert.equal(str(html`<p>${`& < > " '`}</p>`), '<p>&amp; &lt; &gt; &quot; &#39;</p>');
    assert.equal(escapeHtml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&#39;f');
    assert.equal(str(html`<a title="${HOSTILE}">`), `<a title="${HOSTILE_ESCAPED}">`);
  });

  it('nests HtmlString without double escaping', () => {
    const inner = html`<b>${'x & y'}</b>`;
    assert.ok(inner instanceof HtmlString);
    assert.equal(str(html`<p>${inner}</p>`), '<p><b>x &amp; y</b></p>');
    assert.equal(str(html`${html`${html`${'<'}`}`}`), '&lt;');
    assert.equal(str(html`${raw('<br>')}`), '<br>');
    assert.equal(`${html`<i>${'"'}</i>`}`, '<i>&quot;</i>', 'toString gives the markup');
  });

  it('joins arrays, escaping each element unless it is an HtmlString', () => {
    assert.equal(str(html`<ul>${['<a>', html`<li>ok</li>`, 'b&']}</ul>`), '<ul>&lt;a&gt;<li>ok</li>b&amp;</ul>');
    assert.equal(str(html`${[1, 2].map((n) => html`<li>${n}</li>`)}`), '<li>1</li><li>2</li>');
    assert.equal(str(html`${[['<'], ['>']]}`), '&lt;&gt;', 'nested arrays');
    assert.equal(str(html`[${[]}]`), '[]');
  });

  it('renders null, undefined and false as empty, other values as escaped strings', () => {
    assert.equal(str(html`a${null}b${undefined}c${false}d`), 'abcd');
    assert.equal(str(html`${0}|${42}|${true}`), '0|42|true');
    assert.equal(str(html`${{ toString: () => '<x>' }}`), '&lt;x&gt;');
  });
});

describe('default pages', () => {
  for (const [page, render] of Object.entries(hostile)) {
    it(`${page}: escapes hostile values`, () => {
      const doc = str(render());
      assert.ok(!doc.includes(HOSTILE), 'the raw hostile string never appears');
      assert.ok(!doc.includes('<script>alert'), 'no injected script element');
      assert.ok(doc.includes(HOSTILE_ESCAPED), 'the escaped string does appear');
    });
  }

  for (const [name, { render, passedIn }] of Object.entries(samples)) {
    it(`${name}: a complete, accessible document that runs under the strict CSP`, () => {
      const doc = str(render());
      assert.match(doc, /^<!doctype html>\n<html lang="en">/);
      assert.match(doc, /<meta charset="utf-8">/);
      assert.match(doc, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
      assert.match(doc, /<title>[^<]+ – Portcullis<\/title>/);
      assert.match(doc, /<main[ >]/);
      assert.match(doc, /<h1>/);

      // Exactly one <style>, and every <style>/<script> carries the nonce.
      assert.equal(tags(doc, 'style').length, 1);
      for (const el of [...tags(doc, 'style'), ...tags(doc, 'script')]) assert.equal(el.nonce, NONCE);
      assert.match(doc, /:focus(-visible)?\{outline:3px solid/, 'visible focus style');
      assert.match(doc, /color:#1a1a1a/);

      // No inline styles, no inline event handlers, no javascript: URLs.
      assert.ok(!doc.includes(' style="'));
      assert.doesNotMatch(doc, /\son[a-z]+\s*=/i);
      assert.doesNotMatch(doc, /javascript:/i);

      // No external resources of any kind.
      assert.doesNotMatch(doc, /<(link|img|iframe|object|embed|audio|video|source|base)\b/i);
      assert.doesNotMatch(doc, /\s(src|href|srcset|poster|xmlns)=/i);
      assert.doesNotMatch(doc, /url\(|@import/i);
      let rest = doc;
      for (const p of passedIn) rest = rest.replaceAll(escapeHtml(p), '');
      assert.doesNotMatch(rest, /https?:\/\//i, 'the only URLs are the ones passed in');

      // Every visible input has a <label for> pointing at it; ids are unique.
      const ids = tags(doc, '[a-z]+').flatMap((t) => (typeof t.id === 'string' ? [t.id] : []));
      assert.equal(new Set(ids).size, ids.length, 'ids are unique');
      const labelled = new Set(tags(doc, 'label').map((l) => l.for));
      for (const input of tags(doc, 'input').filter((i) => i.type !== 'hidden')) {
        assert.equal(typeof input.id, 'string');
        assert.ok(labelled.has(input.id as string), `label for #${String(input.id)}`);
      }
      // aria-describedby points at an element that exists.
      for (const m of doc.matchAll(/aria-describedby="([^"]+)"/g)) assert.ok(ids.includes(m[1]!));
      // Every button is a submit button with visible text.
      for (const m of doc.matchAll(/<button\b([^>]*)>([^<]*)<\/button>/g)) {
        assert.match(m[1]!, /type="submit"/);
        assert.ok(m[2]!.trim().length > 0);
      }
      // Every form posts, and carries a CSRF token unless it is the form_post response.
      for (const form of tags(doc, 'form')) assert.equal(form.method, 'post');
    });
  }

  it('login: exact field names, labels, csrf, autocomplete, autofocus', () => {
    const doc = str(samples.login!.render());
    assert.match(doc, /<h1>Sign in<\/h1>/);
    assert.match(doc, /to continue to <strong>Acme Dashboard<\/strong>/);
    const [form, ...more] = tags(doc, 'form');
    assert.equal(more.length, 0);
    assert.deepEqual(form, { method: 'post', action: '/interaction/abc/login' });
    const inputs = tags(doc, 'input');
    assert.deepEqual(
      inputs.map((i) => i.name),
      ['csrf', 'username', 'password'],
    );
    assert.deepEqual(inputs[0], { type: 'hidden', name: 'csrf', value: 'csrf-123' });
    const [, user, pass] = inputs;
    assert.equal(user!.id, 'username');
    assert.equal(user!.autocomplete, 'username');
    assert.equal(user!.required, true);
    assert.equal(user!.autofocus, true);
    assert.equal(user!.type, undefined, 'a text input');
    assert.equal(pass!.id, 'password');
    assert.equal(pass!.type, 'password');
    assert.equal(pass!.autocomplete, 'current-password');
    assert.equal(pass!.required, true);
    assert.match(doc, /<label for="username">Username<\/label>/);
    assert.match(doc, /<label for="password">Password<\/label>/);
    assert.match(doc, /<button type="submit">Sign in<\/button>/);
    assert.doesNotMatch(doc, /role="alert"/);
    assert.doesNotMatch(doc, / aria-(invalid|describedby)="/);
  });

  it('login: the error is an alert described-by the password input; login_hint prefills the username', () => {
    const doc = str(samples['login-error']!.render());
    assert.match(doc, /<div id="login-error" class="alert" role="alert">The username or password is incorrect<\/div>/);
    const [, user, pass] = tags(doc, 'input');
    assert.equal(pass!['aria-describedby'], 'login-error');
    assert.equal(pass!['aria-invalid'], 'true');
    assert.equal(user!['aria-describedby'], 'login-error');
    assert.equal(user!.value, 'alice');
    // With the username already filled in, focus goes to the password.
    assert.equal(user!.autofocus, undefined);
    assert.equal(pass!.autofocus, true);
  });

  it('consent: both decision buttons with exact name/value, every scope, csrf', () => {
    const doc = str(samples.consent!.render());
    assert.match(doc, /<h1>Acme Dashboard wants to access your account<\/h1>/);
    assert.match(doc, /Signed in as <strong>alice@example\.com<\/strong>/);
    assert.ok(doc.includes('<button type="submit" name="decision" value="approve">Allow</button>'));
    assert.ok(doc.includes('<button type="submit" name="decision" value="deny">Deny</button>'));
    assert.equal(tags(doc, 'form').length, 1);
    assert.deepEqual(tags(doc, 'input'), [{ type: 'hidden', name: 'csrf', value: 'csrf-123' }]);
    const list = /<ul\b[^>]*>([\s\S]*?)<\/ul>/.exec(doc)?.[1] ?? '';
    for (const [name, description] of [
      ['openid', 'Sign you in'],
      ['profile', 'See your name and profile details'],
      ['email', 'See your email address'],
      ['offline_access', 'Stay connected when you are not using it'],
    ]) {
      assert.ok(list.includes(`<li>${description}<br><code>${name}</code></li>`), name);
    }
    assert.equal(list.match(/<li>/g)?.length, 4);
  });

  it('consent: no scopes still renders a decision form', () => {
    const doc = str(defaultPages.consent({ ...shared, action: '/c', csrfToken: 't', clientName: 'App', userName: 'u', scopes: [] }));
    assert.doesNotMatch(doc, /<ul/);
    assert.match(doc, /value="approve"/);
  });

  it('error: heading, description, code, and no links back', () => {
    const doc = str(samples.error!.render());
    assert.match(doc, /<h1>Something went wrong<\/h1>/);
    assert.match(doc, /The redirect_uri is not registered for this client\./);
    assert.match(doc, /<code>invalid_request<\/code>/);
    assert.match(doc, /close this page/);
    assert.doesNotMatch(doc, /<a\b|<form\b/);
  });

  it('formPost: a hidden input per field, a noscript Continue button, and the nonce on the script', () => {
    const doc = str(samples.formPost!.render());
    assert.deepEqual(tags(doc, 'form'), [{ method: 'post', action: 'https://client.example/cb' }]);
    assert.deepEqual(tags(doc, 'input'), [
      { type: 'hidden', name: 'code', value: 'SplxlOBeZQQYbYS6WxSbIA' },
      { type: 'hidden', name: 'state', value: 'af0ifjsldkj' },
      { type: 'hidden', name: 'iss', value: 'https://server.example' },
    ]);
    assert.match(doc, /<noscript>[\s\S]*<button type="submit">Continue<\/button>[\s\S]*<\/noscript>/);
    assert.ok(doc.includes(`<script nonce="${NONCE}">document.forms[0].submit()</script>`));
    assert.match(doc, /Redirecting…/);
  });

  it('formPost: escapes field names and values', () => {
    const doc = str(defaultPages.formPost({ ...shared, action: 'https://c.example/cb', fields: { 'a"b': 'x"><script>' } }));
    assert.ok(doc.includes('<input type="hidden" name="a&quot;b" value="x&quot;&gt;&lt;script&gt;">'));
  });

  it('refuses javascript:, data: and vbscript: form actions', () => {
    for (const action of ['javascript:alert(1)', ' JavaScript:alert(1)', 'data:text/html,x', 'vbscript:x']) {
      assert.throws(() => defaultPages.formPost({ ...shared, action, fields: {} }), TypeError);
      assert.throws(() => defaultPages.login({ ...shared, action, csrfToken: 't', clientName: 'c' }), TypeError);
    }
  });

  it('logoutConfirm: exact decision buttons, csrf, with or without a client name', () => {
    const doc = str(samples.logoutConfirm!.render());
    assert.match(doc, /<h1>Sign out\?<\/h1>/);
    assert.match(doc, /<strong>Acme Dashboard<\/strong> is asking to sign you out of Portcullis/);
    assert.ok(doc.includes('<button type="submit" name="decision" value="logout">Sign out</button>'));
    assert.ok(doc.includes('<button type="submit" name="decision" value="cancel">Stay signed in</button>'));
    assert.deepEqual(tags(doc, 'input'), [{ type: 'hidden', name: 'csrf', value: 'csrf-123' }]);
    const anonymous = str(defaultPages.logoutConfirm({ ...shared, action: '/logout', csrfToken: 't' }));
    assert.match(anonymous, /Do you want to sign out of Portcullis\?/);
  });

  it('loggedOut: says so', () => {
    assert.match(str(samples.loggedOut!.render()), /<h1>You are signed out<\/h1>/);
  });

  it('demoCallback: what arrived in a <dl>, the curl command in <pre><code>', () => {
    const doc = str(samples.demoCallback!.render());
    assert.match(doc, /<dt>code<\/dt><dd><code>SplxlOBeZQQYbYS6WxSbIA<\/code><\/dd>/);
    assert.match(doc, /<dt>state<\/dt><dd><code>af0ifjsldkj<\/code><\/dd>/);
    assert.match(doc, /<dt>iss<\/dt><dd><code>http:\/\/127\.0\.0\.1:3000<\/code><\/dd>/);
    assert.doesNotMatch(doc, /<dt>error/);
    assert.match(doc, /<pre><code>curl -s http:\/\/127\.0\.0\.1:3000\/token [^<]+<\/code><\/pre>/);
    assert.match(doc, /Token endpoint: <code>http:\/\/127\.0\.0\.1:3000\/token<\/code>/);

    const err = str(samples['demoCallback-error']!.render());
    assert.match(err, /<dt>error<\/dt><dd><code>access_denied<\/code><\/dd>/);
    assert.match(err, /<dt>error_description<\/dt><dd><code>The user denied the request<\/code><\/dd>/);
    assert.match(err, /role="alert"/);
    assert.doesNotMatch(err, /<pre>|<dt>code/);

    const empty = str(defaultPages.demoCallback({ ...shared, tokenEndpoint: '/token' }));
    assert.match(empty, /No authorization response parameters were received/);
    assert.doesNotMatch(empty, /<dl>/);
  });

  it('lang comes from ui_locales; malformed values fall back to en', () => {
    const page = (lang: string | undefined) => str(defaultPages.loggedOut({ ...shared, lang }));
    assert.match(page('fr'), /<html lang="fr">/);
    assert.match(page('fr-CA fr en'), /<html lang="fr-CA">/);
    assert.match(page('"><x  de'), /<html lang="de">/);
    assert.match(page(HOSTILE), /<html lang="en">/);
    assert.match(page(''), /<html lang="en">/);
    assert.match(page(undefined), /<html lang="en">/);
  });

  it('renders every page to test-artifacts/pages/', async () => {
    const dir = new URL('../../test-artifacts/pages/', import.meta.url);
    await mkdir(dir, { recursive: true });
    for (const [name, { render }] of Object.entries(samples)) {
      await writeFile(new URL(`${name}.html`, dir), str(render()));
    }
  });
});

describe('pageHeaders', () => {
  it('returns the security headers and the exact CSP', () => {
    assert.deepEqual(pageHeaders('abc123=='), {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy':
        "default-src 'none'; style-src 'nonce-abc123=='; script-src 'nonce-abc123=='; img-src 'self' data:; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    });
  });

  it('adds extra form-action origins (deduplicated, origin only)', () => {
    const csp = pageHeaders('n', { formAction: ['https://client.example/cb?x=1', 'https://client.example/other', 'http://localhost:8080/'] })[
      'content-security-policy'
    ];
    assert.equal(
      csp,
      "default-src 'none'; style-src 'nonce-n'; script-src 'nonce-n'; img-src 'self' data:; " +
        "form-action 'self' https://client.example http://localhost:8080; frame-ancestors 'none'; base-uri 'none'",
    );
  });

  it('refuses values that could inject directives', () => {
    assert.throws(() => pageHeaders("x'; script-src *"), TypeError);
    assert.throws(() => pageHeaders(''), TypeError);
    assert.throws(() => pageHeaders('n', { formAction: ['not a url'] }), TypeError);
    assert.throws(() => pageHeaders('n', { formAction: ['javascript:alert(1)'] }), TypeError);
    assert.throws(() => pageHeaders('n', { formAction: ['com.example.app:/cb'] }), TypeError);
  });

  it('newNonce: 16 random bytes, base64, usable in pageHeaders', () => {
    const a = newNonce();
    const b = newNonce();
    assert.notEqual(a, b);
    assert.match(a, /^[A-Za-z0-9+/]{22}==$/);
    assert.equal(Buffer.from(a, 'base64').length, 16);
    assert.ok((pageHeaders(a)['content-security-policy'] ?? '').includes(`'nonce-${a}'`));
  });
});
