/**
 * Loads a benchmark dataset in one pass over a deterministic event stream:
 *
 * - into the store, in the consumer's exact layout: events are routed to Kafka
 *   partitions like the default partitioner would (murmur2 of the key
 *   `object_type:object_id`, mod the partition count), each partition's buffer
 *   is cut at the sink's limits (records or encoded bytes), each cut is split by
 *   the UTC date of the events and written with the project's ParquetWriter,
 *   with the index the sink writes (shared `buildFileIndex`);
 * - optionally into a PostgreSQL table with COPY, same rows.
 *
 * Memory stays bounded by the cut size: rows are generated, routed, written and
 * dropped file by file.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { encodeRecord, objectKey, type AuditRecord } from '../../schemas';
import type { ObjectStore } from '../../storage';
import { partitionOf } from '../../producer/transport/partition';
import { EventGenerator, type EventGenOptions } from './events';
import { PgCopy, type PgTarget, copyLine, psql, tableDdl } from './pg';
import { storeCut, type StoredFile } from './store-writer';
import type { DigestChainWriter } from '../../trust/chain-writer';

/** The partition Kafka's default partitioner gives `key` (the producer's own, which the audit client uses). */
export function kafkaPartition(key: string, partitions: number): number {
  return partitionOf(key, partitions);
}

export interface DatasetOptions extends EventGenOptions {
  topic: string;
  partitions: number;
  cutRecords: number;
  cutBytes: number;
  rowGroupRows: number;
  zstdLevel: number;
  workDir: string;
  /** PostgreSQL table to load alongside (created; must not exist), or null. */
  pg: { target: PgTarget; table: string } | null;
  log: (msg: string) => void;
  /** Cuts stored at once (default 1); small cuts need many in flight to keep the writer and the uploads busy. */
  cutsInFlight?: number;
  /** Signs a chain digest per cut, as the consumer does with AUDIT_SIGNING_KEY_FILE. */
  chain?: DigestChainWriter;
  /** Another event stream than EventGenerator's (e.g. search-events.ts's clustered one). */
  generator?: { events(): Iterable<AuditRecord> };
}

export interface DatasetSummary {
  events: number;
  files: number;
  parquetBytes: number;
  indexBytes: number;
  cuts: number;
  avgWireBytes: number;
  seconds: number;
}

class PartitionBuffer {
  rows: StoredRow[] = [];
  bytes = 0;
  nextOffset = 0;
  constructor(readonly partition: number) {}
}

export async function loadDataset(store: ObjectStore, opts: DatasetOptions): Promise<DatasetSummary> {
  const t0 = Date.now();
  const gen = opts.generator ?? new EventGenerator(opts);
  const writer = await ParquetWriter.create({ rowGroupRows: opts.rowGroupRows, zstdLevel: opts.zstdLevel, threads: 2, memoryLimit: '2GB' });
  const buffers = Array.from({ length: opts.partitions }, (_, p) => new PartitionBuffer(p));
  const files: StoredFile[] = [];
  let cuts = 0;
  const inFlight = new Set<Promise<void>>();
  const chainTails = new Map<number, Promise<void>>();
  const maxInFlight = Math.max(1, opts.cutsInFlight ?? 1);
  let copy: PgCopy | null = null;
  if (opts.pg) {
    await psql(opts.pg.target, tableDdl(opts.pg.table));
    copy = new PgCopy(opts.pg.target, opts.pg.table);
  }

  // Encoded (Avro) size, which the sink's byte limit counts: measured on a sample, then averaged.
  let sampleBytes = 0;
  let sampled = 0;
  const wireSize = (r: AuditRecord) => {
    if (sampled < 5000) {
      sampleBytes += encodeRecord(r).length;
      sampled++;
    }
    return sampleBytes / sampled;
  };

  const cut = async (buf: PartitionBuffer) => {
    const rows = buf.rows;
    buf.rows = [];
    buf.bytes = 0;
    cuts++;
    // Up to maxInFlight cuts written at a time, while the next ones are generated.
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const chain = opts.chain;
    const before = chainTails.get(buf.partition) ?? Promise.resolve();
    const p: Promise<void> = storeCut(store, writer, { topic: opts.topic, partition: buf.partition, rows, workDir: opts.workDir, digest: chain !== undefined }).then(async (stored) => {
      files.push(...stored);
      if (chain) {
        // Digests of one partition are appended in offset order, whichever cut finished first.
        await before;
        const offsets = rows.map((r) => BigInt(r.offset));
        await chain.append({ partition: buf.partition, first: offsets[0]!, last: offsets[offsets.length - 1]!, files: stored.map((f) => f.entry!), rowOffsets: offsets, deadLetters: [] });
      }
      inFlight.delete(p);
    });
    chainTails.set(buf.partition, p);
    inFlight.add(p);
  };

  let n = 0;
  let lastLog = Date.now();
  for (const record of gen.events()) {
    const buf = buffers[kafkaPartition(objectKey(record), opts.partitions)]!;
    const offset = buf.nextOffset++;
    const size = wireSize(record);
    buf.rows.push({ record, partition: buf.partition, offset: String(offset), size });
    buf.bytes += size;
    if (copy) await copy.write(copyLine(record, buf.partition, offset));
    if (buf.rows.length >= opts.cutRecords || buf.bytes >= opts.cutBytes) await cut(buf);
    if (++n % 100_000 === 0 && Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      opts.log(`  generated ${n.toLocaleString('en')} / ${opts.events.toLocaleString('en')} events, ${files.length} files stored (${Math.round((Date.now() - t0) / 1000)} s)`);
    }
  }
  for (const buf of buffers) if (buf.rows.length > 0) await cut(buf);
  await Promise.all(inFlight);
  writer.close();
  await rm(opts.workDir, { recursive: true, force: true });
  if (copy) {
    opts.log('  PostgreSQL: finishing COPY, building the index');
    await copy.end();
    await psql(opts.pg!.target, `CREATE INDEX ${opts.pg!.table}_object ON ${opts.pg!.table} (object_type, object_id, occurred_at)`);
    await psql(opts.pg!.target, `VACUUM ANALYZE ${opts.pg!.table}`);
  }
  return {
    events: n,
    files: files.length,
    parquetBytes: files.reduce((s, f) => s + f.bytes, 0),
    indexBytes: files.reduce((s, f) => s + f.indexBytes, 0),
    cuts,
    avgWireBytes: sampled > 0 ? sampleBytes / sampled : 0,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Scratch space for files being written (outside the work tree). */
export function workDirFor(name: string): string {
  return join(tmpdir(), `audit-bench-${name}-${process.pid}`);
}
