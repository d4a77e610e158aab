import { authenticateClient } from '../client-auth/index.js';
import { randomToken } from '../core/crypto.js';
import { OAuthError } from '../core/errors.js';
import { parseFormMulti } from '../core/form.js';
import { noStoreJson, type OAuthRequest, type OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';
import { DEVICE_CODE_GRANT_TYPE, EXPIRED_RETENTION_SECONDS, deviceCodeId, userCodeId, type DeviceCodeState, type UserCodeState } from './state.js';
import { formatUserCode, generateUserCode } from './user-code.js';

/** Attempts at drawing a user code that is not in use (a collision is ~N / 2^34.6 per draw). */
const USER_CODE_DRAWS = 10;

/**
 * The device authorization endpoint (RFC 8628 §3.1, §3.2). In order: parse the form → authenticate the
 * client (public clients by `client_id`, method `none`) → `request`/`request_uri` are refused → the
 * client must be registered for the device_code grant → the scope must be allowed → mint a device code
 * (256 random bits, stored under its SHA-256) and a user code (stored under the SHA-256 of its
 * normalized form, pointing at the device code) → no-store JSON.
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.2
 */
export async function deviceAuthorizationEndpoint(req: OAuthRequest, server: ServerContext): Promise<OAuthResponse> {
  const params = parseFormMulti(req, server.maxBodyBytes).single;
  const { client } = await authenticateClient(req, params, server.clientAuth);
  if (params.request !== undefined || params.request_uri !== undefined) {
    throw new OAuthError('invalid_request', 'The request and request_uri parameters are not supported');
  }
  if (!client.grant_types.includes(DEVICE_CODE_GRANT_TYPE)) {
    throw new OAuthError('unauthorized_client', 'The client is not registered for the device authorization grant');
  }
  const scope = server.scopes.resolve(params.scope, client);

  const now = server.clock();
  const expiresAt = now + server.ttl.deviceCode;
  const keptUntil = expiresAt + EXPIRED_RETENTION_SECONDS;
  const deviceCode = randomToken(32);
  const id = deviceCodeId(deviceCode);

  let userCode: string | undefined;
  for (let i = 0; i < USER_CODE_DRAWS && userCode === undefined; i++) {
    const candidate = generateUserCode();
    if ((await server.storage.findArtifact('user_code', userCodeId(candidate), now)) === undefined) userCode = candidate;
  }
  if (userCode === undefined) throw new OAuthError('temporarily_unavailable', 'No user code is free; try again later', { detail: 'user code space exhausted', headers: { 'retry-after': '5' } });
  const ucId = userCodeId(userCode);

  const state: DeviceCodeState = { status: 'pending', expires_at: expiresAt, interval: server.deviceFlow.interval, version: 0, user_code_id: ucId };
  await server.storage.saveArtifact({
    kind: 'device_code',
    id,
    client_id: client.client_id,
    scope: scope.join(' '),
    created_at: now,
    expires_at: keptUntil,
    data: state as unknown as Record<string, unknown>,
  });
  const link: UserCodeState = { device_code_id: id };
  await server.storage.saveArtifact({
    kind: 'user_code',
    id: ucId,
    client_id: client.client_id,
    scope: scope.join(' '),
    created_at: now,
    expires_at: keptUntil,
    data: link as unknown as Record<string, unknown>,
  });
  server.logger.info({ event: 'device_authorization.issued', client_id: client.client_id }, 'device authorization issued');

  const shown = formatUserCode(userCode);
  return noStoreJson(200, {
    device_code: deviceCode,
    user_code: shown,
    verification_uri: server.endpoints.device,
    verification_uri_complete: `${server.endpoints.device}?user_code=${encodeURIComponent(shown)}`,
    expires_in: server.ttl.deviceCode,
    interval: server.deviceFlow.interval,
  });
}
