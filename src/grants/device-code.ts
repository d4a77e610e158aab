import { OAuthError } from '../core/errors.js';
import { DEVICE_CODE_GRANT_TYPE, SLOW_DOWN_STEP, claimVersion, deviceCodeId, readDeviceState, writeDeviceState } from '../device/state.js';
import type { GrantContext, GrantHandler } from './grant.js';
import { issueTokens, mayRefresh, resolveTokenResources } from './issue.js';

const INVALID = 'The device code is invalid, expired or already used';
const PENDING = 'The user has not yet approved or denied the request';
const SLOW_DOWN = 'Polling too fast: wait 5 seconds longer between requests';
const DENIED = 'The user denied the request';
const EXPIRED = 'The device code has expired; start a new device authorization';

/**
 * `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5). In order: the device code exists
 * (expired ones are kept a while, to say `expired_token`) and belongs to this client; a code already
 * redeemed is a replay: its grant is revoked (every token from it dies) and the answer is
 * `invalid_grant`; past its expiry → `expired_token`; a poll less than `interval` seconds after the last
 * accepted one → `slow_down`, and the interval grows by 5 s for every later poll; then `authorization_pending`,
 * `access_denied`, or — once approved — the code is consumed atomically and tokens are issued.
 *
 * Concurrency: the poll state (`last_poll`, `interval`) lives in the artifact's data, and every write
 * claims the state's version first (`recordOnce` on (device code, version)), so of several concurrent
 * polls exactly one is accepted and the others get `slow_down`; approval on the verification page takes
 * part in the same protocol, so a poll can never overwrite an approval.
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.5
 */
export const deviceCodeGrant: GrantHandler = {
  type: DEVICE_CODE_GRANT_TYPE,
  async handle(ctx: GrantContext) {
    const { server, client, params } = ctx;
    const code = params.device_code;
    if (code === undefined) throw new OAuthError('invalid_request', 'Missing parameter: device_code');
    const now = server.clock();
    const id = code.length <= 512 ? deviceCodeId(code) : '';
    const record = id === '' ? undefined : await server.storage.findArtifact('device_code', id, now);
    const state = record === undefined ? undefined : readDeviceState(record);
    if (record === undefined || state === undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'unknown device code' });
    if (record.client_id !== client.client_id) throw new OAuthError('invalid_grant', INVALID, { detail: `device code of ${record.client_id} presented by ${client.client_id}` });
    if (record.consumed_at !== undefined) throw await replayed(ctx, state.grant_id);
    if (record.revoked_at !== undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'device code revoked' });
    if (now >= state.expires_at) throw new OAuthError('expired_token', EXPIRED);

    if (state.last_poll !== undefined && now - state.last_poll < state.interval) {
      // Too fast. The penalty is written only if no concurrent poll wrote first (then that one stands).
      if (await claimVersion(server, id, state.version)) await writeDeviceState(server, id, state, { interval: state.interval + SLOW_DOWN_STEP });
      throw new OAuthError('slow_down', SLOW_DOWN);
    }
    // On time: exactly one of concurrent polls wins the version; the others polled too fast.
    if (!(await claimVersion(server, id, state.version))) throw new OAuthError('slow_down', SLOW_DOWN, { detail: 'concurrent poll' });
    await writeDeviceState(server, id, state, { last_poll: now });
    if (state.status === 'pending') throw new OAuthError('authorization_pending', PENDING);
    if (state.status === 'denied') throw new OAuthError('access_denied', DENIED);

    // RFC 8707 targets are checked before the device code is spent (a refused resource consumes nothing).
    const scope = record.scope === '' ? [] : record.scope.split(' ');
    const resources = resolveTokenResources(ctx, scope);
    const consumed = await server.storage.consumeArtifact('device_code', id, now);
    if (consumed.status === 'already_consumed') throw await replayed(ctx, state.grant_id);
    if (consumed.status === 'not_found' || consumed.record.revoked_at !== undefined || state.grant_id === undefined) {
      throw new OAuthError('invalid_grant', INVALID, { detail: 'device code expired or revoked' });
    }
    const grant = await server.storage.getGrant(state.grant_id);
    if (grant === undefined || grant.revoked_at !== undefined || grant.expires_at <= now || grant.user_id === undefined) {
      throw new OAuthError('invalid_grant', INVALID, { detail: 'grant revoked' });
    }
    return issueTokens(ctx, {
      grantType: DEVICE_CODE_GRANT_TYPE,
      scope,
      userId: grant.user_id,
      grant,
      refreshToken: mayRefresh(ctx, server.grantTypes()),
      idToken: { includeNonce: false },
      resources,
    });
  },
  /**
   * Delegated mode: the device code is the app's own (the core's device authorization endpoint is
   * not served); the hook answers authorization_pending, slow_down, access_denied, expired_token or tokens.
   */
  async handleDelegated(ctx: GrantContext) {
    if (ctx.params.device_code === undefined) throw new OAuthError('invalid_request', 'Missing parameter: device_code');
    const scope = ctx.server.scopes.resolve(ctx.params.scope, ctx.client);
    return issueTokens(ctx, { grantType: DEVICE_CODE_GRANT_TYPE, scope });
  },
};

/** A second redemption: revoke the grant (and so every token issued from the code). */
async function replayed(ctx: GrantContext, grantId: string | undefined): Promise<OAuthError> {
  const { server, client } = ctx;
  if (grantId !== undefined) await server.storage.revokeGrant(grantId, server.clock());
  server.logger.warn({ event: 'device_code.reuse_detected', client_id: client.client_id, grant_id: grantId }, 'a device code was redeemed twice; its grant is revoked');
  return new OAuthError('invalid_grant', INVALID, { detail: 'device code reused; grant revoked' });
}
