/**
 * End to end: the device authorization grant (RFC 8628) against the ready-to-run server in a child
 * process. openid-client v6 plays the device (initiateDeviceAuthorization + pollDeviceAuthorizationGrant)
 * while headless Chromium plays the user on the verification page: approve, deny, and a code that
 * expires (a second server with ttl.deviceCode = 5 s). The three flows run concurrently: each mostly
 * waits for the 5 s polling interval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import type { Page } from 'playwright-core';
import { newPage, screenshot } from '../helpers/browser.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = { id: 'living-room-tv', secret: 'living-room-tv-secret-0123456789', name: 'Living Room TV' };
const CLI = { id: 'device-cli' };
const ALICE = { username: 'alice', password: 'alice-password-123', id: 'user-alice' };

let server: SpawnedServer;
/** Same clients and user, but device codes live 5 seconds. */
let shortLived: SpawnedServer;

function config(issuer: string): Record<string, unknown> {
  return {
    issuer,
    clients: [
      {
        client_id: TV.id,
        client_secret: TV.secret,
        client_name: TV.name,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [DEVICE_GRANT, 'refresh_token'],
        scope: 'openid profile offline_access api:read',
      },
      { client_id: CLI.id, token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'api:read' },
    ],
    users: [{ username: ALICE.username, password: ALICE.password, id: ALICE.id, claims: { name: 'Alice Liddell' } }],
  };
}

before(async () => {
  [server, shortLived] = await Promise.all([
    spawnServer({ config: ({ issuer }) => config(issuer) }),
    spawnServer({ config: ({ issuer }) => ({ ...config(issuer), ttl: { deviceCode: 5 } }) }),
  ]);
});

after(async () => {
  await Promise.all([server?.stop(), shortLived?.stop()]);
});

function tvConfig(issuer: string): Promise<client.Configuration> {
  return client.discovery(new URL(issuer), TV.id, { id_token_signed_response_alg: 'ES256' }, client.ClientSecretBasic(TV.secret), { execute: [client.allowInsecureRequests] });
}

function cliConfig(issuer: string): Promise<client.Configuration> {
  return client.discovery(new URL(issuer), CLI.id, undefined, client.None(), { execute: [client.allowInsecureRequests] });
}

/** Settle a promise into a value now, so a rejection while the browser works is never unhandled. */
function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function assertOAuthError(result: { ok: boolean; error?: unknown }, error: string): void {
  assert.equal(result.ok, false, 'the poll must fail');
  const err = result.error;
  assert.ok(err instanceof client.ResponseBodyError, `a ResponseBodyError, got ${String(err)}`);
  assert.equal(err.error, error);
  assert.equal(err.status, 400);
}

async function signIn(page: Page): Promise<void> {
  await page.locator('input[name=username]').fill(ALICE.username);
  await page.locator('input[name=password]').fill(ALICE.password);
  await Promise.all([page.waitForURL(/\/device\/login$/), page.getByRole('button', { name: 'Sign in' }).click()]);
}

