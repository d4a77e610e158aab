import type { ClientRegistry } from './clients/registry.js';
import type { OAuthRequest, OAuthResponse } from './core/http.js';
import type { RouteOptions } from './core/options.js';
import type { KeyManager } from './keys/key-manager.js';
import type { Storage } from './storage/contract.js';
import type { UserRegistry } from './users/registry.js';

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
  /** Stop timers (key reload, sweeper). The storage is closed too unless `keepStorage`. */
  close(options?: { keepStorage?: boolean }): Promise<void>;
}
