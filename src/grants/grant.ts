import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import type { FormParams } from '../core/form.js';
import type { OAuthRequest } from '../core/http.js';
import type { ClientRecord } from '../storage/contract.js';
import type { ServerContext } from '../server-context.js';
import type { ClientAuthenticationMode } from '../core/options.js';

/** What a grant sees: the authenticated client, the parsed form, and the server's services. */
export interface GrantContext {
  client: ClientRecord;
  authMethod: TokenEndpointAuthMethod;
  params: FormParams;
  /** Every value of parameters that may repeat (`resource`, `audience`). */
  multiParams: Readonly<Record<string, readonly string[] | undefined>>;
  request: OAuthRequest;
  server: ServerContext;
  /** Default `registry`. `delegated`: `client` is a transient record of the claimed client_id, not authenticated. */
  clientAuthentication?: ClientAuthenticationMode;
  /** Delegated mode only: the client secret as sent, for the app's `generateToken` hook to check. */
  clientSecret?: string;
}

/** The JSON body of a successful token response (RFC 6749 §5.1), plus any extension members. */
export interface TokenResponseBody {
  access_token: string;
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
  id_token?: string;
  [member: string]: unknown;
}

/**
 * One grant type at the token endpoint. The endpoint has already parsed the body, authenticated the
 * client and checked that the client is registered for `type`; the grant validates its own
 * parameters, consumes its artifact atomically, and mints tokens through `ctx.server.tokens`.
 * A custom grant implements the same interface.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.5
 */
export interface GrantHandler {
  /** The `grant_type` value (a URI for extension grants). */
  readonly type: string;
  /** Whether public clients (`token_endpoint_auth_method: none`) may use it. Default true. */
  readonly allowPublicClients?: boolean;
  handle(ctx: GrantContext): Promise<TokenResponseBody>;
  /**
   * Delegated client authentication (flow builders without registered clients): check the grant's
   * own parameters and hand the request to the app's `generateToken` hook through `issueTokens`.
   * The code, device code or refresh token is the app's own: the core never issued it. Grants
   * without this method are not served in that mode (`unsupported_grant_type`).
   */
  handleDelegated?(ctx: GrantContext): Promise<TokenResponseBody>;
}
