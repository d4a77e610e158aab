// Seed: shared/seeds/000 ("Tuto 4 - Token Issuance with tokenRoute"), "Example: Client Credentials Flow".
// Verbatim except the import path ('@kaapi/oauth2-auth-design' → portcullis/builders; in this repo, the source).
// It registers no client, so the server runs in delegated mode: the handler owns the client check.
import {
    ClientSecretBasic,
    OAuth2ClientCredentialsBuilder,
    OAuth2ErrorCode,
    OAuth2TokenResponse
} from '../../src/builders/index.js'

export default OAuth2ClientCredentialsBuilder
    .create()
    .setTokenTTL(600) // 10 minutes
    .addClientAuthenticationMethod(new ClientSecretBasic())
    .useAccessTokenJwks(true)
    .tokenRoute(route =>
        route
            .setPath('/oauth2/token')
            .generateToken(async ({
                grantType,
                clientId,
                ttl,
                tokenType,
                clientSecret,
                scope,
                createJwtAccessToken,
                createIdToken
            }, request) => {
                // Example success
                return new OAuth2TokenResponse({ access_token: 'generated-access-token' })
                    .setExpiresIn(ttl)
                    .setTokenType(tokenType)
                    .setScope(scope ?? '')
            })
    )
