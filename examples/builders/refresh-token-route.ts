// Seed: shared/seeds/001 ("Tuto 5 - Token Refresh Flow with refreshTokenRoute"), "Example: Authorization Code Flow".
// Verbatim except the import path ('@kaapi/oauth2-auth-design' → portcullis/builders; in this repo, the source).
// It registers no client, so the server runs in delegated mode: the handler owns the refresh token and the client check.
import {
    NoneAuthMethod,
    OAuth2ErrorCode,
    OAuth2TokenResponse,
    OIDCAuthorizationCodeBuilder
} from '../../src/builders/index.js';

export default OIDCAuthorizationCodeBuilder
    .create()
    .setTokenTTL(3600)
    .addClientAuthenticationMethod(new NoneAuthMethod())
    .useAccessTokenJwks(true)
    .setScopes({
        openid: 'User identity',
        email: 'Access to user email',
    })
    .refreshTokenRoute(route =>
        route
            .setPath('/oauth2/token')
            .generateToken(async ({
                grantType,
                clientId,
                refreshToken,
                ttl,
                tokenType,
                clientSecret,
                scope,
                createJwtAccessToken,
                createIdToken,
                verifyJwt
            }, request) => {
                // Example: Validate the refresh token and client
                const isValid = true; // Replace with actual logic
                if (!isValid) {
                    return {
                        error: OAuth2ErrorCode.INVALID_GRANT,
                        error_description: 'Invalid or expired refresh token'
                    };
                }

                return new OAuth2TokenResponse({ access_token: 'generated-access-token' })
                    .setExpiresIn(ttl)
                    .setTokenType(tokenType)
                    .setScope('openid email')
                    .setRefreshToken('new-optional-refresh-token')
                    .setIdToken('optional-id-token');
            })
    );
