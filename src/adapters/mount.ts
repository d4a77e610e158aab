/**
 * Helpers shared by the framework adapters (internal): the core path of a request under a mount
 * prefix, and which paths the core serves (decided before a body is read, so a framework can hand
 * every other path to its next route).
 * @module
 */
import type { Portcullis } from '../portcullis-types.js';

/** Default body cap of the framework adapters, bytes (the same as the core's). */
export const DEFAULT_ADAPTER_MAX_BODY_BYTES = 64 * 1024;

/**
 * Split a request target into the core's `path` (relative to `prefix`) and raw `query`.
 * The prefix is removed only at a segment boundary (`/oauth` strips `/oauth/token`, not `/oauthx`).
 */
export function mountedTarget(target: string, prefix: string): { path: string; query: string } {
  const q = target.indexOf('?');
  let path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (base !== '' && path.startsWith(base) && (path.length === base.length || path[base.length] === '/')) path = path.slice(base.length);
  if (!path.startsWith('/')) path = `/${path}`;
  return { path, query };
}

/**
 * A predicate telling whether the core serves a (mount-relative) path: an endpoint of
 * `portcullis.endpoints` or below it (interaction and device pages), a well-known document, or the
 * health checks. Paths are taken the way the core routes them: the issuer's path prefix is optional.
 */
export function corePathMatcher(portcullis: Portcullis): (path: string) => boolean {
  const issuerPath = new URL(portcullis.issuer).pathname.replace(/\/$/, '');
  const strip = (p: string): string => (issuerPath !== '' && p.startsWith(`${issuerPath}/`) ? p.slice(issuerPath.length) : p);
  const roots = [...new Set(Object.values(portcullis.endpoints).map((url) => strip(new URL(url).pathname)))];
  return (path) => {
    const p = strip(path);
    if (p.startsWith('/.well-known/') || path.startsWith('/.well-known/') || p === '/healthz' || p === '/readyz') return true;
    return roots.some((root) => p === root || p.startsWith(`${root}/`));
  };
}
