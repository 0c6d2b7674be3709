#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, readEnv } from '../config/env';
import { StorageError } from '../storage';
import { UsageError, parseFormat, parseInstant, parseObjectRef } from './args';
import { render, type OutputFormat } from './format';
import { isoMicros, type HistoryEvent } from './history';
import { AuditQuery } from './query';
import { diffVersions, stateAsOf } from './state';

interface HistoryFlags {
  object?: string;
  since?: string;
  until?: string;
  actor?: string;
  action?: string;
  asOf?: string;
  diff?: boolean;
  format?: string;
  stats?: boolean;
}

/** The table view of an event: what a person reads first; json/ndjson/csv carry every field. */
function tableRow(e: HistoryEvent): Record<string, unknown> {
  const http = e.http_method ? `${e.http_method} ${e.http_path ?? ''} ${e.http_status ?? ''}`.trim() : null;
  const change = e.changes ? e.changes : e.after !== null ? { after: e.after } : null;
  return {
    occurred_at: e.occurred_at,
    action: e.action,
    actor: e.actor_id,
    tenant: e.tenant_id,
    request_id: e.request_id,
    ip: e.ip,
    http,
    error: e.error_message,
    changes: change,
  };
}

function write(text: string): Promise<void> {
  return new Promise((resolve) => (text === '' ? resolve() : process.stdout.write(text, () => resolve())));
}

function progressReporter(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    if (total < 8) return;
    process.stderr.write(`\rfetching ${done}/${total} files${done === total ? '\n' : ''}`);
  };
}

function rangeOf(flags: HistoryFlags) {
  const since = flags.since ? parseInstant('--since', flags.since) : null;
  const until = flags.until ? parseInstant('--until', flags.until, true) : null;
  if (since !== null && until !== null && since > until) throw new UsageError('--since is after --until');
  return { since, until };
}

async function runHistory(flags: HistoryFlags): Promise<number> {
  if (!flags.object) throw new UsageError('--object TYPE:ID is required (or use the sql command)');
  const object = parseObjectRef(flags.object);
  const format: OutputFormat = parseFormat(flags.format, Boolean(process.stdout.isTTY));
  const range = rangeOf(flags);
  const asOf = flags.asOf ? parseInstant('--as-of', flags.asOf, true) : null;
  if (asOf !== null && flags.diff) throw new UsageError('--as-of and --diff cannot be combined');
  const env = readEnv();
  const q = new AuditQuery(env, progressReporter());
  try {
    // As-of rebuilds state from every earlier event, whatever --since says.
    const effective = asOf !== null ? { since: null, until: range.until === null ? asOf : Math.min(asOf, range.until) } : range;
    const events = await q.history({ object, range: effective, actor: flags.actor ?? null, action: flags.action ?? null });
    let rows: Record<string, unknown>[];
    if (asOf !== null) {
      const state = stateAsOf(events, isoMicros(BigInt(asOf)), object.type, object.id);
      rows = format === 'table' || format === 'csv' ? [{ ...state, state: state.state }] : [state as unknown as Record<string, unknown>];
    } else if (flags.diff) {
      rows = diffVersions(events) as unknown as Record<string, unknown>[];
    } else if (format === 'table') {
      rows = events.map(tableRow);
    } else {
      rows = events as unknown as Record<string, unknown>[];
    }
    await write(render(rows, format));
    if (rows.length === 0 && format === 'table') process.stderr.write(`no events for ${object.type}:${object.id}\n`);
    if (flags.stats) process.stderr.write(`${JSON.stringify(q.summary())}\n`);
    return 0;
  } finally {
    q.close();
  }
}

async function runSql(text: string, flags: HistoryFlags): Promise<number> {
  const format = parseFormat(flags.format, Boolean(process.stdout.isTTY));
  const range = rangeOf(flags);
  const q = new AuditQuery(readEnv(), progressReporter());
  try {
    const rows = await q.sql(text, range);
    await write(render(rows, format));
    if (flags.stats) process.stderr.write(`${JSON.stringify(q.summary())}\n`);
    return 0;
  } finally {
    q.close();
  }
}

function formatOption(): Option {
  return new Option('--format <format>', 'table|json|ndjson|csv (default: table on a TTY, ndjson otherwise)');
}

export async function main(argv: string[]): Promise<number> {
  let result: Promise<number> = Promise.resolve(0);
  const program = new Command()
    .name('audit-query')
    .description('Audit history from object storage (store: AUDIT_STORE_URL)')
    .option('--object <TYPE:ID>', 'the object whose history to show, e.g. invoice:42')
    .option('--since <time>', 'only events at or after this ISO-8601 time')
    .option('--until <time>', 'only events at or before this ISO-8601 time (a date alone includes that day)')
    .option('--actor <id>', 'only events by this actor')
    .option('--action <name>', 'only events with this action')
    .option('--as-of <time>', "the object's state at this time, rebuilt from its events")
    .option('--diff', 'field-level changes between consecutive versions')
    .addOption(formatOption())
    .option('--stats', 'print fetch statistics on stderr')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.replace(/^error: /, 'audit-query: ')) })
    .action((flags: HistoryFlags) => {
      result = runHistory(flags);
    });
  program
    .command('sql <query>')
    .description('run SQL over the audit data, as a view named "audit" (analysts)')
    .option('--since <time>', 'only files from this date on')
    .option('--until <time>', 'only files up to this date')
    .addOption(formatOption())
    .option('--stats', 'print fetch statistics on stderr')
    .action((text: string, flags: HistoryFlags) => {
      result = runSql(text, flags);
    });
  try {
    await program.parseAsync(argv);
    return await result;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`audit-query: ${err.message}\n`);
      return 2;
    }
    if (err instanceof StorageError) {
      process.stderr.write(`audit-query: storage unavailable: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`audit-query: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}
