/**
 * Default server-rendered pages for the hosted login, consent and logout flows, and the device flow's
 * verification pages.
 *
 * Every renderer is a pure function of its props returning a complete HTML5 document. The pages work
 * without JavaScript (the form_post page only uses a nonce'd script to save a click), load no external
 * resources, carry all CSS in one nonce'd <style> block, and use no inline event handlers or style
 * attributes, so they run under the strict CSP of `pageHeaders()`. Every value is escaped by `html`.
 *
 * Accessibility: `lang` on <html>, a viewport meta, every input labelled with <label for>, a visible focus
 * ring, text #1a1a1a on white, buttons ≥ 4.5:1, and errors announced with role="alert" and linked to their
 * inputs with aria-describedby.
 */
import { html, raw, type HtmlString } from './html.js';

/** Props shared by every page. */
export interface BasePageProps {
  /** CSP nonce for the page's <style> (and <script>) element. */
  nonce: string;
  /** Language of the page, from `ui_locales` (the first well-formed tag is used). Default 'en'. */
  lang?: string;
  /** The name of this authorization server, shown on every page, e.g. 'Portcullis'. */
  serviceName: string;
}

export interface LoginPageProps extends BasePageProps {
  /** URL the form POSTs to. */
  action: string;
  csrfToken: string;
  clientName: string;
  /** Prefilled username (login_hint). */
  username?: string;
  /** Shown above the form and linked to the password input, e.g. 'The username or password is incorrect'. */
  error?: string;
}

export interface ConsentScope {
  name: string;
  description: string;
}

export interface ConsentPageProps extends BasePageProps {
  action: string;
  csrfToken: string;
  clientName: string;
  /** Who is signed in. */
  userName: string;
  scopes: ConsentScope[];
}

export interface ErrorPageProps extends BasePageProps {
  /** OAuth error code, e.g. 'invalid_request'. */
  error: string;
  description: string;
}

export interface FormPostPageProps extends BasePageProps {
  /** The client's (validated) redirect_uri. */
  action: string;
  /** code, state, iss — or error, error_description, state, iss. */
  fields: Record<string, string>;
}

export interface LogoutConfirmPageProps extends BasePageProps {
  action: string;
  csrfToken: string;
  clientName?: string;
}

export type LoggedOutPageProps = BasePageProps;

export interface DemoCallbackPageProps extends BasePageProps {
  code?: string;
  state?: string;
  iss?: string;
  error?: string;
  errorDescription?: string;
  tokenEndpoint: string;
  /** A ready-to-run curl command that exchanges the code. */
  curl?: string;
}

/** The device flow's code form (RFC 8628 §3.3): the user types the code shown on the device. */
export interface DeviceCodePageProps extends BasePageProps {
  /** URL the form POSTs to. */
  action: string;
  csrfToken: string;
  /** Prefilled code (from `verification_uri_complete`, or what was typed before an error). */
  userCode?: string;
  /** Shown above the form and linked to the input, e.g. 'That code is not valid…'. */
  error?: string;
}

/** The device flow's confirmation: which client, which scopes, and the code to compare with the device. */
export interface DeviceConfirmPageProps extends BasePageProps {
  action: string;
  /** Opaque; it also carries the code, so the form needs no other hidden field. */
  csrfToken: string;
  clientName: string;
  /** Who is signed in. */
  userName: string;
  /** The code as shown on the device, e.g. 'BCDF-GHJK'. */
  userCode: string;
  scopes: ConsentScope[];
}

/** After the decision: approved (return to the device) or denied. */
export interface DeviceDonePageProps extends BasePageProps {
  approved: boolean;
  clientName: string;
}

export interface PageRenderers {
  login(props: LoginPageProps): HtmlString;
  consent(props: ConsentPageProps): HtmlString;
  error(props: ErrorPageProps): HtmlString;
  formPost(props: FormPostPageProps): HtmlString;
  logoutConfirm(props: LogoutConfirmPageProps): HtmlString;
  loggedOut(props: LoggedOutPageProps): HtmlString;
  demoCallback(props: DemoCallbackPageProps): HtmlString;
  deviceCode(props: DeviceCodePageProps): HtmlString;
  deviceConfirm(props: DeviceConfirmPageProps): HtmlString;
  deviceDone(props: DeviceDonePageProps): HtmlString;
}

