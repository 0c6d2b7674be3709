import { readFile } from 'node:fs/promises';
import { oneLine } from '../config/bin';
import { jsonTerminalSafe, terminalSafe } from '../config/safe-text';
import { ConfigError, type Env, readEnv } from '../config/env';
import { createLogger } from '../config/logger';
import { kafkaCommittedOffsets } from '../kafka/committed-offsets';
import { DIGEST_ROOT } from '../trust/format';
import { StorageError, dtOfMicros, openStore } from '../storage';
import { resolveTrust } from '../trust/trust-policy';
import { type VerifyReport, VerifyError, verifyStore } from '../trust/verify';
import { UsageError, parseInstant } from './args';
import { storageMessage } from './storage-message';

export interface VerifyFlags {
  since?: string;
  until?: string;
  format?: string;
  trust?: string[];
  concurrency?: string;
  kafka?: boolean;
}

/**
 * `audit-query verify`: exit 0 intact, 1 with one finding per line (stdout),
 * 2 when it cannot run (bad flags, store unreachable, no digests). Progress goes
 * to stderr on a terminal.
 */
export async function runVerify(flags: VerifyFlags, out: (text: string) => Promise<void>, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  try {
    const since = flags.since ? dtOfMicros(parseInstant('--since', flags.since)) : null;
    const until = flags.until ? dtOfMicros(parseInstant('--until', flags.until, true)) : null;
    if (since !== null && until !== null && since > until) throw new UsageError('--since is after --until');
    const format = flags.format ?? 'text';
    if (format !== 'text' && format !== 'json') throw new UsageError(`--format must be text or json, not ${JSON.stringify(format)}`);
    const concurrency = flags.concurrency === undefined ? 16 : Number(flags.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency must be a positive integer');
    const pinned = flags.trust
      ? await Promise.all(flags.trust.map(async (f) => ({ pem: await readFile(f, 'utf8').catch(() => { throw new UsageError(`--trust: cannot read ${f}`); }), source: `--trust ${f}` })))
      : undefined;
    const env = readEnv();
    const store = openStore(env);
    let report: VerifyReport;
    try {
      await store.check('existing');
      // Keys are configuration (--trust, AUDIT_TRUSTED_KEYS_FILE), never bucket content; without
      // either, the store's published keys, as before, and one line of warning.
      const policy = await resolveTrust({ trustedKeysFile: env.AUDIT_TRUSTED_KEYS_FILE, pinned, store, role: 'audit-query verify' });
      if (policy.mode === 'store-keys') {
        err.write('audit-query verify: warning: neither --trust nor AUDIT_TRUSTED_KEYS_FILE: trusting the keys published in the store, which anyone who can write the bucket can publish (trust/README.md)\n');
      }
      const kafka = flags.kafka ? await kafkaOffsets(env) : undefined;
      let last = 0;
      report = await verifyStore({
        store,
        since,
        until,
        concurrency,
        policy,
        ...(kafka ?? {}),
        onProgress: err.isTTY
          ? (what, done, total) => {
              const now = Date.now();
              if (done === total || now - last > 200) {
                last = now;
                err.write(`\r\x1b[Kverify: ${what} ${done}/${total}${done === total ? '\n' : ''}`);
              }
            }
          : undefined,
      });
    } finally {
      store.close();
    }
    await out(format === 'json' ? `${jsonTerminalSafe(JSON.stringify(report))}\n` : text(report));
    if (format === 'text') err.write(`${summary(report)}\n`);
    return report.intact ? 0 : 1;
  } catch (e) {
    const why = e instanceof StorageError ? storageMessage(e) : (e as Error).message;
    if (!(e instanceof UsageError || e instanceof ConfigError || e instanceof VerifyError || e instanceof StorageError)) {
      err.write(`audit-query verify: could not run: ${oneLine(why)}\n`);
    } else {
      err.write(`audit-query verify: ${oneLine(why)}\n`);
    }
    return 2;
  }
}

/**
 * For every topic with a chain (AUDIT_KAFKA_BROKERS, AUDIT_CONSUMER_GROUP): the
 * consumer group's committed offsets, and the earliest offsets Kafka still holds.
 */
async function kafkaOffsets(env: Env): Promise<{ committed: Map<string, bigint>; earliest: Map<string, bigint> }> {
  const store = openStore(env);
  const topics = (await store.listPrefixes(`${DIGEST_ROOT}chain/`)).map((p) => p.slice(`${DIGEST_ROOT}chain/`.length, -1));
  store.close();
  const reader = kafkaCommittedOffsets(env, createLogger('audit-query', 'silent'), 'verify');
  try {
    return { committed: await reader.read(topics), earliest: await reader.earliest(topics) };
  } catch (e) {
    throw new VerifyError(`--kafka: cannot read the committed and earliest offsets of ${env.AUDIT_CONSUMER_GROUP} from ${env.AUDIT_KAFKA_BROKERS} (AUDIT_KAFKA_BROKERS): ${(e as Error).message}`);
  } finally {
    await reader.close().catch(() => undefined);
  }
}

function text(report: VerifyReport): string {
  // Keys and messages come from the bucket: whoever can write there chooses them.
  return report.findings.map((f) => `${terminalSafe(`${f.code} ${f.key}: ${f.message}`)}\n`).join('');
}

function summary(r: VerifyReport): string {
  const s = r.stats;
  const verdict = r.intact ? 'intact' : `${r.findings.length} finding(s)`;
  return `verify: ${verdict}: ${s.partitions} partition(s), ${s.chainDigests} chain and ${s.compactionDigests} compaction digests, ${s.offsets} offsets (${s.deadLetters} dead letters, ${s.skippedOffsets} skipped by Kafka), ${s.filesChecked} files / ${(s.bytesChecked / 1e6).toFixed(1)} MB hashed, ${s.expiredDays} day(s) expired by retention, ${s.seconds.toFixed(1)} s`;
}

