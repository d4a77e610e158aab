/**
 * The type-level tests (test-d/, jose's `test-d` style) compile: tsc -p test-d fails when a
 * `@ts-expect-error` line stops being an error (e.g. refreshTokenRoute appears on a
 * client-credentials builder, or a helper becomes optional) or when a valid use stops compiling.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe('type-level tests of the flow builders (tsc -p test-d)', () => {
  it('compile, with every @ts-expect-error an error', { timeout: 120_000 }, async () => {
    const source = readFileSync(new URL('../../test-d/builders.test-d.ts', import.meta.url), 'utf8');
    assert.ok((source.match(/@ts-expect-error/g) ?? []).length >= 20, 'the expectations are there');
    const result = await run(process.execPath, [tsc, '-p', 'test-d/tsconfig.json', '--pretty', 'false'], { cwd: root }).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, stdout: err.stdout ?? '' }),
    );
    assert.equal(result.code, 0, result.stdout);
  });
});
