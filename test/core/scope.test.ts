import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isSubset, parseScope } from '../../src/core/scope.js';
import { OAuthError } from '../../src/core/errors.js';

const scopeToken = fc.stringMatching(/^[\x21\x23-\x5b\x5d-\x7e]{1,12}$/);

describe('scope parsing (RFC 6749 §3.3)', () => {
  it('round-trips any list of valid tokens, de-duplicated, in order', () => {
    fc.assert(
      fc.property(fc.array(scopeToken, { maxLength: 10 }), (tokens) => {
        assert.deepEqual(parseScope(tokens.join(' ')), [...new Set(tokens)]);
      }),
    );
  });

  it('refuses any token with a character outside the grammar', () => {
    fc.assert(
      fc.property(scopeToken, fc.constantFrom('"', '\\', '\n', '\t', '\x00', 'é', '\x7f'), (token, bad) => {
        assert.throws(() => parseScope(token + bad), (e: unknown) => e instanceof OAuthError && e.error === 'invalid_scope');
      }),
    );
  });

  it('subset checks', () => {
    assert.equal(isSubset(['a'], ['a', 'b']), true);
    assert.equal(isSubset(['a', 'c'], ['a', 'b']), false);
    assert.equal(isSubset([], []), true);
  });

  it('parses a 60 KiB adversarial string quickly (linear time)', () => {
    const input = 'a '.repeat(30 * 1024);
    assert.deepEqual(parseScope(input), ['a']);
  });
});