// Contrast on white (WCAG 2.x): text #1a1a1a 17.4:1, muted #4b5563 7.6:1, primary button white on
// #1d4ed8 6.7:1 (hover #1e40af 8.7:1), error text #991b1b on #fef2f2 7.6:1, input border #6b7280 4.8:1 and
// focus ring #1d4ed8 6.7:1 (≥ 3:1 for UI parts; the ring is offset 2px so it sits on white, also on buttons).
const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:2rem 1rem;background:#f3f4f6;color:#1a1a1a;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif;font-size:1rem;line-height:1.5}
main{width:100%;max-width:26rem;background:#fff;border:1px solid #d1d5db;border-radius:12px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
main.wide{max-width:44rem}
.brand{margin:0 0 1.5rem;font-size:.875rem;font-weight:600;letter-spacing:.02em;color:#4b5563}
h1{margin:0 0 .5rem;font-size:1.5rem;line-height:1.25;font-weight:600;overflow-wrap:anywhere}
h2{margin:1.75rem 0 .5rem;font-size:1.125rem;font-weight:600}
p{margin:0 0 1rem}
.lead{color:#4b5563;margin-bottom:1.5rem;overflow-wrap:anywhere}
.lead strong,.who strong{color:#1a1a1a;font-weight:600}
.muted{color:#4b5563;font-size:.875rem}
.who{color:#4b5563;font-size:.875rem;margin-bottom:1.25rem;overflow-wrap:anywhere}
form{margin:0}
.field{margin-bottom:1.25rem}
label{display:block;margin-bottom:.375rem;font-weight:600;font-size:.9375rem}
input[type=text],input[type=password],input:not([type]){display:block;width:100%;min-height:2.75rem;padding:.5rem .75rem;font:inherit;color:#1a1a1a;background:#fff;border:1px solid #6b7280;border-radius:6px}
input[aria-invalid=true]{border-color:#b91c1c}
button{display:block;width:100%;min-height:2.75rem;padding:.625rem 1rem;font:inherit;font-weight:600;color:#fff;background:#1d4ed8;border:1px solid #1d4ed8;border-radius:6px;cursor:pointer}
button:hover{background:#1e40af;border-color:#1e40af}
button[value=deny],button[value=cancel]{color:#1a1a1a;background:#fff;border-color:#6b7280}
button[value=deny]:hover,button[value=cancel]:hover{background:#f3f4f6}
input:focus,button:focus{outline:3px solid #1d4ed8;outline-offset:2px}
input:focus:not(:focus-visible),button:focus:not(:focus-visible){outline:none}
input:focus-visible,button:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}
.actions{display:flex;flex-direction:column;gap:.75rem;margin-top:1.5rem}
@media (min-width:30em){.actions{flex-direction:row}.actions button{flex:1}}
.alert{margin:0 0 1.25rem;padding:.75rem 1rem;color:#991b1b;background:#fef2f2;border:1px solid #fecaca;border-left:4px solid #b91c1c;border-radius:6px;overflow-wrap:anywhere}
.scopes{list-style:none;margin:0 0 1rem;padding:0;border-top:1px solid #e5e7eb}
.scopes li{padding:.75rem 0;border-bottom:1px solid #e5e7eb;overflow-wrap:anywhere}
.scopes code{display:inline-block;margin-top:.25rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.875em;background:#f3f4f6;color:#1a1a1a;padding:.125rem .375rem;border-radius:4px;overflow-wrap:anywhere}
pre{margin:0 0 1rem;padding:1rem;background:#f3f4f6;border:1px solid #e5e7eb;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
pre code{padding:0;background:none;font-size:.8125rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1rem;margin:0 0 1rem}
dt{font-weight:600}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
noscript p{margin-top:1rem}
input.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:1.25rem;letter-spacing:.15em;text-transform:uppercase}
.user-code{margin:0 0 1.25rem;padding:.75rem;text-align:center;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:1.75rem;font-weight:600;letter-spacing:.15em;background:#f3f4f6;border-radius:6px}
@media (max-width:30em){body{padding:0;justify-content:flex-start;background:#fff}main{border:0;border-radius:0;box-shadow:none;padding:1.5rem 1.25rem}}
@media (forced-colors:active){button{border:2px solid ButtonText}}
`
  .trim()
  .replace(/\n/g, '');

/** Only compile-time constants: refuse anything that could close the <style>/<script> element early. */
function trusted(s: string): HtmlString {
  if (s.includes('</')) throw new Error('trusted inline CSS/JS must not contain "</"');
  return raw(s);
}

const CSS_HTML = trusted(CSS);
const SCRIPTS = { autoSubmit: trusted('document.forms[0].submit()') } as const;

/** A BCP 47-shaped language tag (as in ui_locales); anything else falls back to 'en'. */
const LANG_TAG = /^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$/;

function pageLang(lang: string | undefined): string {
  for (const tag of (lang ?? '').split(/\s+/)) {
    if (LANG_TAG.test(tag)) return tag;
  }
  return 'en';
}

/** Form targets and redirect targets must never be script URLs; the caller validates, this is a backstop. */
function assertSafeAction(action: string): string {
  const scheme = /^\s*([A-Za-z][A-Za-z0-9+.-]*):/.exec(action)?.[1]?.toLowerCase();
  if (scheme === 'javascript' || scheme === 'data' || scheme === 'vbscript') {
    throw new TypeError(`refusing to render a form with a ${scheme}: action`);
  }
  return action;
}

interface LayoutProps extends BasePageProps {
  title: string;
  body: HtmlString;
  wide?: boolean;
  script?: keyof typeof SCRIPTS;
}

function layout(p: LayoutProps): HtmlString {
  return html`<!doctype html>
<html lang="${pageLang(p.lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${p.title} – ${p.serviceName}</title>
<style nonce="${p.nonce}">${CSS_HTML}</style>
</head>
<body>
<main${p.wide ? html` class="wide"` : ''}>
<p class="brand">${p.serviceName}</p>
${p.body}
</main>
${p.script === undefined ? '' : html`<script nonce="${p.nonce}">${SCRIPTS[p.script]}</script>`}
</body>
</html>
`;
}

function csrfInput(token: string): HtmlString {
  return html`<input type="hidden" name="csrf" value="${token}">`;
}

function login(p: LoginPageProps): HtmlString {
  const hasError = p.error !== undefined && p.error !== '';
  // With a prefilled username (login_hint) the password is what remains to type: focus it instead.
  const prefilled = p.username !== undefined && p.username !== '';
  const invalid = hasError ? html` aria-invalid="true" aria-describedby="login-error"` : '';
  return layout({
    ...p,
    title: 'Sign in',
    body: html`<h1>Sign in</h1>
<p class="lead">to continue to <strong>${p.clientName}</strong></p>
${hasError ? html`<div id="login-error" class="alert" role="alert">${p.error}</div>` : ''}
<form method="post" action="${assertSafeAction(p.action)}">
${csrfInput(p.csrfToken)}
<div class="field">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required${prefilled ? html` value="${p.username}"` : html` autofocus`} autocapitalize="none" spellcheck="false"${invalid}>
</div>
<div class="field">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${prefilled ? html` autofocus` : ''}${invalid}>
</div>
<button type="submit">Sign in</button>
</form>`,
  });
}

function consent(p: ConsentPageProps): HtmlString {
  return layout({
    ...p,
    title: `Authorize ${p.clientName}`,
    body: html`<h1>${p.clientName} wants to access your account</h1>
<p class="who">Signed in as <strong>${p.userName}</strong></p>
${scopeList(p.clientName, p.scopes)}
${decisionForm(p.action, p.csrfToken)}`,
  });
}

function error(p: ErrorPageProps): HtmlString {
  return layout({
    ...p,
    title: 'Error',
    body: html`<h1>Something went wrong</h1>
<p class="lead">${p.description}</p>
<p class="muted">Error code: <code>${p.error}</code></p>
<p>You can close this page and try again from the application you came from.</p>`,
  });
}

function formPost(p: FormPostPageProps): HtmlString {
  return layout({
    ...p,
    title: 'Redirecting…',
    body: html`<h1>Redirecting…</h1>
<form method="post" action="${assertSafeAction(p.action)}">
${Object.entries(p.fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`)}<noscript>
<p>JavaScript is turned off. Select Continue to return to the application.</p>
<button type="submit">Continue</button>
</noscript>
</form>`,
    script: 'autoSubmit',
  });
}

function logoutConfirm(p: LogoutConfirmPageProps): HtmlString {
  const hasClient = p.clientName !== undefined && p.clientName !== '';
  return layout({
    ...p,
    title: 'Sign out',
    body: html`<h1>Sign out?</h1>
<p class="lead">${
      hasClient
        ? html`<strong>${p.clientName}</strong> is asking to sign you out of ${p.serviceName}.`
        : html`Do you want to sign out of ${p.serviceName}?`
    }</p>
<form method="post" action="${assertSafeAction(p.action)}">
${csrfInput(p.csrfToken)}
<div class="actions">
<button type="submit" name="decision" value="logout">Sign out</button>
<button type="submit" name="decision" value="cancel">Stay signed in</button>
</div>
</form>`,
  });
}

function loggedOut(p: LoggedOutPageProps): HtmlString {
  return layout({
    ...p,
    title: 'Signed out',
    body: html`<h1>You are signed out</h1>
<p class="lead">You have been signed out of ${p.serviceName}. You can close this page.</p>`,
  });
}

function demoCallback(p: DemoCallbackPageProps): HtmlString {
  const row = (term: string, value: string | undefined) =>
    value === undefined ? '' : html`<dt>${term}</dt><dd><code>${value}</code></dd>\n`;
  const received = [
    row('code', p.code),
    row('state', p.state),
    row('iss', p.iss),
    row('error', p.error),
    row('error_description', p.errorDescription),
  ];
  const nothing = [p.code, p.state, p.iss, p.error, p.errorDescription].every((v) => v === undefined);
  return layout({
    ...p,
    wide: true,
    title: 'Demo client callback',
    body: html`<h1>Demo client callback</h1>
<p class="lead">The demo client's redirect URI received this authorization response.</p>
${p.error !== undefined ? html`<p class="alert" role="alert">The authorization request failed.</p>` : ''}
${nothing ? html`<p>No authorization response parameters were received.</p>` : html`<dl>\n${received}</dl>`}
${
  p.code !== undefined
    ? html`<h2>Exchange the code</h2>
<p>Token endpoint: <code>${p.tokenEndpoint}</code></p>
${
  p.curl !== undefined
    ? html`<pre><code>${p.curl}</code></pre>`
    : html`<p>POST <code>grant_type=authorization_code</code> with this code to the token endpoint.</p>`
}
<p class="muted">The code can be used once and expires shortly.</p>`
    : html`<p class="muted">Token endpoint: <code>${p.tokenEndpoint}</code></p>`
}`,
  });
}

function deviceCode(p: DeviceCodePageProps): HtmlString {
  const hasError = p.error !== undefined && p.error !== '';
  const prefilled = p.userCode !== undefined && p.userCode !== '';
  return layout({
    ...p,
    title: 'Connect a device',
    body: html`<h1>Connect a device</h1>
<p class="lead">Enter the code shown on your device.</p>
${hasError ? html`<div id="code-error" class="alert" role="alert">${p.error}</div>` : ''}
<form method="post" action="${assertSafeAction(p.action)}">
${csrfInput(p.csrfToken)}
<div class="field">
<label for="user_code">Code</label>
<input id="user_code" name="user_code" class="code" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="32" required${prefilled ? html` value="${p.userCode}"` : html` autofocus`}${hasError ? html` aria-invalid="true" aria-describedby="code-error"` : ''}>
</div>
<button type="submit"${prefilled && !hasError ? html` autofocus` : ''}>Continue</button>
</form>`,
  });
}

function deviceConfirm(p: DeviceConfirmPageProps): HtmlString {
  return layout({
    ...p,
    title: `Connect ${p.clientName}`,
    body: html`<h1>Allow ${p.clientName} on your device?</h1>
<p class="who">Signed in as <strong>${p.userName}</strong></p>
<p>Check that your device shows this code:</p>
<p class="user-code">${p.userCode}</p>
${scopeList(p.clientName, p.scopes)}
<p class="muted">Only allow this if you started it on a device you own. If someone else gave you this code, deny.</p>
${decisionForm(p.action, p.csrfToken)}`,
  });
}

function deviceDone(p: DeviceDonePageProps): HtmlString {
  return layout({
    ...p,
    title: p.approved ? 'Device connected' : 'Access denied',
    body: p.approved
      ? html`<h1>Device connected</h1>
<p class="lead"><strong>${p.clientName}</strong> can now use your account.</p>
<p>You can return to your device. You can close this page.</p>`
      : html`<h1>Access denied</h1>
<p class="lead"><strong>${p.clientName}</strong> was not given access to your account.</p>
<p>You can close this page.</p>`,
  });
}

/** The built-in page renderers; override any of them to brand the hosted pages. */
/** The requested scopes as the consent and device-confirmation pages list them. */
function scopeList(clientName: string, scopes: readonly ConsentScope[]): HtmlString {
  return scopes.length > 0
    ? html`<p id="scopes-heading">This will allow ${clientName} to:</p>
<ul class="scopes" aria-labelledby="scopes-heading">
${scopes.map((s) => html`<li>${s.description}<br><code>${s.name}</code></li>\n`)}</ul>`
    : html`<p>${clientName} is not asking for any additional permissions.</p>`;
}

/** The Allow / Deny form (`decision=approve|deny`) with its CSRF token. */
function decisionForm(action: string, csrfToken: string): HtmlString {
  return html`<form method="post" action="${assertSafeAction(action)}">
${csrfInput(csrfToken)}
<div class="actions">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>`;
}

export const defaultPages: PageRenderers = {
  login,
  consent,
  error,
  formPost,
  logoutConfirm,
  loggedOut,
  demoCallback,
  deviceCode,
  deviceConfirm,
  deviceDone,
};
