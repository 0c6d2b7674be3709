/**
 * What the `audit` view's deduplication by event_id costs `audit-query sql`: the same local
 * Parquet files (as the query cache holds them) read through the plain view of before and
 * through today's view (its search for replayed events not cached, then cached by an earlier
 * run), on a store without duplicates and on one where 1 % of the events
 * were stored a second time (a replay), for three typical queries. Fetching is left out: it
 * is the same for both views.
 *
 *   npm run build && node dist/bench/sql-view.js
 *
 * Environment (defaults): BENCH_EVENTS (2000000)  BENCH_FILES (24)  BENCH_RUNS (5)
 * Prints a table; writes bench/results/sql-view.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDb, parquetSource } from '../query/history';
import { createAuditView } from '../query/query';
import { ReplayFinder, type ViewFile } from '../query/replays';
import { envNumber, projectRoot } from './lib/env';
import { median, table } from './lib/stats';

const EVENTS = envNumber('BENCH_EVENTS', 2_000_000);
const FILES = envNumber('BENCH_FILES', 24);
const RUNS = envNumber('BENCH_RUNS', 5);

const QUERIES: Record<string, string> = {
  'count(*)': 'SELECT count(*) FROM audit',
  'count by action': 'SELECT action, count(*) FROM audit GROUP BY 1',
  'one actor, all columns': "SELECT * FROM audit WHERE actor_id = 'actor-7'",
};

async function writeFiles(dir: string, replayShare: number): Promise<string[]> {
  const { instance, conn } = await openDuckDb();
  const per = Math.ceil(EVENTS / FILES);
  const paths: string[] = [];
  try {
    for (let f = 0; f < FILES; f++) {
      const path = join(dir, `f${f}.parquet`);
      // Deterministic ids (md5 of the event number), so a replayed file can carry the same ones.
      await conn.run(`COPY (SELECT md5(n::VARCHAR)::UUID AS event_id, TIMESTAMPTZ '2026-05-01' + to_microseconds(n * 1000) AS occurred_at,
          'order' AS object_type, (n % 100000)::VARCHAR AS object_id, ['create','update','read','delete'][1 + n % 4] AS action,
          'actor-' || (n % 50) AS actor_id, 'user' AS actor_type, 'acme' AS tenant_id, 'req-' || n AS request_id, NULL::VARCHAR AS trace_id,
          '203.0.113.7' AS ip, NULL::VARCHAR AS user_agent, NULL::VARCHAR AS http_method, NULL::VARCHAR AS http_path, NULL::INTEGER AS http_status,
          '{"n":{"old":' || (n - 1) || ',"new":' || n || '}}' AS changes, NULL::VARCHAR AS before, NULL::VARCHAR AS after, NULL::VARCHAR AS metadata,
          'bench' AS source_service, 2 AS schema_version, NULL::DOUBLE AS duration_ms, NULL::VARCHAR AS error_type, NULL::VARCHAR AS error_message,
          NULL::VARCHAR AS error_stack, (n % 3)::INTEGER AS kafka_partition, n::BIGINT AS kafka_offset
        FROM range(${f * per}, ${Math.min(EVENTS, (f + 1) * per)}) t(n)) TO '${path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)`);
      paths.push(path);
    }
    if (replayShare > 0) {
      const path = join(dir, 'replayed.parquet');
      await conn.run(`COPY (SELECT * REPLACE (kafka_offset + ${EVENTS} AS kafka_offset, 'replayed' AS actor_id) FROM ${parquetSource(paths)}
        WHERE kafka_offset % ${Math.round(1 / replayShare)} = 0) TO '${path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)`);
      paths.push(path);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  return paths;
}

type View = 'before' | 'after, first run' | 'after, repeated';

/**
 * Median milliseconds of creating the view and running the query, each run on a fresh instance
 * (as each audit-query run is). "first run": no cached search (an empty cache each time);
 * "repeated": the days' searches cached by an earlier run.
 */
async function timeQuery(paths: readonly string[], view: View, sql: string, cacheRoot: string): Promise<{ ms: number; rows: number; answer: string }> {
  const files: ViewFile[] = paths.map((path, i) => ({ key: `dt=2026-05-01/f${i}.parquet`, size: i, path }));
  const times: number[] = [];
  let rows = 0;
  let answer = '';
  const warm = new ReplayFinder(join(cacheRoot, 'warm'), 'bench');
  if (view === 'after, repeated') {
    const { instance, conn } = await openDuckDb();
    await warm.laterCopies(conn, files);
    conn.closeSync();
    instance.closeSync();
  }
  for (let i = 0; i < RUNS; i++) {
    const { instance, conn } = await openDuckDb();
    try {
      const t0 = performance.now();
      if (view === 'before') await conn.run(`CREATE VIEW audit AS SELECT * FROM ${parquetSource(paths)}`);
      else await createAuditView(conn, files, view === 'after, repeated' ? warm : new ReplayFinder(join(cacheRoot, `cold-${i}-${Math.random()}`), 'bench'));
      const result = await conn.runAndReadAll(sql);
      rows = result.currentRowCount;
      answer = JSON.stringify(result.getRowsJson()[0]);
      times.push(performance.now() - t0);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }
  return { ms: median(times), rows, answer };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-sql-view-'));
  const out: Record<string, unknown>[] = [];
  try {
    for (const [store, share] of [['no duplicates', 0], ['1 % replayed', 0.01]] as const) {
      const sub = join(dir, String(share));
      mkdirSync(sub);
      const paths = await writeFiles(sub, share);
      for (const [name, sql] of Object.entries(QUERIES)) {
        const before = await timeQuery(paths, 'before', sql, dir);
        const first = await timeQuery(paths, 'after, first run', sql, dir);
        const repeated = await timeQuery(paths, 'after, repeated', sql, dir);
        out.push({
          store, query: name, beforeMs: Math.round(before.ms), firstMs: Math.round(first.ms), repeatedMs: Math.round(repeated.ms),
          rowsBefore: before.rows, rowsAfter: repeated.rows, answerBefore: before.answer, answerAfter: repeated.answer,
        });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`audit view, plain (before) vs deduplicated by event_id (after): ${EVENTS} events in ${FILES} files, median of ${RUNS} runs`);
  console.log(
    table(
      ['store', 'query', 'before ms', 'after, first run ms', 'after, repeated ms', 'first answer row before -> after'],
      out.map((r) => [String(r.store), String(r.query), String(r.beforeMs), String(r.firstMs), String(r.repeatedMs), `${String(r.answerBefore).slice(0, 40)} -> ${String(r.answerAfter).slice(0, 40)}`]),
    ),
  );
  const results = join(projectRoot(__dirname), 'bench', 'results');
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, 'sql-view.json'), `${JSON.stringify({ events: EVENTS, files: FILES, runs: RUNS, host: `${process.platform} ${process.arch}`, results: out }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
