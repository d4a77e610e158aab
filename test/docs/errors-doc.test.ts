import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_STATUS } from '../../src/core/errors.js';

const root = new URL('../../', import.meta.url).pathname;
const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The error codes of the table, with their statuses. */
function documentedCodes(): Map<string, number> {
  const codes = new Map<string, number>();
  for (const match of doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)) codes.set(match[1]!, Number(match[2]));
  return codes;
}

/** Every description the source can send: literals passed to OAuthError or its helpers, and the constants they use. */
function sourceDescriptions(): { codes: Set<string>; descriptions: Set<string>; authorizeCodes: Set<string> } {
  const codes = new Set<string>();
  const descriptions = new Set<string>();
  const authorizeCodes = new Set<string>();
  for (const file of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const constants = new Map<string, string>();
    for (const m of text.matchAll(/const ([A-Z_]+) = '([^']+)'/g)) constants.set(m[1]!, m[2]!);
    for (const m of text.matchAll(/new OAuthError\(\s*'([a-z_]+)',\s*('([^']*)'|`([^`$]*)|([A-Z_]+)\b)/g)) {
      codes.add(m[1]!);
      const literal = m[3] ?? m[4] ?? (m[5] !== undefined ? constants.get(m[5]) : undefined);
      if (literal !== undefined && literal.trim() !== '') descriptions.add(literal.trim());
    }
    for (const m of text.matchAll(/\b(?:invalidRequest|malformed)\('([^']+)'\)/g)) descriptions.add(m[1]!);
    // Authorization endpoint, userinfo challenges and the hosted pages' error pages.
    for (const m of text.matchAll(/(?:new AuthorizeError\(|refuse\(|challenge\(\d+, )'([a-z_]+)',\s*'([^']*)'/g)) {
      authorizeCodes.add(m[1]!);
      descriptions.add(m[2]!);
    }
    for (const m of text.matchAll(/errorPage\(server, \d+, (?:'[a-z_]+', )?'([^']+)'/g)) descriptions.add(m[1]!);
    for (const m of text.matchAll(/loginPage\(server, request, \d+, ([A-Z_]+)/g)) {
      const literal = constants.get(m[1]!);
      if (literal !== undefined) descriptions.add(literal);
    }
    for (const m of text.matchAll(/export const [A-Z_]*DESCRIPTION = '([^']+)'/g)) descriptions.add(m[1]!);
    for (const m of text.matchAll(/"error":"([a-z_]+)","error_description":"([^"]+)"/g)) {
      codes.add(m[1]!);
      descriptions.add(m[2]!);
    }
  }
  return { codes, descriptions, authorizeCodes };
}

describe('docs/errors.md matches the code', () => {
  const documented = documentedCodes();
  const source = sourceDescriptions();

  it('documents every error code with its status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      assert.equal(documented.get(code), status, `docs/errors.md lists ${code} with status ${status}`);
    }
    for (const code of source.codes) assert.ok(documented.has(code), `docs/errors.md lists ${code}`);
  });

  it('lists no code the code does not have', () => {
    for (const code of documented.keys()) {
      assert.ok(code in ERROR_STATUS || source.codes.has(code) || source.authorizeCodes.has(code), `${code} in docs/errors.md exists in the code`);
    }
  });

  it('documents every authorization-endpoint and bearer error code', () => {
    assert.ok(source.authorizeCodes.size >= 8, `found ${source.authorizeCodes.size} codes`);
    for (const code of source.authorizeCodes) assert.ok(doc.includes('`' + code + '`'), `docs/errors.md lists ${code}`);
  });

  it('documents every description the code can send', () => {
    assert.ok(source.descriptions.size >= 30, `found ${source.descriptions.size} descriptions`);
    for (const description of source.descriptions) {
      assert.ok(doc.includes('`' + description), `docs/errors.md lists the description "${description}"`);
    }
  });
});
