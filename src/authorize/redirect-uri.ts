import { redirectUriProblem } from '../clients/metadata.js';

const LOOPBACK_IP = /^(?:127(?:\.\d{1,3}){3}|\[::1\])$/;

/**
 * Whether a requested redirect URI matches one the client registered: simple string comparison
 * (no case folding, no default-port collapsing, no normalisation), except that for `http` loopback
 * IP literals only the port may differ (RFC 8252 §7.3). Userinfo never matches.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.1.3
 */
export function matchRedirectUri(requested: string, registered: readonly string[]): boolean {
  if (registered.includes(requested)) return redirectUriProblem(requested) === undefined;
  if (!requested.startsWith('http://')) return false;
  const req = loopbackParts(requested);
  if (req === undefined) return false;
  for (const candidate of registered) {
    const reg = loopbackParts(candidate);
    if (reg !== undefined && reg.host === req.host && reg.rest === req.rest) return true;
  }
  return false;
}

/** `http://<loopback ip>[:port]<rest>` split into host and the rest, or undefined. */
function loopbackParts(uri: string): { host: string; rest: string } | undefined {
  const afterScheme = uri.slice('http://'.length);
  const slash = afterScheme.search(/[/?#]/);
  const authority = slash === -1 ? afterScheme : afterScheme.slice(0, slash);
  const rest = slash === -1 ? '' : afterScheme.slice(slash);
  if (authority.includes('@') || rest.includes('#')) return undefined;
  let host = authority;
  const portMatch = /:(\d{1,5})$/.exec(authority);
  if (portMatch !== null) host = authority.slice(0, -portMatch[0].length);
  if (!LOOPBACK_IP.test(host)) return undefined;
  return { host, rest };
}
