/**
 * PostgreSQL side of the query benchmark, through `psql` (no driver needed):
 * an audit table with the same columns, loaded with COPY from a stream, and
 * one-object lookups timed as a client process, like audit-query.
 */
import { spawn, execFile } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { AuditRecord } from '../../schemas';
import { changesJson } from '../../consumer/staging/staged-row';

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
}

export function pgTargetFromEnv(): PgTarget {
  return {
    host: process.env.BENCH_PG_HOST ?? '127.0.0.1',
    port: Number(process.env.BENCH_PG_PORT ?? 54329),
    user: process.env.BENCH_PG_USER ?? 'postgres',
    database: process.env.BENCH_PG_DATABASE ?? 'audit_test',
  };
}

function args(t: PgTarget): string[] {
  return ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', t.host, '-p', String(t.port), '-U', t.user, '-d', t.database];
}

/** Runs SQL; returns unaligned, tuples-only output. */
export function psql(t: PgTarget, sql: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('psql', [...args(t), '-A', '-t', '-c', sql], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`psql failed: ${stderr || err.message}`)) : resolve(stdout.trim()),
    );
  });
}

export function tableDdl(table: string): string {
  return `CREATE TABLE ${table} (
    event_id uuid NOT NULL, occurred_at timestamptz NOT NULL, object_type text NOT NULL, object_id text NOT NULL, action text NOT NULL,
    actor_id text, actor_type text, tenant_id text, request_id text, trace_id text,
    ip inet, user_agent text, http_method text, http_path text, http_status smallint,
    changes jsonb, before jsonb, after jsonb, metadata jsonb, source_service text,
    schema_version smallint NOT NULL, duration_ms double precision, error_type text, error_message text, error_stack text,
    kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL)`;
}

/** COPY text format: \N for NULL; backslash, tab, newline and CR escaped. */
function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '\\N';
  const s = String(v);
  return /[\\\t\n\r]/.test(s) ? s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r') : s;
}

function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const rest = us - ms * 1000;
  const d = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${d.slice(0, 23)}${String(rest).padStart(3, '0')}+00`;
}

export function copyLine(r: AuditRecord, partition: number, offset: number): string {
  const metadata = Object.keys(r.metadata).length > 0 ? JSON.stringify(r.metadata) : null;
  return [
    r.event_id, isoMicros(r.occurred_at), r.object_type, r.object_id, r.action,
    r.actor_id, r.actor_type, r.tenant_id, r.request_id, r.trace_id,
    r.ip, r.user_agent, r.http_method, r.http_path, r.http_status,
    changesJson(r.changes), r.before, r.after, metadata, r.source_service,
    r.schema_version, r.duration_ms, r.error_type, r.error_message, r.error_stack,
    partition, offset,
  ].map(cell).join('\t');
}

/** A `COPY table FROM STDIN` in progress: write lines, then `end()`. */
export class PgCopy {
  private readonly stdin: Writable;
  private readonly done: Promise<void>;
  private buffered: string[] = [];

  constructor(t: PgTarget, table: string) {
    const child = spawn('psql', [...args(t), '-c', `COPY ${table} FROM STDIN`], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    this.stdin = child.stdin;
    this.done = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`COPY failed (${code}): ${stderr.slice(-2000)}`))));
    });
    this.done.catch(() => undefined);
  }

  /** Queues a line; resolves when the pipe can take more (backpressure). */
  async write(line: string): Promise<void> {
    this.buffered.push(line);
    if (this.buffered.length < 2000) return;
    const chunk = `${this.buffered.join('\n')}\n`;
    this.buffered = [];
    if (!this.stdin.write(chunk)) await new Promise<void>((r) => this.stdin.once('drain', () => r()));
  }

  async end(): Promise<void> {
    if (this.buffered.length > 0) this.stdin.write(`${this.buffered.join('\n')}\n`);
    this.buffered = [];
    this.stdin.end();
    await this.done;
  }
}
