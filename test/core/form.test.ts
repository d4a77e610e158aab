import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseForm, parseUrlEncoded } from '../../src/core/form.js';
import { OAuthError } from '../../src/core/errors.js';
import type { OAuthRequest } from '../../src/core/http.js';

const req = (body: string | Uint8Array | Record<string, unknown>, contentType = 'application/x-www-form-urlencoded'): OAuthRequest => ({
  method: 'POST',
  path: '/token',
  query: '',
  headers: { 'content-type': contentType },
  body,
});

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof OAuthError, `threw a non-OAuth error: ${String(e)}`);
    return e.error;
  }
}

describe('form body parsing (RFC 6749 §3.1, App. B)', () => {
  it('round-trips any set of distinct keys and values encoded by URLSearchParams', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), fc.string({ minLength: 1 })), (dict) => {
        const body = new URLSearchParams(dict).toString();
        const parsed = parseForm(req(body));
        for (const [k, v] of Object.entries(dict)) assert.equal(parsed[k], v);
        assert.equal(Object.keys(parsed).length, Object.keys(dict).length);
      }),
    );
  });

  it('any parameter sent twice is invalid_request', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), fc.string(), (key, a, b) => {
        const p = new URLSearchParams();
        p.append(key, a);
        p.append(key, b);
        assert.equal(code(() => parseForm(req(p.toString()))), 'invalid_request');
      }),
    );
  });

  it('never throws anything but an OAuthError, on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        code(() => parseForm(req(bytes)));
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 256 }), (text) => {
        code(() => parseForm(req(text)));
      }),
    );
  });

  it('keeps prototype keys as plain data', () => {
    const parsed = parseForm(req('__proto__=x&constructor=y&toString=z&hasOwnProperty=w'));
    assert.equal(Object.getPrototypeOf(parsed), null);
    assert.equal(parsed.__proto__, 'x');
    assert.equal(parsed.constructor, 'y');
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  it('decodes + as space and percent escapes', () => {
    assert.equal(parseForm(req('a=b+c%2Bd%20e'))['a'], 'b c+d e');
  });

  it('an empty value counts as absent', () => {
    assert.equal(parseForm(req('scope=&a=1'))['scope'], undefined);
  });

  it('enforces the byte cap, the content type and the method', () => {
    assert.equal(code(() => parseForm(req('a=' + 'x'.repeat(100)), 50)), 'invalid_request');
    assert.equal(code(() => parseForm(req('a=1', 'application/json'))), 'invalid_request');
    assert.equal(code(() => parseForm(req('a=1', 'application/x-www-form-urlencoded; charset=utf-8'))), undefined);
    assert.equal(code(() => parseForm({ ...req('a=1'), method: 'GET' })), 'invalid_request');
  });

  it('accepts a body a framework already parsed, with the same rules', () => {
    assert.equal(parseForm(req({ a: '1' }))['a'], '1');
    assert.equal(code(() => parseForm(req({ a: ['1', '2'] }))), 'invalid_request');
    assert.equal(code(() => parseForm(req({ a: { b: 'c' } }))), 'invalid_request');
  });

  it('lets named parameters repeat', () => {
    const parsed = parseUrlEncoded('resource=a&resource=b&x=1', ['resource']);
    assert.deepEqual(parsed.all['resource'], ['a', 'b']);
    assert.equal(parsed.single['resource'], 'a', 'the first value is the single one');
    assert.equal(parsed.all['x'], undefined, 'only the named parameters are listed in all');
    assert.equal(parsed.single['x'], '1');
    assert.deepEqual(Object.keys(parseUrlEncoded('&&a=1&&b&', []).single), ['a']);
    assert.equal(code(() => parseUrlEncoded('a=&a=1')), 'invalid_request', 'an empty value then a value is a repetition');
    assert.equal(code(() => parseUrlEncoded('a&a')), 'invalid_request');
  });
});
