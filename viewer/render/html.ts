import { terminalSafe } from '../../config/safe-text';

/**
 * HTML built only through the `html` tag: every interpolated value is escaped
 * unless it is itself markup made by this tag. Stored text (anyone who can
 * write the bucket chose it) thus always renders as text: `<script>`, event
 * handlers and `javascript:` URLs stay characters on the page, and control or
 * bidi characters show as visible escapes (`\e`, `\u202E`) instead of reordering what is read.
 */

export class Markup {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeText(value: string): string {
  return terminalSafe(value).replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

type Part = Markup | string | number | bigint | boolean | null | undefined | readonly Part[];

function piece(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Markup) return v.text;
  if (Array.isArray(v)) return (v as readonly Part[]).map(piece).join('');
  return escapeText(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Markup {
  let out = strings[0]!;
  values.forEach((v, i) => (out += piece(v) + strings[i + 1]!));
  return new Markup(out);
}

/** A link to one of the viewer's own pages: the path is ours, every parameter URL-encoded (and the whole escaped). */
export function href(path: string, params: Record<string, string | number | null | undefined> = {}): string {
  if (!path.startsWith('/') || path.startsWith('//')) throw new Error(`not a viewer path: ${path}`);
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

/** Any JSON value as indented text (rendered escaped, inside <pre>). */
export function jsonText(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return JSON.stringify(value);
  return JSON.stringify(value, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2) ?? '';
}
