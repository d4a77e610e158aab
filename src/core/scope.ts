import { OAuthError } from './errors.js';

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/**
 * Split a scope string into its tokens, in order, without duplicates. Tokens are separated by
 * single spaces per the RFC; runs of spaces are tolerated. A token outside the grammar → `invalid_scope`.
 */
export function parseScope(scope: string | undefined): string[] {
  if (scope === undefined || scope === '') return [];
  const out: string[] = [];
  for (const token of scope.split(' ')) {
    if (token === '') continue;
    if (!SCOPE_TOKEN.test(token)) throw new OAuthError('invalid_scope', 'The scope contains characters outside the scope grammar');
    if (!out.includes(token)) out.push(token);
  }
  return out;
}

export function formatScope(tokens: readonly string[]): string {
  return tokens.join(' ');
}

/** Whether every token of `requested` is in `allowed`. */
export function isSubset(requested: readonly string[], allowed: readonly string[]): boolean {
  if (requested.length === 0) return true;
  const set = new Set(allowed);
  for (const token of requested) if (!set.has(token)) return false;
  return true;
}

/** Tokens of `requested` that are not in `allowed`, for error descriptions. */
export function difference(requested: readonly string[], allowed: readonly string[]): string[] {
  const set = new Set(allowed);
  return requested.filter((t) => !set.has(t));
}
