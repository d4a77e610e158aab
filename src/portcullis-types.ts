import type { ClientRegistry } from './clients/registry.js';
import type { OAuthRequest, OAuthResponse } from './core/http.js';
import type { RouteOptions } from './core/options.js';
import type { KeyManager } from './keys/key-manager.js';
import type { Storage } from './storage/contract.js';
import type { UserRegistry } from './users/registry.js';
import type { AuthorizationDecision, AuthorizationRequest } from './authorize/request.js';

/** A running authorization server: the core behind every adapter and front door. */
export interface Portcullis {
  readonly issuer: string;
  readonly storage: Storage;
  readonly keys: KeyManager;
  readonly clients: ClientRegistry;
  readonly users: UserRegistry;
  /** Absolute URLs of the endpoints, from the issuer and the configured routes. */
  readonly endpoints: Readonly<Record<keyof RouteOptions, string>>;
  /** Grant types the token endpoint serves. */
  readonly grantTypes: readonly string[];
  /** Handle one request in the core's plain shape. Never throws. */
  handle(req: OAuthRequest): Promise<OAuthResponse>;
  /** The same as a WHATWG fetch handler (Hono, Bun, Deno, workers). */
  fetch(request: Request): Promise<Response>;
  /** The discovery document (RFC 8414 / OIDC Discovery), generated from what is enabled. */
  metadata(): Record<string, unknown>;
  /**
   * The authorization endpoint as a library, for apps that run their own login and consent UI:
   * validate a request into a serialisable {@link AuthorizationRequest}, keep it while the user signs
   * in, then complete it with the decision. `errorResponse` turns a thrown validation error into what
   * the browser must see (a redirect to the client once its redirect URI is trusted, else an error page).
   */
  readonly authorization: {
    validate(req: OAuthRequest): Promise<AuthorizationRequest>;
    complete(request: AuthorizationRequest, decision: AuthorizationDecision, options?: { fromPost?: boolean }): Promise<OAuthResponse>;
    errorResponse(err: unknown, options?: { fromPost?: boolean }): OAuthResponse;
  };
  /** Stop timers (key reload, sweeper). The storage is closed too unless `keepStorage`. */
  close(options?: { keepStorage?: boolean }): Promise<void>;
}
