import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { run, type CliIo } from '../../src/cli/main.js';
import { basic, cleanup, jwtHeader, runCli, spawnCli, stop, tempDir, waitForOutput } from './helpers.js';

after(cleanup);

/** A fresh working directory with its own SQLite database. */
function workspace(): { cwd: string; env: Record<string, string> } {
  const cwd = tempDir();
  return { cwd, env: { DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}` } };
}

const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;

describe('run() in process', () => {
  function io(env: Record<string, string>): CliIo & { stdout: () => string; stderr: () => string } {
    let out = '';
    let err = '';
    return {
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      env,
      cwd: tempDir(),
      readStdin: async () => undefined,
      stdout: () => out,
      stderr: () => err,
    };
  }

  test('importing main.ts does not run the CLI; run() resolves with the exit code', async () => {
    const ok = io({ DATABASE_URL: 'memory:' });
    assert.equal(await run(['clients', 'list', '--json'], ok), 0);
    assert.equal(ok.stdout(), '[]\n');
    const version = io({});
    assert.equal(await run(['--version'], version), 0);
    assert.match(version.stdout(), /^\d+\.\d+\.\d+\n$/);
    const missing = io({ DATABASE_URL: 'memory:' });
    assert.equal(await run(['users', 'add', 'erin'], missing), 1);
    assert.equal(missing.stderr(), 'portcullis: no password: give --password, or pipe it on stdin\n');
  });
});

describe('portcullis clients', () => {
  test('clients add prints a generated secret once; clients list --json shows the client without any secret', async () => {
    const ws = workspace();
    const added = await runCli(['clients', 'add', 'svc', '--scope', 'api:read api:write', '--name', 'Service'], ws);
    assert.equal(added.code, 0, added.stderr);
    const secret = /client_secret: (\S+)/.exec(added.stdout)?.[1];
    assert.ok(secret !== undefined && secret.length >= 43, added.stdout);

    const listed = await runCli(['clients', 'list', '--json'], ws);
    assert.equal(listed.code, 0, listed.stderr);
    const clients = JSON.parse(listed.stdout) as Record<string, unknown>[];
    assert.equal(clients.length, 1);
    const [client] = clients;
    assert.equal(client?.client_id, 'svc');
    assert.equal(client?.client_name, 'Service');
    assert.equal(client?.scope, 'api:read api:write');
    assert.equal(client?.token_endpoint_auth_method, 'client_secret_basic');
    assert.deepEqual(client?.grant_types, ['client_credentials']);
    assert.ok(!('client_secret' in client!) && !('client_secret_hash' in client!) && !('client_secret_encrypted' in client!));
    assert.ok(!listed.stdout.includes(secret), 'the secret is never listed');
    assert.ok(!listed.stdout.includes('sha256$'), 'nor its hash');

    const human = await runCli(['clients', 'list'], ws);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^CLIENT_ID\s+AUTH_METHOD/m);
    assert.match(human.stdout, /^svc\s+client_secret_basic\s+client_credentials\s+api:read api:write\s+Service$/m);
  });

  test('clients add with --public and redirect URIs, a duplicate, and remove', async () => {
    const ws = workspace();
    const pub = await runCli(['clients', 'add', 'spa', '--public', '--grant-types', 'refresh_token', '--redirect-uri', 'http://127.0.0.1:8080/cb', '--redirect-uri', 'https://app.example.com/cb', '--json'], ws);
    assert.equal(pub.code, 0, pub.stderr);
    const body = JSON.parse(pub.stdout) as { client: Record<string, unknown>; client_secret?: string };
    assert.equal(body.client_secret, undefined);
    assert.equal(body.client.token_endpoint_auth_method, 'none');
    assert.deepEqual(body.client.redirect_uris, ['http://127.0.0.1:8080/cb', 'https://app.example.com/cb']);

    const again = await runCli(['clients', 'add', 'spa', '--public', '--grant-types', 'refresh_token'], ws);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^portcullis: client "spa" already exists/);

    const removed = await runCli(['clients', 'remove', 'spa'], ws);
    assert.equal(removed.code, 0, removed.stderr);
    const missing = await runCli(['clients', 'remove', 'spa'], ws);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'portcullis: no client "spa"\n');
  });

  test('invalid client metadata exits 1 naming the field, without a stack trace', async () => {
    const ws = workspace();
    const bad = await runCli(['clients', 'add', 'web', '--redirect-uri', 'http://evil.example/cb', '--grant-types', 'client_credentials'], ws);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^portcullis: client "web": field "redirect_uris"/);
    assert.doesNotMatch(bad.stderr, STACK_LINE);
  });
});

describe('portcullis users', () => {
  test('users add reads the password from stdin; users list shows the user without the hash', async () => {
    const ws = workspace();
    const added = await runCli(['users', 'add', 'alice', '--claims', '{"email":"alice@example.com"}'], { ...ws, input: 'correct horse battery\n' });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^User "alice" added \(id [0-9a-f-]{36}\)\.$/m);

    const withFlag = await runCli(['users', 'add', 'bob', '--password', 'another password'], ws);
    assert.equal(withFlag.code, 0, withFlag.stderr);

    const listed = await runCli(['users', 'list', '--json'], ws);
    assert.equal(listed.code, 0, listed.stderr);
    const users = JSON.parse(listed.stdout) as Record<string, unknown>[];
    assert.deepEqual(users.map((u) => u.username), ['alice', 'bob']);
    assert.deepEqual(users[0]?.claims, { email: 'alice@example.com' });
    assert.equal(users[0]?.has_password, true);
    assert.ok(!listed.stdout.includes('password_hash') && !listed.stdout.includes('$argon2'), 'no hash is listed');

    const human = await runCli(['users', 'list'], ws);
    assert.match(human.stdout, /^alice\s+[0-9a-f-]{36}\s+yes\s+email$/m);

    const duplicate = await runCli(['users', 'add', 'alice', '--password', 'yet another one'], ws);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /^portcullis: user "alice" already exists/);

    const removed = await runCli(['users', 'remove', 'bob'], ws);
    assert.equal(removed.code, 0, removed.stderr);
    const after = JSON.parse((await runCli(['users', 'list', '--json'], ws)).stdout) as unknown[];
    assert.equal(after.length, 1);
  });

  test('users add without a password (stdin empty) exits 1', async () => {
    const ws = workspace();
    const result = await runCli(['users', 'add', 'carol'], { ...ws, input: '' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^portcullis: no password/);
  });

  test('users add with claims that are not a JSON object exits 1', async () => {
    const ws = workspace();
    const result = await runCli(['users', 'add', 'dave', '--password', 'long enough', '--claims', '[1]'], ws);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'portcullis: --claims: must be a JSON object\n');
  });
});

describe('portcullis keys', () => {
  test('keys list shows one key per algorithm (ES256 signs tokens, RS256 ID tokens for clients that need it); keys rotate --now adds a second ES256 key that signs at once', async () => {
    const ws = workspace();
    const first = await runCli(['keys', 'list', '--json'], ws);
    assert.equal(first.code, 0, first.stderr);
    const all = JSON.parse(first.stdout) as { kid: string; alg: string; signing: boolean; status: string }[];
    assert.deepEqual(all.map((k) => k.alg).sort(), ['ES256', 'RS256']);
    const before = all.filter((k) => k.alg === 'ES256');
    assert.equal(before.length, 1);
    assert.equal(before[0]?.signing, true);
    assert.ok(!first.stdout.includes('private'), 'only public information is listed');

    const rotated = await runCli(['keys', 'rotate', '--now'], ws);
    assert.equal(rotated.code, 0, rotated.stderr);
    const kid = /signing key (\S+): published now, signs now\./.exec(rotated.stdout)?.[1];
    assert.ok(kid !== undefined, rotated.stdout);

    const second = await runCli(['keys', 'list', '--json'], ws);
    const keys = (JSON.parse(second.stdout) as { kid: string; alg: string; signing: boolean; status: string }[]).filter((k) => k.alg === 'ES256');
    assert.equal(keys.length, 2);
    assert.deepEqual(keys.find((k) => k.signing)?.kid, kid);
    assert.equal(keys.find((k) => k.kid === before[0]?.kid)?.status, 'retiring');

    const delayed = await runCli(['keys', 'rotate'], ws);
    assert.equal(delayed.code, 0, delayed.stderr);
    assert.match(delayed.stdout, /published now, signs at \S+ \(in 600 s\)\./);
    const human = await runCli(['keys', 'list'], ws);
    assert.match(human.stdout, /^KID\s+ALG\s+STATUS/m);
    assert.match(human.stdout, new RegExp(`^${kid!.replace(/[-]/g, '\\-')}\\s+ES256\\s+active, signing`, 'm'));
    assert.match(human.stdout, /\s+ES256\s+pending\s+/);
  });
});

describe('portcullis errors', () => {
  test('an invalid config file exits 1 with a message naming the field and no stack trace', async () => {
    const ws = workspace();
    writeFileSync(join(ws.cwd, 'portcullis.config.json'), JSON.stringify({ ttl: { accessToken: 0 }, clients: [] }));
    for (const args of [['start'], [], ['clients', 'list']]) {
      const result = await runCli(args, { ...ws, env: { ...ws.env, PORT: '0' } });
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stdout}`);
      assert.equal(result.stderr, 'portcullis: config: ttl.accessToken: must be a positive integer (seconds)\n');
      assert.equal(result.stdout, '');
    }
  });

  test('a config client with a bad redirect URI names the client and the field', async () => {
    const ws = workspace();
    writeFileSync(
      join(ws.cwd, 'portcullis.config.json'),
      JSON.stringify({ clients: [{ client_id: 'web', client_secret: 'a-long-client-secret', redirect_uris: ['https://ok.example/cb', 'https://x.example/cb#frag'] }] }),
    );
    const result = await runCli(['start'], { ...ws, env: { ...ws.env, PORT: '0' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^portcullis: config: clients\[0\]: client "web": field "redirect_uris" has "https:\/\/x\.example\/cb#frag": a fragment is not allowed\n$/);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });

  test('with DEBUG=portcullis the stack is printed too', async () => {
    const ws = workspace();
    const result = await runCli(['clients', 'remove', 'ghost'], { ...ws, env: { ...ws.env, DEBUG: 'portcullis' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^portcullis: no client "ghost"\n/);
    assert.match(result.stderr, STACK_LINE);
  });

  test('an unknown command or option exits 1', async () => {
    const ws = workspace();
    const command = await runCli(['frobnicate'], ws);
    assert.equal(command.code, 1);
    assert.match(command.stderr, /unknown command 'frobnicate'/);
    const option = await runCli(['clients', 'list', '--yaml'], ws);
    assert.equal(option.code, 1);
    assert.match(option.stderr, /unknown option '--yaml'/);
    const port = await runCli(['start', '--port', 'http'], ws);
    assert.equal(port.code, 1);
    assert.equal(port.stderr, 'portcullis: --port: must be an integer from 0 to 65535\n');
  });

  test('DATABASE_URL=postgres://… that cannot be reached: one line naming the outage, no password, exit 1', async () => {
    const ws = workspace();
    const result = await runCli(['clients', 'list'], { ...ws, env: { DATABASE_URL: 'postgres://user:pw-s3cret@127.0.0.1:1/db' } });
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'portcullis: PostgreSQL storage unavailable (ECONNREFUSED)\n');
    assert.ok(!result.stdout.includes('s3cret'));
  });
});

describe('portcullis start', () => {
  test('prints the banner, serves /healthz and a token for the demo client, exits 0 on SIGTERM; a restart keeps the client and the key', async () => {
    const ws = workspace();
    const env = { ...ws.env, PORT: '0' };
    const bannerEnd = /Stop with Ctrl-C/;

    // First run: a demo client is created and its secret printed once.
    const first = spawnCli(['start'], { cwd: ws.cwd, env });
    const { output } = await waitForOutput(first, bannerEnd);
    const banner = output();
    const issuer = /^\s*issuer:\s+(http:\/\/127\.0\.0\.1:(\d+))$/m.exec(banner);
    assert.ok(issuer !== null, banner);
    const [, base, port] = issuer;
    assert.notEqual(port, '0', 'the issuer names the real port');
    assert.match(banner, new RegExp(`discovery:\\s+${base}/\\.well-known/openid-configuration`));
    const secret = /client_secret:\s+(\S+)/.exec(banner)?.[1];
    assert.ok(secret !== undefined, banner);
    assert.ok(
      banner.includes(`curl -s -u demo-client:${secret} -d grant_type=client_credentials -d scope=api:read ${base}/token`),
      banner,
    );
    assert.match(banner, /! the issuer .* uses plain http/);
    assert.match(banner, /! no key-encryption secret/);

    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    const discovery = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as { issuer: string };
    assert.equal(discovery.issuer, base);

    const token = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: basic('demo-client', secret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=api%3Aread',
    });
    assert.equal(token.status, 200);
    const body = (await token.json()) as { access_token: string; token_type: string; scope?: string };
    assert.equal(body.token_type, 'Bearer');
    const kid = jwtHeader(body.access_token).kid;
    assert.equal(typeof kid, 'string');
    assert.ok(!output().includes(body.access_token), 'tokens are not logged');

    const stopped = await stop(first, 'SIGTERM', 5000);
    assert.equal(stopped.code, 0);

    // Second run on the same data: no new demo client, the first secret and the key still work.
    const second = spawnCli(['start'], { cwd: ws.cwd, env });
    const again = await waitForOutput(second, bannerEnd);
    const banner2 = again.output();
    assert.doesNotMatch(banner2, /A demo client was created/);
    assert.doesNotMatch(banner2, /client_secret/);
    assert.match(banner2, /! the demo client demo-client is registered/);
    const base2 = /^\s*issuer:\s+(http:\/\/127\.0\.0\.1:\d+)$/m.exec(banner2)?.[1];
    assert.ok(base2 !== undefined, banner2);

    const token2 = await fetch(`${base2}/token`, {
      method: 'POST',
      headers: { authorization: basic('demo-client', secret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=api%3Aread',
    });
    assert.equal(token2.status, 200);
    const body2 = (await token2.json()) as { access_token: string };
    assert.equal(jwtHeader(body2.access_token).kid, kid, 'the signing key survives a restart');

    assert.equal((await stop(second, 'SIGINT', 5000)).code, 0);

    const clients = JSON.parse((await runCli(['clients', 'list', '--json'], ws)).stdout) as { client_id: string }[];
    assert.deepEqual(clients.map((c) => c.client_id).sort(), ['demo-client', 'demo-web']);
  });

  test('with a config file no demo client is created; config clients are registered', async () => {
    const ws = workspace();
    writeFileSync(
      join(ws.cwd, 'portcullis.config.json'),
      JSON.stringify({
        clients: [{ client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['client_credentials'], scope: 'api:read' }],
        scopes: ['api:read'],
      }),
    );
    const child = spawnCli(['start', '--port', '0'], { cwd: ws.cwd, env: ws.env });
    const { output } = await waitForOutput(child, /Stop with Ctrl-C/);
    const banner = output();
    assert.doesNotMatch(banner, /demo client/i);
    const base = /^\s*issuer:\s+(http:\/\/127\.0\.0\.1:\d+)$/m.exec(banner)?.[1];
    const token = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: basic('svc', 'a-long-client-secret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    assert.equal(token.status, 200);
    assert.equal((await stop(child)).code, 0);
  });
});
