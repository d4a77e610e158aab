// Seed: shared/seeds/000 ("Tuto 4 - Token Issuance with tokenRoute"), "Example: Authorization Code Flow".
// Verbatim except the import path ('@kaapi/oauth2-auth-design' → portcullis/builders; in this repo, the source).
// It registers no client, so the server runs in delegated mode: the handler owns the code and the client check.
import {
    ClientSecretBasic,
    NoneAuthMethod,
    OAuth2ErrorCode,
    OAuth2TokenResponse,
    OIDCAuthorizationCodeBuilder
} from '../../src/builders/index.js'

export default OIDCAuthorizationCodeBuilder
    .create()
    .setTokenTTL(3600) // 1 hour
    .addClientAuthenticationMethod(new ClientSecretBasic())
    .addClientAuthenticationMethod(new NoneAuthMethod())
    .useAccessTokenJwks(true)
    .setScopes({
        openid: 'User identity',
        email: 'Access to user email',
    })
    .tokenRoute(route =>
        route
            .setPath('/oauth2/token')
            .generateToken(async ({
                grantType,
                clientId,
                ttl,
                tokenType,
                code,
                codeVerifier,
                clientSecret,
                createJwtAccessToken,
                createIdToken,
                verifyCodeVerifier
            }, request) => {
                // Example error
                // return { error: OAuth2ErrorCode.INVALID_CLIENT, error_description: 'Client not found' }

                // Example success
                return new OAuth2TokenResponse({ access_token: 'generated-access-token' })
                    .setExpiresIn(ttl)
                    .setTokenType(tokenType)
                    .setScope('openid email')
                    .setRefreshToken('optional-refresh-token')
                    .setIdToken('optional-id-token')
            })
    )
