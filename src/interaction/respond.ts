import type { OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';
import { newNonce, pageHeaders } from './headers.js';
import type { HtmlString } from './html.js';

/**
 * An HTML page response with the page security headers (CSP with a fresh nonce, no framing,
 * no caching, no referrer) and any cookies to set.
 */
/**
 * Origins a page's form may lead to: a POST answered by a 303 to the client counts as a form
 * action under CSP, so the login, consent and logout pages must allow the redirect target's origin.
 * Only http(s) targets have an origin to list (custom-scheme native redirects do not).
 */
export function formActionFor(uri: string | undefined): string[] | undefined {
  if (uri === undefined || !URL.canParse(uri)) return undefined;
  const url = new URL(uri);
  return url.protocol === 'https:' || url.protocol === 'http:' ? [url.origin] : undefined;
}

export function htmlResponse(
  status: number,
  _server: ServerContext,
  render: (nonce: string) => HtmlString,
  options: { formAction?: string[] | undefined; setCookies?: string[] | undefined } = {},
): OAuthResponse {
  const nonce = newNonce();
  const res: OAuthResponse = {
    status,
    headers: pageHeaders(nonce, options.formAction !== undefined ? { formAction: options.formAction } : {}),
    body: render(nonce).toString(),
  };
  if (options.setCookies !== undefined && options.setCookies.length > 0) res.setCookies = options.setCookies;
  return res;
}
