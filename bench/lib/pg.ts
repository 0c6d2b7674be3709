/**
 * PostgreSQL side of the query benchmark, through `psql` (no driver needed):
 * an audit table with the same columns, loaded with COPY from a stream, and
 * one-object lookups timed as a client process, like audit-query.
 */
import { spawn, execFile } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { AuditRecord } from '../../schemas';
import { recordColumnValues } from '../../consumer/staging/staged-row';
import { LINEAGE_COLUMNS, RECORD_FIELDS, type ColumnType } from '../../schemas/fields';

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

/** PostgreSQL's type for each stored column type; JSON texts become jsonb. */
const PG_TYPE_OF: Readonly<Record<ColumnType, string>> = {
  UUID: 'uuid',
  TIMESTAMPTZ: 'timestamptz',
  VARCHAR: 'text',
  INTEGER: 'integer',
  BIGINT: 'bigint',
  DOUBLE: 'double precision',
};

/** Where the PostgreSQL table is narrower than the Parquet column, as an application's table would be. */
const PG_TYPE_OVERRIDES: Readonly<Record<string, string>> = { ip: 'inet', http_status: 'smallint', schema_version: 'smallint' };

export function tableDdl(table: string): string {
  const columns = [
    // Maps are stored as NULL when empty, so they take NULL whatever the .avsc says.
    ...RECORD_FIELDS.map((f) => `${f.name} ${PG_TYPE_OVERRIDES[f.name] ?? (f.json ? 'jsonb' : PG_TYPE_OF[f.column])}${f.nullable || f.json ? '' : ' NOT NULL'}`),
    ...LINEAGE_COLUMNS.map(([name, type]) => `${name} ${PG_TYPE_OF[type]} NOT NULL`),
  ];
  return `CREATE TABLE ${table} (${columns.join(', ')})`;
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
  const values = recordColumnValues(r).map((v, i) => (RECORD_FIELDS[i]!.name === 'occurred_at' ? isoMicros(r.occurred_at) : (v as string | number | null | undefined)));
  return [...values, partition, offset].map(cell).join('\t');
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
