import { csvSafe, jsonTerminalSafe, terminalSafe } from '../config/safe-text';

export type OutputFormat = 'table' | 'json' | 'ndjson' | 'csv';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'ndjson', 'csv'];

type Row = Record<string, unknown>;

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

/** Formula cells neutralised (csvSafe): ndjson and json carry the raw values for machine readers. */
export function csvCell(v: unknown): string {
  const s = csvSafe(cell(v));
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Columns present in at least one row, in first-seen order, dropping those empty everywhere (table only). */
function columnsOf(rows: readonly Row[], dropEmpty: boolean): string[] {
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (!seen.has(k)) (seen.add(k), cols.push(k));
  return dropEmpty ? cols.filter((c) => rows.some((r) => cell(r[c]) !== '')) : cols;
}

const MAX_CELL = 60;

function table(rows: readonly Row[]): string {
  const names = columnsOf(rows, true);
  const cols = names.map(terminalSafe);
  const text = rows.map((r) => names.map((c) => {
    const s = terminalSafe(cell(r[c])).replace(/\s+/g, ' ');
    return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
  }));
  const widths = cols.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n') + '\n';
}

/**
 * Renders rows; every format is safe to print on a terminal (see
 * config/safe-text.ts): table and csv escape control characters, csv also
 * neutralises formulas, json and ndjson stay lossless (the raw values, for
 * machine readers). Returns '' when there is nothing to print (except `[]` for json).
 */
export function render(rows: readonly Row[], format: OutputFormat): string {
  const replacer = (_k: string, x: unknown) => (typeof x === 'bigint' ? x.toString() : x);
  switch (format) {
    case 'json':
      return `${jsonTerminalSafe(JSON.stringify(rows, replacer, 2))}\n`;
    case 'ndjson':
      return rows.map((r) => jsonTerminalSafe(JSON.stringify(r, replacer))).join('\n') + (rows.length > 0 ? '\n' : '');
    case 'csv': {
      if (rows.length === 0) return '';
      const cols = columnsOf(rows, false);
      return [cols.map(csvCell).join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
    }
    case 'table':
      return rows.length === 0 ? '' : table(rows);
  }
}
