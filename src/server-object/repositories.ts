/**
 * Entities and repositories shaped like the seed package's (`@jmondi/oauth2-server`), for apps that
 * already implement them. `storageFromRepositories` (./repository-storage.ts) turns them into the
 * core's {@link Storage}; the server object uses the scope and user repositories directly where a
 * decision is the app's (which scopes exist, whose password is right).
 *
 * The interfaces are deliberately loose (no index signatures, most fields optional on the way in)
 * so an app's existing entity classes fit without changes.
 */

/** Grant names as the seed uses them. `implicit` is accepted in data and ignored: it is never served. */
export type GrantIdentifier =
  | 'authorization_code'
  | 'client_credentials'
  | 'refresh_token'
  | 'password'
  | 'implicit'
  | 'urn:ietf:params:oauth:grant-type:token-exchange'
  | (string & {});

export interface OAuthScope {
  name: string;
}

export interface OAuthClient {
  id: string;
  name: string;
  /** Plain text by default; see `clientSecrets` in {@link RepositoryStorageOptions}. Absent for public clients. */
  secret?: string | null;
  redirectUris: string[];
  allowedGrants: GrantIdentifier[];
  /** The scopes this client may request. */
  scopes: OAuthScope[];
}

export interface OAuthUser {
  id: string | number;
}

/** One row of the seed's token table: an access token and, optionally, its refresh token. */
export interface OAuthToken {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken?: string | null;
  refreshTokenExpiresAt?: Date | null;
  client: OAuthClient;
  user?: OAuthUser | null;
  scopes: OAuthScope[];
  /** Here: the id of the Portcullis grant the token belongs to (so `revokeDescendantsOf` revokes a grant). */
  originatingAuthCodeId?: string;
}

export interface OAuthAuthCode {
  code: string;
  redirectUri?: string | null;
  codeChallenge?: string | null;
  codeChallengeMethod?: 'S256' | 'plain' | null;
  expiresAt: Date;
  user?: OAuthUser | null;
  client: OAuthClient;
  scopes: OAuthScope[];
}

export interface OAuthClientRepository {
  /** The client, or a throw / falsy value for an unknown one. */
  getByIdentifier(clientId: string): Promise<OAuthClient | null | undefined>;
  /**
   * Not consulted: Portcullis checks the secret (constant time, against a hash) and the client's
   * grants itself. Kept optional so existing repositories still fit. See docs/migrating.md.
   */
  isClientValid?(grantType: GrantIdentifier, client: OAuthClient, clientSecret?: string): Promise<boolean>;
}

export interface OAuthTokenRepository {
  issueToken(client: OAuthClient, scopes: OAuthScope[], user?: OAuthUser | null): Promise<OAuthToken>;
  persist(accessToken: OAuthToken): Promise<void>;
  /** Not called: the refresh token's fields are set before `persist`. */
  issueRefreshToken?(accessToken: OAuthToken, client: OAuthClient): Promise<OAuthToken>;
  revoke(accessToken: OAuthToken): Promise<void>;
  isRefreshTokenRevoked(refreshToken: OAuthToken): Promise<boolean>;
  getByRefreshToken(refreshTokenToken: string): Promise<OAuthToken | null | undefined>;
  revokeDescendantsOf?(authCodeId: string): Promise<void>;
  getByAccessToken?(accessTokenToken: string): Promise<OAuthToken | null | undefined>;
  isAccessTokenRevoked?(accessToken: OAuthToken): Promise<boolean>;
}

export interface OAuthAuthCodeRepository {
  getByIdentifier(authCodeCode: string): Promise<OAuthAuthCode | null | undefined>;
  issueAuthCode(client: OAuthClient, user: OAuthUser | undefined, scopes: OAuthScope[]): OAuthAuthCode | Promise<OAuthAuthCode>;
  persist(authCode: OAuthAuthCode): Promise<void>;
  isRevoked(authCodeCode: string): Promise<boolean>;
  revoke(authCodeCode: string): Promise<void>;
}

export interface OAuthScopeRepository {
  getAllByIdentifiers(scopeNames: string[]): Promise<OAuthScope[]>;
  /**
   * May only narrow: scopes it adds are ignored; at the authorization endpoint the request is narrowed
   * to its answer; at the token endpoint a scope it drops refuses the request (`invalid_scope`).
   */
  finalize(scopes: OAuthScope[], identifier: GrantIdentifier, client: OAuthClient, userId?: string): Promise<OAuthScope[]>;
}

export interface OAuthUserRepository {
  /**
   * The user: by identifier alone (the code grant, ID tokens, userinfo: the identifier is the user id),
   * or by identifier and password (the password grant: the identifier is the username). Falsy or a
   * throw: no such user / wrong password.
   */
  getUserByCredentials(identifier: string, password?: string, grantType?: GrantIdentifier, client?: OAuthClient): Promise<OAuthUser | null | undefined>;
}

/** The five repositories of a seed-shaped app. Only the client repository is required. */
export interface Repositories {
  clientRepository: OAuthClientRepository;
  tokenRepository?: OAuthTokenRepository;
  authCodeRepository?: OAuthAuthCodeRepository;
  scopeRepository?: OAuthScopeRepository;
  userRepository?: OAuthUserRepository;
}
