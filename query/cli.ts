import './compile-cache';
import { Command, CommanderError, Option } from 'commander';
import { oneLine, sayError } from '../config/bin';
import { ConfigError, type Env, readEnv } from '../config/env';
import { loadSigner } from '../trust/signing-setup';
import { StorageError, StoreUrlError, dtOfMicros } from '../storage';
import { UsageError, parseFormat, parseInstant, parseObjectRef } from './args';
import { render, type OutputFormat } from './format';
import { isoMicros, type HistoryEvent } from './history';
import { createProgress, type Progress } from './progress';
import { AuditQuery, SqlError } from './query';
import { diffVersions, stateAsOf } from './state';
import type { VerifyFlags } from './verify-command';
import { storageMessage } from './storage-message';

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
  tenant?: string;
  limit?: string;
  cursor?: string;
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

let progress: Progress | undefined;

function progressReporter(): ((done: number, total: number) => void) | undefined {
  progress = createProgress(process.stderr);
  return progress ? (done, total) => progress?.update(done, total) : undefined;
}

function rangeOf(flags: HistoryFlags) {
  const since = flags.since ? parseInstant('--since', flags.since) : null;
  const until = flags.until ? parseInstant('--until', flags.until, true) : null;
  if (since !== null && until !== null && since > until) throw new UsageError('--since is after --until');
  return { since, until };
}

async function runHistory(flags: HistoryFlags): Promise<number> {
  if (!flags.object && (flags.actor !== undefined || flags.tenant !== undefined || flags.action !== undefined)) {
    // Loaded only for a search, like verify: the --object path keeps its start-up light.
    const { runSearchCommand } = await import('./search-command');
    return runSearchCommand(flags, { write, tableRow, reportRejected: (r) => reportRejected({ rejected: () => r }) });
  }
  if (!flags.object) throw new UsageError('--object TYPE:ID is required (or --actor, --tenant or --action for activity across objects, or the sql command)');
  for (const [flag, v] of [['--tenant', flags.tenant], ['--limit', flags.limit], ['--cursor', flags.cursor]] as const) {
    if (v !== undefined) throw new UsageError(`${flag} applies to a search without --object`);
  }
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
    if (rows.length === 0 && format === 'table') process.stderr.write(`${oneLine(`no events for ${object.type}:${object.id}`)}
`);
    reportRejected(q);
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
    reportRejected(q);
    if (flags.stats) process.stderr.write(`${JSON.stringify(q.summary())}\n`);
    return 0;
  } finally {
    q.close();
  }
}

/**
 * Indexes and manifests that failed the trust check: they were ignored and their
 * files read without them (the result is the unindexed one), reported once per run.
 */
function reportRejected(q: Pick<AuditQuery, 'rejected'>): void {
  const rejected = q.rejected();
  if (rejected.length === 0) return;
  const shown = rejected.slice(0, 5).map((r) => `${oneLine(r.message)} (${r.code})`);
  const more = rejected.length > shown.length ? `; and ${rejected.length - shown.length} more` : '';
  process.stderr.write(`audit-query: ignored ${rejected.length} index object(s) that failed the trust check, their data files were read instead (audit-query verify names them; audit-admin maintain rebuilds them): ${shown.join('; ')}${more}\n`);
}


