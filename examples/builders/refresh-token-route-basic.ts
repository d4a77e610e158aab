// Seed: shared/seeds/002 ("Token Issuance with refreshTokenRoute"), "Example: Authorization Code Flow".
// Verbatim except the import path ('@kaapi/oauth2-auth-design' → portcullis/builders; in this repo, the source).
// The seed's closing `//...` stands for the rest of the app's configuration; nothing more is needed to run.
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
    .refreshTokenRoute(route =>
        route
            .setPath('/oauth2/token')
            .generateToken(async ({
                grantType, // string
                clientId, // string
                ttl, // value of setTokenTTL
                tokenType, // string
                refreshToken, // string
                clientSecret, // string or undefined
                createJwtAccessToken, // function available if using JWKS
                createIdToken, // function available if using JWKS
                verifyJwt // function available if 'useAccessTokenJwks(true)'. We could use it to verify the refresh token if it was created with the function 'createJwtAccessToken' at tokenRoute method.
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
    //...
