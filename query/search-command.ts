import { oneLine } from '../config/bin';
import { readEnv } from '../config/env';
import { UsageError, parseFormat, parseInstant } from './args';
import { render } from './format';
import type { HistoryEvent } from './history';
import type { RejectedIndex } from './locate';
import { normalizeSearch, openSearchContext, runSearch } from './search';

export interface SearchFlags {
  actor?: string;
  tenant?: string;
  action?: string;
  since?: string;
  until?: string;
  limit?: string;
  cursor?: string;
  format?: string;
  stats?: boolean;
  asOf?: string;
  diff?: boolean;
}

export interface SearchOutput {
  write(text: string): Promise<void>;
  tableRow(e: HistoryEvent): Record<string, unknown>;
  reportRejected(rejected: RejectedIndex[]): void;
}

/**
 * `audit-query --actor ID | --tenant ID | --action NAME` without --object: one
 * page of activity across objects on stdout in the chosen format; the cursor of
 * the next page on stderr (`next-cursor: ...`, absent on the last page), then
 * --stats' line.
 */
export async function runSearchCommand(flags: SearchFlags, out: SearchOutput): Promise<number> {
  if (flags.asOf !== undefined || flags.diff) throw new UsageError('--as-of and --diff need --object');
  const format = parseFormat(flags.format, Boolean(process.stdout.isTTY));
  let limit: number | undefined;
  if (flags.limit !== undefined) {
    if (!/^\d{1,7}$/.test(flags.limit)) throw new UsageError(`--limit must be a whole number (got ${JSON.stringify(flags.limit)})`);
    limit = Number(flags.limit);
  }
  const query = normalizeSearch({
    ...(flags.actor !== undefined ? { actor: flags.actor } : {}),
    ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
    ...(flags.action !== undefined ? { action: flags.action } : {}),
    sinceUs: flags.since ? parseInstant('--since', flags.since) : null,
    untilUs: flags.until ? parseInstant('--until', flags.until, true) : null,
    ...(limit !== undefined ? { limit } : {}),
  });
  const ctx = await openSearchContext(readEnv());
  try {
    const { page, stats } = await runSearch(ctx, query, flags.cursor ?? null);
    const rows = format === 'table' ? page.events.map(out.tableRow) : (page.events as unknown as Record<string, unknown>[]);
    await out.write(render(rows, format));
    if (page.events.length === 0 && format === 'table') process.stderr.write('no events\n');
    if (page.next !== null) process.stderr.write(`next-cursor: ${page.next}\n`);
    out.reportRejected(ctx.rejected());
    if (flags.stats) process.stderr.write(`${JSON.stringify(stats)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(oneLine(err.message));
    throw err;
  } finally {
    ctx.close();
  }
}
