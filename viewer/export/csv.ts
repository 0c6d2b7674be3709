import { csvCell, render } from '../../query/format';
import { resolveFields, type JsonEvent } from './event';

/**
 * The events as CSV, in the same dialect as `audit-query --format csv` (its code, so a
 * download and the command agree): CRLF lines, RFC 4180 quoting, formulas neutralised and
 * control characters escaped (config/safe-text.ts csvSafe), nested values as JSON.
 * `fields` picks and orders the columns (default: every field); an unknown name throws
 * UnknownFieldError. No events: the header line alone, so the file still says what it is.
 */
export function renderCsv(events: readonly JsonEvent[], fields?: readonly string[]): string {
  const columns = resolveFields(fields);
  if (events.length === 0) return `${columns.map(csvCell).join(',')}\r\n`;
  // render() takes its columns from the rows' keys in first-seen order: projected rows fix them.
  const rows = events.map((e) => Object.fromEntries(columns.map((c) => [c, e[c] ?? null])));
  return render(rows, 'csv');
}
