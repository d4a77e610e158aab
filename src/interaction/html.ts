/**
 * A tiny auto-escaping tagged template for server-rendered pages, in the style of hono's `html` helper.
 *
 *   html`<p>${userInput}</p>`        // userInput is escaped
 *   html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`  // nested HtmlString is not escaped again
 *
 * Every interpolated value is escaped for both text and double- or single-quoted attribute context, unless
 * it is an `HtmlString` (already-safe markup). Escaping does not make a value safe as a URL (`javascript:`),
 * inside `<script>`/`<style>`, or as an unquoted attribute: the templates never put values there.
 */

/** Markup that is already safe: interpolated as is. Create it with `html` (or `raw` for trusted constants). */
export class HtmlString {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes `& < > " '` as HTML entities. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Marks trusted markup as safe. Never pass anything derived from a request, a client or a user. */
export function raw(s: string): HtmlString {
  return new HtmlString(s);
}

function render(value: unknown): string {
  if (value instanceof HtmlString) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** Auto-escaping tagged template: see the module comment. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): HtmlString {
  let out = strings[0] ?? strings.raw[0] ?? '';
  for (let i = 0; i < values.length; i++) {
    out += render(values[i]);
    out += strings[i + 1] ?? strings.raw[i + 1] ?? '';
  }
  return new HtmlString(out);
}
