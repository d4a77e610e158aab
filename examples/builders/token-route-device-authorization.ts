// Seed: shared/seeds/000 ("Tuto 4 - Token Issuance with tokenRoute"), "Example: Device Authorization Flow".
// Verbatim except the import path ('@kaapi/oauth2-auth-design' → portcullis/builders; in this repo, the source).
// The seed is a fragment: it calls `checkDeviceCode(deviceCode)`, "your logic". The minimal wrapper
// below the seed code (marked) supplies it, so the module runs.
import {
    NoneAuthMethod,
    OAuth2DeviceAuthorizationBuilder,
    OAuth2ErrorCode,
    OAuth2TokenResponse
} from '../../src/builders/index.js'

export default OAuth2DeviceAuthorizationBuilder
    .create()
    .setTokenTTL(600) // 10 minutes
    .addClientAuthenticationMethod(new NoneAuthMethod())
    .tokenRoute(route =>
        route
            .setPath('/oauth2/token')
            .generateToken(async ({
                grantType,
                clientId,
                ttl,
                tokenType,
                deviceCode,
                clientSecret,
                createJwtAccessToken,
                createIdToken
            }, request) => {
                // Example polling check
                const deviceValidated = checkDeviceCode(deviceCode); // your logic
                if (!deviceValidated) {
                    return { error: OAuth2ErrorCode.AUTHORIZATION_PENDING }
                }

                return new OAuth2TokenResponse({ access_token: 'generated-access-token' })
                    .setExpiresIn(ttl)
                    .setTokenType(tokenType)
            })
    )

// ---- minimal wrapper (not in the seed) ----
/** Device codes the user has approved (a real app keeps them in its store, with their expiry). */
export const approvedDeviceCodes = new Set<string>()

function checkDeviceCode(deviceCode: string): boolean {
    return approvedDeviceCodes.has(deviceCode)
}
