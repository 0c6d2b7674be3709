import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';

// Not from ./infra (jest's expect): the Iceberg benchmark starts Spark from dist/ too.
const S3_ENDPOINT = process.env.AUDIT_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:9000';
export const S3_BUCKET = process.env.AUDIT_TEST_S3_BUCKET ?? 'audit';
const ROOT = ((): string => {
  for (let d = __dirname; d !== dirname(d); d = dirname(d)) if (existsSync(join(d, 'infra', 'spark.sh'))) return d;
  throw new Error('infra/spark.sh not found above ' + __dirname);
})();

/** One answer of infra/spark/SqlLines.java: the rows as Spark renders them to JSON, or Spark's error. */
export type SparkAnswer = { ok: true; ms: number; rows: Record<string, unknown>[] } | { ok: false; ms: number; error: string };

export interface SparkSql {
  /** Runs one statement (one line) in the session; answers arrive in order. */
  sql(statement: string): Promise<SparkAnswer>;
  /** Wall time from spawn to a usable session, and Spark's own part of it (SparkSession.getOrCreate). */
  readonly startMs: number;
  readonly sessionMs: number;
  /** Closes stdin (the runner stops Spark and exits) and waits for the exit. */
  close(): Promise<void>;
}

/**
 * Starts one Spark JVM (`infra/spark.sh sql`: local mode, Iceberg's Hadoop catalog `lake`
 * over the test bucket on the test S3 server) and resolves once its session is up. Spark's
 * start is most of its cost, so a test file keeps one for all of its queries.
 */
export async function startSpark(timeoutMs = 300_000): Promise<SparkSql> {
  const started = Date.now();
  // Its own process group, so a failed test can end the JVM along with the script.
  const child: ChildProcessWithoutNullStreams = spawn('bash', [join(ROOT, 'infra', 'spark.sh'), 'sql'], {
    env: { ...process.env, AUDIT_SPARK_S3_ENDPOINT: S3_ENDPOINT, AUDIT_SPARK_WAREHOUSE: `s3a://${S3_BUCKET}` },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waiting: ((line: string | null) => void)[] = [];
  const early: string[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else early.push(line);
  });
  lines.on('close', () => {
    for (const w of waiting.splice(0)) w(null);
  });
  const nextLine = (ms: number): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const queued = early.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error(`spark: no answer within ${ms} ms; stderr:\n${stderr.slice(-4000)}`)), ms);
      waiting.push((line) => {
        clearTimeout(timer);
        if (line === null) reject(new Error(`spark exited; stderr:\n${stderr.slice(-4000)}`));
        else resolve(line);
      });
    });
  const kill = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  let ready: { ready: boolean; ms: number };
  try {
    ready = JSON.parse(await nextLine(timeoutMs)) as { ready: boolean; ms: number };
  } catch (e) {
    kill();
    throw e;
  }
  const startMs = Date.now() - started;
  // Statements are answered one at a time, in order: each waits for the one before.
  let queue: Promise<unknown> = Promise.resolve();
  const session: SparkSql = {
    startMs,
    sessionMs: ready.ms,
    sql(statement: string): Promise<SparkAnswer> {
      if (statement.includes('\n')) throw new Error('spark: one statement per line');
      const answer = queue.then(async () => {
        child.stdin.write(`${statement}\n`);
        return JSON.parse(await nextLine(timeoutMs)) as SparkAnswer;
      });
      queue = answer.catch(() => undefined);
      return answer;
    },
    async close(): Promise<void> {
      child.stdin.end();
      const timer = setTimeout(kill, 60_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return session;
}

/**
 * The Iceberg table of a store in the session's `lake` catalog: the catalog's warehouse is
 * the bucket, so s3://BUCKET/a/b is namespace a.b and the table is `_iceberg`.
 */
export function sparkTable(storeUrl: string): string {
  const m = /^s3:\/\/([^/]+)\/(.+?)\/?$/.exec(storeUrl);
  if (!m || m[1] !== S3_BUCKET) throw new Error(`spark: the lake catalog covers s3://${S3_BUCKET}/, not ${storeUrl}`);
  return ['lake', ...m[2]!.split('/'), '_iceberg'].map((p, i) => (i === 0 ? p : `\`${p.replace(/`/g, '``')}\``)).join('.');
}
