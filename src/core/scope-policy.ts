import { OAuthError } from './errors.js';
import { parseScope } from './scope.js';
import type { ClientRecord } from '../storage/contract.js';

/** Which scopes a client may get: the server's known scopes ∩ the client's registered scope. */
export class ScopePolicy {
  /** Known scope names, or undefined when the server accepts any well-formed scope. */
  readonly known: ReadonlySet<string> | undefined;
  readonly descriptions: Readonly<Record<string, string>>;

  /**
   * @param scopes the server's scopes (names, or name → description); undefined accepts any well-formed scope.
   * @param standard scopes always known when the server configures its own (the OIDC ones, when the code flow is on).
   */
  constructor(scopes: string[] | Record<string, string> | undefined, standard: Readonly<Record<string, string>> = {}) {
    if (scopes === undefined) {
      this.known = undefined;
      this.descriptions = {};
    } else if (Array.isArray(scopes)) {
      this.known = new Set([...Object.keys(standard), ...scopes]);
      // Names only: the consent page falls back to the standard descriptions, then to the name.
      this.descriptions = {};
    } else {
      this.known = new Set([...Object.keys(standard), ...Object.keys(scopes)]);
      this.descriptions = { ...scopes };
    }
  }

  /**
   * Resolve the scope of a request: every requested token must be known to the server and within
   * the client's registered scope (`invalid_scope` otherwise). No scope requested → the client's scope.
   */
  resolve(requested: string | undefined, client: ClientRecord): string[] {
    const known = this.known;
    const clientScope = parseScope(client.scope);
    const tokens = parseScope(requested);
    if (tokens.length === 0) return known === undefined ? clientScope : clientScope.filter((t) => known.has(t));
    const limited = client.scope !== undefined;
    // Tokens are distinct (parseScope), so the refused ones are too, in request order.
    const refused = tokens.filter((t) => (known !== undefined && !known.has(t)) || (limited && !clientScope.includes(t)));
    if (refused.length > 0) {
      throw new OAuthError('invalid_scope', `The requested scope is not allowed: ${refused.join(' ')}`);
    }
    return tokens;
  }
}
