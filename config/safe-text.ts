/**
 * Text from the store (usernames, error messages, object keys: written by
 * applications, or by anyone who can write to the bucket) shown to a person.
 * A terminal acts on control characters (ESC starts sequences that move the
 * cursor, clear the screen, retitle the window or write to the clipboard; CR
 * and backspace overwrite what was printed) and bidi controls reorder what is
 * displayed, so stored text could make an auditor read something it does not
 * say. These helpers are the one place deciding how such text is shown.
 */

/** C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
/** The same less C0, which JSON.stringify escapes inside strings and uses raw (newlines) between values. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e', '\u0007': '\\a', '\b': '\\b' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0').toUpperCase()}` : `\\u${code.toString(16).padStart(4, '0').toUpperCase()}`;
}

/**
 * Every control or reordering character shown as a visible escape (`\e`, `\r`,
 * `\x9B`, `\u202E`), so the text prints on one line exactly as stored. Backslashes
 * are left alone: a stored `\e` reads the same as an escaped ESC, which misleads
 * nobody about what the screen shows.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * The same, but lossless inside JSON text: JSON.stringify already escapes C0
 * controls; DEL, C1 and bidi characters (never outside a string) become `\uXXXX`, which every JSON reader
 * decodes back to the original value.
 */
export function jsonTerminalSafe(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A CSV cell a spreadsheet will not run (OWASP's CSV injection rule): a value
 * starting with `=`, `+`, `-`, `@`, tab or CR is prefixed with a single quote,
 * unless it is a plain number (`-5`, `+1.5e3` are values, not formulas).
 * Terminal-unsafe characters are escaped too (a CSV is also read with `cat`),
 * except newlines and tabs, which CSV quoting carries and a terminal only
 * moves on from; a CR would overwrite the line, so it is escaped.
 */
export function csvSafe(text: string): string {
  const neutral = /^[=+\-@\t\r]/.test(text) && !/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text) ? `'${text}` : text;
  return neutral.replace(UNSAFE, (c) => (c === '\n' || c === '\t' ? c : escapeChar(c)));
}

/**
 * Text for a printed report (the viewer's PDF export): control and reordering
 * characters removed, not escaped, since a reader of paper cannot act on them and
 * escapes would read as data; line breaks and tabs become a visible ` ↵ ` and a space,
 * so a stored value cannot start what looks like another line of the report.
 */
export function printSafe(text: string): string {
  return text.replace(/\r\n|\r|\n/g, ' ↵ ').replace(/\t/g, ' ').replace(UNSAFE, '');
}