describe('device authorization grant, end to end', { concurrency: 3 }, () => {
  it('discovery advertises the device authorization endpoint and grant', async () => {
    const metadata = (await tvConfig(server.issuer)).serverMetadata();
    assert.equal(metadata.device_authorization_endpoint, `${server.issuer}/device_authorization`);
    assert.ok(metadata.grant_types_supported?.includes(DEVICE_GRANT));
  });

  it('approve: the device polls while the user signs in and allows it in the browser; the poll resolves with tokens', async () => {
    const tv = await tvConfig(server.issuer);
    const authorization = await client.initiateDeviceAuthorization(tv, { scope: 'openid profile offline_access api:read' });
    assert.match(authorization.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(authorization.verification_uri, `${server.issuer}/device`);
    assert.equal(authorization.interval, 5);
    assert.equal(authorization.expires_in, 600);
    const polled = settle(client.pollDeviceAuthorizationGrant(tv, authorization));

    const { context, page } = await newPage();
    try {
      await page.goto(authorization.verification_uri_complete!);
      await page.getByRole('heading', { name: 'Connect a device' }).waitFor();
      assert.equal(await page.locator('input[name=user_code]').inputValue(), authorization.user_code, 'prefilled, not submitted');
      await screenshot(page, 'device-code');
      await Promise.all([page.waitForURL(/\/device$/), page.getByRole('button', { name: 'Continue' }).click()]);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.match(await page.locator('main').innerText(), /Living Room TV/);
      await screenshot(page, 'device-login');
      await signIn(page);
      await page.getByRole('heading', { name: 'Allow Living Room TV on your device?' }).waitFor();
      assert.equal(await page.locator('.user-code').innerText(), authorization.user_code, 'the code to compare with the device');
      assert.match(await page.locator('main').innerText(), /Signed in as Alice Liddell/);
      await screenshot(page, 'device-confirm');
      await Promise.all([page.waitForURL(/\/device\/confirm$/), page.getByRole('button', { name: 'Allow' }).click()]);
      await page.getByRole('heading', { name: 'Device connected' }).waitFor();
      assert.match(await page.locator('main').innerText(), /return to your device/);
      await screenshot(page, 'device-done');
    } finally {
      await context.close();
    }

    const result = await polled;
    assert.ok(result.ok, `the poll resolved: ${result.ok ? '' : String(result.error)}`);
    const tokens = result.value;
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, 'openid profile offline_access api:read');
    assert.equal(typeof tokens.refresh_token, 'string');
    const claims = tokens.claims();
    assert.equal(claims?.sub, ALICE.id);
    assert.equal(claims?.aud, TV.id);
    assert.equal(jose.decodeJwt(tokens.access_token).sub, ALICE.id);
    // The access token works at userinfo; the refresh token refreshes.
    const userinfo = await client.fetchUserInfo(tv, tokens.access_token, ALICE.id);
    assert.equal(userinfo.name, 'Alice Liddell');
    const refreshed = await client.refreshTokenGrant(tv, tokens.refresh_token!);
    assert.equal(jose.decodeJwt(refreshed.access_token).sub, ALICE.id);
  });

  it('deny: a public device client gets access_denied', async () => {
    const cli = await cliConfig(server.issuer);
    const authorization = await client.initiateDeviceAuthorization(cli, { scope: 'api:read' });
    const polled = settle(client.pollDeviceAuthorizationGrant(cli, authorization));

    const { context, page } = await newPage();
    try {
      // The user types the code by hand, in lower case with a space.
      await page.goto(authorization.verification_uri);
      await page.locator('input[name=user_code]').fill(authorization.user_code.toLowerCase().replace('-', ' '));
      await Promise.all([page.waitForURL(/\/device$/), page.getByRole('button', { name: 'Continue' }).click()]);
      await signIn(page);
      await page.getByRole('heading', { name: 'Allow device-cli on your device?' }).waitFor();
      await Promise.all([page.waitForURL(/\/device\/confirm$/), page.getByRole('button', { name: 'Deny' }).click()]);
      await page.getByRole('heading', { name: 'Access denied' }).waitFor();
      await screenshot(page, 'device-denied');
      // The code cannot be used again.
      await page.goto(authorization.verification_uri_complete!);
      await Promise.all([page.waitForURL(/\/device$/), page.getByRole('button', { name: 'Continue' }).click()]);
      assert.equal(await page.getByRole('alert').innerText(), 'This code has already been used. Start again on your device.');
      await screenshot(page, 'device-code-used');
    } finally {
      await context.close();
    }
    assertOAuthError(await polled, 'access_denied');
  });

  it('expiry: nobody approves a 5-second code; the poll rejects with expired_token and the page says expired', async () => {
    const tv = await tvConfig(shortLived.issuer);
    const authorization = await client.initiateDeviceAuthorization(tv, { scope: 'api:read' });
    assert.equal(authorization.expires_in, 5);
    // openid-client stops polling after expires_in on its own; give it longer, so the server says expired_token.
    const polled = settle(client.pollDeviceAuthorizationGrant(tv, authorization, undefined, { signal: AbortSignal.timeout(30_000) }));
    assertOAuthError(await polled, 'expired_token');

    const { context, page } = await newPage();
    try {
      await page.goto(authorization.verification_uri_complete!);
      await Promise.all([page.waitForURL(/\/device$/), page.getByRole('button', { name: 'Continue' }).click()]);
      assert.equal(await page.getByRole('alert').innerText(), 'This code has expired. Start again on your device.');
      await screenshot(page, 'device-code-expired');
      // A wrong code, for the screenshot of that message.
      await page.locator('input[name=user_code]').fill('ZZZZ-ZZZZ');
      await Promise.all([page.waitForURL(/\/device$/), page.getByRole('button', { name: 'Continue' }).click()]);
      assert.match(await page.getByRole('alert').innerText(), /^That code is not valid/);
      await screenshot(page, 'device-code-wrong');
    } finally {
      await context.close();
    }
  });
});
