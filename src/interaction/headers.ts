import { randomBytes } from 'node:crypto';

/** A fresh CSP nonce: 16 random bytes, base64. Use one per response. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export interface PageHeaderOptions {
  /**
   * Extra origins allowed as form targets, e.g. the client's redirect origin for the form_post response
   * mode. Each entry must be an absolute URL; only its origin is used (`https://app.example/cb` →
   * `https://app.example`).
   *
   * Browsers (Chromium, verified) also apply form-action to the redirects that follow a form POST: a
   * consent, login or logout-confirm form that POSTs to this server and is answered with a 302/303 to the
   * client's redirect_uri (or post_logout_redirect_uri) is blocked unless that URI's origin is listed
   * here. Pass it for every page whose form can end in a redirect to the client.
   */
  formAction?: string[];
}

const NONCE = /^[A-Za-z0-9+/_-]+={0,2}$/;

function toOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`pageHeaders: formAction entry is not an absolute URL: ${JSON.stringify(value)}`);
  }
  // Opaque origins ('null': custom schemes, data:, javascript:…) cannot be expressed as a host-source.
  if (url.origin === 'null') {
    throw new TypeError(`pageHeaders: formAction entry has no origin: ${JSON.stringify(value)}`);
  }
  return url.origin;
}

/**
 * Security headers for every hosted HTML page: no caching, no framing, no sniffing, no referrer, and a CSP
 * that allows only the nonce'd inline <style>/<script>, same-origin or data: images, and form posts to
 * this server (plus `options.formAction` origins).
 */
export function pageHeaders(nonce: string, options: PageHeaderOptions = {}): Record<string, string> {
  // The nonce goes into a header value: refuse anything that could break out of the directive.
  if (!NONCE.test(nonce)) throw new TypeError('pageHeaders: the nonce must be base64 or base64url');
  const extra = [...new Set((options.formAction ?? []).map(toOrigin))];
  const formAction = ["'self'", ...extra].join(' ');
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    pragma: 'no-cache',
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy':
      `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src 'self' data:; ` +
      `form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
  };
}
