import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FileObjectStore } from '../../../storage';
import { partitionKey } from '../../../catalog';
import { createMetrics } from '../../../consumer/metrics';
import { ParquetWriter } from '../../../consumer/parquet-writer';
import { AuditSink } from '../../../consumer/sink';
import { Compactor } from '../../../maintenance/compactor';
import { Maintainer } from '../../../maintenance/maintainer';
import { DigestChainWriter } from '../../../trust/chain-writer';
import { generateSigningKey } from '../../../trust/signer';
import { signerForService } from '../../../trust/signing-setup';
import { resolveTrust } from '../../../trust/trust-policy';
import { PARTITIONS, type ScriptedSource, TOPIC } from './source';

/**
 * The consumer and the maintainer, wired in-process the way consumer/service.ts
 * and maintenance/service.ts wire them, minus Kafka: the sink is fed from a
 * ScriptedSource and commits into it; the maintainer reads the group's
 * committed offsets from it. One place to follow when the services' start-up
 * (trust policy, key checks) changes.
 */
export interface Pipeline {
  /** AUDIT_SIGNING_KEY_FILE, its public half, and AUDIT_TRUSTED_KEYS_FILE naming it. */
  keyFile: string;
  publicKeyFile: string;
  trustedKeysFile: string;
  /** A key nobody trusts, for forged objects. */
  attacker: { privateKeyPem: string; publicKeyPem: string; keyId: string };
  root: string;
  close(): Promise<void>;
}

/** What one consumer run or maintenance pass did: null, or why it stopped. */
export type Halt = string | null;

const silent = pino({ level: 'silent' });
const signingEnv = (p: Pipeline) => ({ AUDIT_SIGNING_KEY_FILE: p.keyFile });

interface Engines {
  writer: ParquetWriter;
  compactor: Compactor;
}
const engines = new WeakMap<Pipeline, Engines>();

export async function openPipeline(): Promise<Pipeline> {
  const root = await mkdtemp(join(tmpdir(), 'tamper-'));
  const key = generateSigningKey();
  const keyFile = join(root, 'signing.pem');
  const publicKeyFile = join(root, 'signing.pem.pub');
  const trustedKeysFile = join(root, 'trusted-keys.json');
  await writeFile(keyFile, key.privateKeyPem, { mode: 0o600 });
  await writeFile(publicKeyFile, key.publicKeyPem);
  await writeFile(trustedKeysFile, JSON.stringify([{ publicKeyFile: 'signing.pem.pub' }]));
  // Read by every part that resolves its trust policy from the environment (config/env.ts).
  process.env.AUDIT_TRUSTED_KEYS_FILE = trustedKeysFile;
  process.env.AUDIT_SIGNING_KEY_FILE = keyFile;
  const writer = await ParquetWriter.create({ rowGroupRows: 16 });
  const compactor = await Compactor.create({
    rowGroupRows: 16, compression: 'zstd', zstdLevel: 1, memoryLimit: '128MB', threads: 1, spillDir: join(root, 'spill'),
  });
  const p: Pipeline = {
    keyFile, publicKeyFile, trustedKeysFile, root, attacker: generateSigningKey(),
    async close() {
      writer.close();
      compactor.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  engines.set(p, { writer, compactor });
  return p;
}

/**
 * `audit-consumer --drain` after a restart: a new sink and chain writer read
 * every partition from its committed offset to the end, then flush. Small
 * cuts (`maxRecords`) give chains of several digests. A stop (the sink's
 * onError, a rejected flush, a claim beyond the end) is returned, not thrown.
 */
export async function drain(p: Pipeline, storeDir: string, source: ScriptedSource, maxRecords = 40): Promise<Halt> {
  const { writer } = engines.get(p)!;
  const store = new FileObjectStore(storeDir);
  const errors: string[] = [];
  let sink: AuditSink | null = null;
  try {
    const signer = await signerForService(signingEnv(p), store, 'consumer');
    if (!signer) throw new Error('no signer');
    const trust = await resolveTrust({ trustedKeysFile: p.trustedKeysFile, signer, store, role: 'consumer' });
    const workDir = join(p.root, 'work', 'consumer');
    await mkdir(workDir, { recursive: true });
    sink = new AuditSink({
      topic: TOPIC, store, writer, workDir, owner: 'tamper-consumer', log: silent, metrics: createMetrics(),
      limits: { maxRecords, maxBytes: 1 << 30, maxAgeMs: 1 << 30, memoryMaxBytes: 1 << 30, storeRetryMs: 0 },
      commit: async (partition, next) => {
        const n = BigInt(next);
        if (n > source.committed[partition]!) source.committed[partition] = n;
      },
      deadLetter: async (l) => void errors.push(`dead letter ${l.partition}/${l.offset}: ${l.error.message}`),
      chain: new DigestChainWriter(store, signer, TOPIC, 'tamper-consumer', trust.keys),
      signer,
      trust,
      onError: (err, partition) => void errors.push(`partition ${partition}: ${err.message}`),
    });
    for (let part = 0; part < PARTITIONS; part++) {
      const pending = source.pending(part);
      if (pending.length > 0) await sink.append(part, pending);
    }
    const complete = await sink.flushAll('shutdown');
    if (!complete) errors.push('drain incomplete: a claimed cut ends beyond the last offset');
  } catch (err) {
    errors.push((err as Error).message);
  } finally {
    await sink?.settle().catch((err: Error) => void errors.push(err.message));
  }
  for (let part = 0; part < PARTITIONS; part++) {
    if (source.committed[part]! < BigInt(source.log[part]!.length) && errors.length === 0) errors.push(`partition ${part} not committed to its end`);
  }
  return errors.length > 0 ? [...new Set(errors)].join('; ') : null;
}

/** `audit-admin maintain --once` with AUDIT_COMPACT_MIN_AGE=0s and AUDIT_COMPACT_GRACE=0s; a failed pass is returned. */
export async function maintainOnce(p: Pipeline, storeDir: string, source: ScriptedSource): Promise<Halt> {
  const { compactor } = engines.get(p)!;
  const store = new FileObjectStore(storeDir);
  try {
    const signer = await signerForService(signingEnv(p), store, 'maintainer');
    const trust = await resolveTrust({ trustedKeysFile: p.trustedKeysFile, signer, store, role: 'maintainer' });
    const workDir = join(p.root, 'work', 'maintain');
    await mkdir(workDir, { recursive: true });
    const committed = {
      read: async () => new Map(source.committed.map((o, part) => [partitionKey(TOPIC, part), o] as const)),
      earliest: async () => new Map(source.committed.map((_, part) => [partitionKey(TOPIC, part), 0n] as const)),
      close: async () => undefined,
    };
    const maintainer = new Maintainer({
      store, compactor, committed, minAgeMs: 0, graceMs: 0, retentionMs: null, concurrency: 4, workDir,
      dryRun: false, log: silent, say: () => undefined, signer, trust, owner: 'tamper-maintainer',
    });
    await maintainer.pass({ since: null, until: null });
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    store.close();
  }
}