async function runIndexBuild(flags: { since?: string; until?: string; quiet?: boolean }): Promise<number> {
  // Day bounds: a time selects its UTC day (as the dt= partitions do).
  const since = flags.since ? dtOfMicros(parseInstant('--since', flags.since)) : null;
  const until = flags.until ? dtOfMicros(parseInstant('--until', flags.until, true)) : null;
  if (since !== null && until !== null && since > until) throw new UsageError('--since is after --until');
  const env = readEnv();
  const signer = await loadSigner(env);
  const q = new AuditQuery(env, undefined, { signer });
  try {
    const log = flags.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
    const result = await q.buildIndexManifests({ since, until, log });
    await write(`${JSON.stringify(result)}\n`);
    return 0;
  } finally {
    q.close();
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function formatOption(): Option {
  return new Option('--format <format>', 'table|json|ndjson|csv (default: table on a TTY, ndjson otherwise)');
}

/**
 * A subcommand another folder adds to audit-query (the viewer's `serve`, in
 * bin/audit-query.ts): the query engine is used by those folders and never
 * imports them.
 */
export interface Subcommand {
  register(program: Command, run: (result: Promise<number>) => void): void;
}

export async function main(argv: string[], subcommands: readonly Subcommand[] = []): Promise<number> {
  let result: Promise<number> = Promise.resolve(0);
  const program = new Command()
    .name('audit-query')
    .description('Audit history from object storage (store: AUDIT_STORE_URL)')
    .option('--object <TYPE:ID>', 'the object whose history to show, e.g. invoice:42')
    .option('--since <time>', 'only events at or after this ISO-8601 time')
    .option('--until <time>', 'only events at or before this ISO-8601 time (a date alone includes that day)')
    .option('--actor <id>', "only events by this actor (without --object: the actor's events across objects, paged)")
    .option('--action <name>', 'only events with this action (without --object: a search, needs --since and --until)')
    .option('--tenant <id>', "without --object: the tenant's events across objects")
    .option('--limit <n>', 'without --object: events per page (default 100, at most 1000)')
    .option('--cursor <cursor>', 'without --object: the next page (the cursor the previous page printed on stderr)')
    .option('--as-of <time>', "the object's state at this time, rebuilt from its events")
    .option('--diff', 'field-level changes between consecutive versions')
    .addOption(formatOption())
    .option('--stats', 'print fetch statistics on stderr')
    .exitOverride()
    // Options after `sql` belong to it (it has its own --since/--until/--format/--stats).
    .enablePositionalOptions()
    .configureOutput({ writeErr: (s) => process.stderr.write(`${oneLine(s.replace(/^error: /, 'audit-query: '))}\n`) })
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
      // `audit-query --format json sql ...` works too: the root's options come first.
      const { format, since, until, stats } = program.opts<HistoryFlags>();
      result = runSql(text, { format, since, until, stats, ...definedOnly(flags) });
    });
  program
    .command('verify')
    .description('prove the store complete and untampered from its signed digests: exit 0 intact, 1 findings (one per line), 2 could not run')
    .option('--since <time>', 'check files of days from this date on (chains are always checked whole)')
    .option('--until <time>', 'check files of days up to this date')
    .option('--format <format>', 'text (default) or json')
    .option('--trust <file...>', 'trust only these public keys (PEM files; with AUDIT_TRUSTED_KEYS_FILE, those too, with their validity) instead of the keys published in the store')
    .option('--concurrency <n>', 'objects read at once (default 16)')
    .option('--kafka', "also check the chains reach the consumer group's committed offsets (AUDIT_KAFKA_BROKERS, AUDIT_CONSUMER_GROUP)")
    .action((flags: VerifyFlags) => {
      const root = program.opts<HistoryFlags>();
      // Loaded only for verify: it brings the Kafka client, the logger and the Iceberg reader, which a lookup never needs.
      result = import('./verify-command').then(({ runVerify }) => runVerify({ ...definedOnly({ since: root.since, until: root.until, format: root.format }), ...definedOnly(flags) }, write));
    });
  program
    .command('index')
    .description('maintenance of the lookup indexes')
    .command('build')
    .description("writes each day's index manifest (one object per day listing its files' indexes: fewer requests on a cold lookup); safe to re-run, e.g. daily from cron")
    .option('--since <date>', 'first day (default: the oldest)')
    .option('--until <date>', 'last day (default: the newest)')
    .option('--quiet', 'no per-day lines on stderr')
    .action((flags: { since?: string; until?: string; quiet?: boolean }) => {
      result = runIndexBuild(flags);
    });
  for (const sub of subcommands) sub.register(program, (run) => {
    result = run;
  });
  try {
    await program.parseAsync(argv);
    return await result;
  } catch (err) {
    progress?.clear();
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof StoreUrlError) {
      sayError('audit-query', err.message);
      return 2;
    }
    if (err instanceof SqlError) {
      const what = err.refused ? 'SQL refused (the sql command reads the audit view only)' : 'SQL failed';
      sayError('audit-query', `${what}: ${oneLine(err.message)}`);
      return 2;
    }
    if (err instanceof StorageError) {
      sayError('audit-query', storageMessage(err));
      return 2;
    }
    sayError('audit-query', (err as Error).message.split('\n')[0] ?? String(err));
    return 1;
  }
}

