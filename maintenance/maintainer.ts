import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { formatDuration } from '../config/duration';
import {
  type DayState,
  type FileIndex,
  type ObjectInfo,
  type ObjectStore,
  DATA_PREFIX,
  INDEX_PREFIX,
  SELF_CHECK_PREFIX,
  compactedFileName,
  encodeGeneration,
  generationKey,
  indexKey,
  isDt,
  readDay,
  signedGenerationBody,
} from '../storage';
import type { RejectedGeneration } from '../storage/live-set';
import type { TrustPolicy } from '../trust/trust-policy';
import { deleteKeys } from '../storage/bulk-delete';
import { mapLimit } from '../storage/concurrency';
import { type CompactionDigest, type FileEntry, compactionDigestKey, retentionDigestKey, sha256Hex } from '../trust/format';
import type { DigestSigner } from '../trust/signer';
import { encodeFileIndex } from '../storage/signed-index';
import { buildDayManifest } from '../storage/day-manifest-build';
import { scanClaims } from './claims';
import type { CommittedOffsets } from '../kafka/committed-offsets';
import type { Compactor } from './compactor';
import { EXTERNAL_MANIFEST_PREFIX, writeExternalManifest } from './external-manifest';
import { type MergeGroup, type MergedOutput, nextGeneration, planCleanup, planMerges } from './plan';
import { dayObjects, lockedObjects, removeDay, retentionCutoff, signRemoval } from './retention';
import type { IcebergPublisher } from './iceberg/publisher';

/** Steps where a test may have the maintainer killed (AUDIT_TEST_CRASH_AT), to prove every step is safe to die in. */
export type CrashPoint = 'after-upload' | 'before-commit' | 'after-commit' | 'mid-cleanup';

export interface MaintainerOptions {
  store: ObjectStore;
  compactor: Compactor;
  committed: CommittedOffsets | null;
  minAgeMs: number;
  graceMs: number;
  retentionMs: number | null;
  concurrency: number;
  workDir: string;
  dryRun: boolean;
  log: Logger;
  /** One line per action (what was done, or what would be done in a dry run). */
  say: (line: string) => void;
  crashAt?: CrashPoint;
  /** Signs a digest of every compacted file and removed day (trust/); null = digests off. */
  signer: DigestSigner | null;
  /** Names this process in its digests. */
  owner: string;
  /** Which generations the maintainer acts on (trust/trust-policy.ts, resolved with its signer). */
  trust: TrustPolicy;
  now?: () => number;
  /** Commits the pass's live sets as one Iceberg snapshot (maintenance/iceberg/); absent = no table. */
  iceberg?: IcebergPublisher;
}

export interface PassRange {
  /** First and last day (YYYY-MM-DD, inclusive); null = unbounded. */
  since: string | null;
  until: string | null;
}

export interface PassReport {
  days: number;
  /** Days with a new generation committed by this pass. */
  daysCompacted: number;
  filesMerged: number;
  filesWritten: number;
  rowsWritten: number;
  bytesWritten: number;
  duplicatesDropped: number;
  /** Days whose commit another maintainer won (redone by a later pass). */
  racesLost: number;
  objectsDeleted: number;
  daysExpired: number;
  /** Expired days kept because some of their objects are under Object Lock. */
  daysLocked: number;
  /** Data files stored into a day after retention removed it, removed again under a re-signed retention digest. */
  lateFilesRemoved: number;
  claimsRemoved: number;
  /** Unsigned cut claims on a signed store, kept and named (maintenance/claims.ts). */
  claimsKept: number;
  indexManifestsWritten: number;
  /** Per-file indexes and manifests that failed the trust check (each is named in a line), and indexes rebuilt from their data file. */
  indexesRejected: number;
  indexesRebuilt: number;
}

/**
 * The newest generation of a day failed the trust check. The maintainer acts
 * on generations by deleting, so it stops here, having deleted nothing of the
 * day: a forged generation must not steer a deletion, and skipping the day
 * quietly would leave it unmaintained without anyone noticing.
 */
export class UntrustedGenerationError extends Error {
  constructor(
    readonly dt: string,
    readonly rejected: RejectedGeneration,
  ) {
    super(`generation ${rejected.key} failed the trust check (${rejected.code}): ${rejected.reason.replace(`${rejected.key}: `, '')}; stopping, nothing of dt=${dt} deleted (maintenance/README.md)`);
    this.name = 'UntrustedGenerationError';
  }
}

/**
 * One maintenance pass over the store: retention, then for each day
 * compaction (committed by a new generation, storage/live-set.ts), the day's
 * index manifest and external manifest, and removal of what the grace period
 * has released; then cut claims that no replay can need. Every step can be
 * interrupted (SIGKILL included) and the pass re-run: nothing becomes visible
 * twice or disappears, because only the generation PUT changes what is live.
 */
export class Maintainer {
  constructor(private readonly o: MaintainerOptions) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  async pass(range: PassRange, shouldStop: () => boolean = () => false): Promise<PassReport> {
    const { store, log } = this.o;
    const report: PassReport = {
      days: 0, daysCompacted: 0, filesMerged: 0, filesWritten: 0, rowsWritten: 0, bytesWritten: 0, duplicatesDropped: 0,
      racesLost: 0, objectsDeleted: 0, daysExpired: 0, daysLocked: 0, lateFilesRemoved: 0, claimsRemoved: 0, claimsKept: 0, indexManifestsWritten: 0, indexesRejected: 0, indexesRebuilt: 0,
    };
    const inRange = (dt: string) => (range.since === null || dt >= range.since) && (range.until === null || dt <= range.until);
    const daysUnder = async (prefix: string) =>
      (await store.listPrefixes(prefix))
        .map((p) => p.slice(prefix.length))
        .filter((p) => p.startsWith(DATA_PREFIX) && isDt(p.slice(DATA_PREFIX.length, -1)))
        .map((p) => p.slice(DATA_PREFIX.length, -1))
        .filter(inRange);
    const days = await daysUnder('');
    report.days = days.length;
    // Retention also sees days left with indexes or manifests only (a removal interrupted after their data went).
    const leftovers = [...new Set([...(await daysUnder(INDEX_PREFIX)), ...(await daysUnder(EXTERNAL_MANIFEST_PREFIX))])].filter((dt) => !days.includes(dt));
    const kept = (await this.retention([...days, ...leftovers].sort(), report)).filter((dt) => days.includes(dt));
    const committed = await this.committedOffsets();
    for (const dt of kept) {
      if (shouldStop()) break;
      await this.maintainDay(dt, committed, report);
    }
    if (!shouldStop()) await this.removeClaims(committed, report);
    if (!shouldStop() && !this.o.dryRun) await this.removeSelfCheckProbes(report);
    // Only a whole pass: a stopped one has not seen every day, and the table must not lose the others.
    if (!shouldStop() && !this.o.dryRun) await this.o.iceberg?.commit(inRange, this.now());
    log.info({ ...report }, this.o.dryRun ? 'dry run finished' : 'maintenance pass finished');
    return report;
  }

  /** Removes days past the retention period; returns the days kept. */
  private async retention(days: readonly string[], report: PassReport): Promise<string[]> {
    const { retentionMs } = this.o;
    if (retentionMs === null) return [...days];
    const now = this.now();
    const cutoff = retentionCutoff(now, retentionMs);
    const kept: string[] = [];
    for (const dt of days) {
      if (dt >= cutoff) {
        kept.push(dt);
        continue;
      }
      const objects = await dayObjects(this.o.store, dt);
      const locked = await lockedObjects(this.o.store, objects, now, this.o.concurrency);
      if (locked.count > 0) {
        report.daysLocked++;
        const until = locked.until === null ? 'a legal hold' : new Date(locked.until).toISOString();
        this.o.say(`locked dt=${dt}: past retention (${formatDuration(retentionMs)}), kept: ${locked.count} of ${objects.length} objects under Object Lock (until ${until})`);
        continue;
      }
      report.daysExpired++;
      if (this.o.dryRun) {
        this.o.say(`would expire dt=${dt}: ${objects.length} objects (past retention ${formatDuration(retentionMs)})`);
        continue;
      }
      const late = this.o.signer ? await signRemoval(this.o.store, this.o.signer, this.o.trust, { dt, retentionMs, now, writer: this.o.owner, objects }) : [];
      report.objectsDeleted += await removeDay(this.o.store, objects, this.o.concurrency);
      report.lateFilesRemoved += late.length;
      if (late.length > 0) {
        this.o.say(`expired dt=${dt} again: ${late.length} data file(s) stored into it after its removal (late events that reached the consumer before it knew), removed by policy and named in ${retentionDigestKey(dt)}: ${late.map((f) => f.key).join(', ')}`);
      } else {
        this.o.say(`expired dt=${dt}: ${objects.length} objects removed`);
      }
    }
    return kept;
  }

  private async committedOffsets(): Promise<Map<string, bigint>> {
    if (!this.o.committed) return new Map();
    const topics = (await this.o.store.listPrefixes('_cuts/')).map((p) => p.slice('_cuts/'.length, -1));
    try {
      return await this.o.committed.read(topics);
    } catch (err) {
      // Without them nothing is pruned and no claim removed; compaction goes on.
      this.o.log.warn({ err: (err as Error).message }, 'could not read the consumer group\'s committed offsets; claims and hidden ranges are kept this pass');
      return new Map();
    }
  }

  private async maintainDay(dt: string, committed: ReadonlyMap<string, bigint>, report: PassReport): Promise<void> {
    let day = await readDay(this.o.store, dt, this.o.trust);
    if (day.rejected.length > 0) throw new UntrustedGenerationError(dt, day.rejected[0]!);
    const groups = planMerges(day, this.now(), this.o.minAgeMs);
    if (groups.length > 0) {
      const after = await this.compactDay(day, groups, committed, report);
      if (after === null) return; // another maintainer committed this day meanwhile: it finishes the day
      day = after;
    }
    if (this.o.dryRun) {
      for (const key of this.cleanupPlan(day)) this.o.say(`would delete ${key}`);
      return;
    }
    await this.indexDay(dt, report);
    if (this.o.store.uri) await writeExternalManifest(this.o.store, dt, day.live.map((f) => f.key));
    this.o.iceberg?.observe(day);
    await this.cleanup(day, report);
  }

  /**
   * Rewrites the day's index manifest, signed, and rebuilds from its data file
   * any live file's index that is missing or fails the trust check (readers
   * read around such an index meanwhile; verify names it).
   */
  private async indexDay(dt: string, report: PassReport): Promise<void> {
    const work = join(this.o.workDir, `${process.pid}-index-${dt}-${randomBytes(4).toString('hex')}`);
    try {
      const result = await buildDayManifest(this.o.store, dt, {
        policy: this.o.trust,
        signer: this.o.signer,
        writer: this.o.owner,
        concurrency: this.o.concurrency,
        repair: (file) => this.rebuildIndex(dt, file, work),
      });
      if (result.written) report.indexManifestsWritten++;
      report.indexesRejected += result.rejected.length;
      report.indexesRebuilt += result.rebuilt;
      for (const r of result.rejected) this.o.say(`ignored ${r.message} (${r.code})`);
      if (result.rebuilt > 0) this.o.say(`rebuilt dt=${dt}: ${result.rebuilt} file index(es) from their data files`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  private async rebuildIndex(dt: string, file: ObjectInfo, work: string): Promise<FileIndex> {
    await mkdir(work, { recursive: true });
    const name = file.key.slice(file.key.lastIndexOf('/') + 1);
    const path = join(work, name);
    try {
      await this.o.store.download(file.key, path);
      const index = await this.o.compactor.indexOf(path, file.key);
      if (index.bytes !== file.size) throw new Error(`${file.key} changed while its index was rebuilt (${index.bytes} bytes, listed ${file.size})`);
      await this.o.store.put(indexKey(dt, name), encodeFileIndex(index, this.o.signer, { writer: this.o.owner }));
      return index;
    } finally {
      await rm(path, { force: true });
    }
  }

  /** Merges the day's groups and commits the next generation; the day as it is afterwards, or null when the commit was lost. */
  private async compactDay(day: DayState, groups: MergeGroup[], committed: ReadonlyMap<string, bigint>, report: PassReport): Promise<DayState | null> {
    const { store, say } = this.o;
    const generation = (day.generation?.generation ?? 0) + 1;
    if (this.o.dryRun) {
      for (const g of groups) {
        const compacted = g.inputs.filter((f) => f.ref.kind === 'compacted').length;
        const bytes = g.inputs.reduce((n, f) => n + f.size, 0);
        say(`would compact dt=${day.dt} ${g.topic}/${g.partition}: ${g.inputs.length} files (${compacted} compacted, ${bytes} bytes) into 1, generation ${generation}`);
      }
      return day;
    }
    const token = randomBytes(4).toString('hex');
    const work = join(this.o.workDir, `${process.pid}-${day.dt}-${token}`);
    await mkdir(work, { recursive: true });
    const outputs: MergedOutput[] = [];
    try {
      // The next group's inputs download while this one is merged: a quiet day is many small
      // files, and their GETs, not the merge, are most of a pass.
      const download = (gi: number) =>
        mapLimit(groups[gi]!.inputs, this.o.concurrency, async (f, i) => {
          const path = join(work, `${gi}-${i}.parquet`);
          await store.download(f.key, path);
          return path;
        });
      let prefetch: Promise<string[]> | null = download(0);
      for (const [gi, group] of groups.entries()) {
        const local: string[] = await prefetch!;
        prefetch = gi + 1 < groups.length ? download(gi + 1) : null;
        // A failed prefetch surfaces when it is awaited; until then it must not be an unhandled rejection.
        prefetch?.catch(() => undefined);
        const signer = this.o.signer;
        const merged = await this.o.compactor.merge(local, join(work, `${gi}.out.parquet`), { hashes: signer !== null });
        const name = compactedFileName(group.topic, group.partition, merged.firstOffset, merged.lastOffset, generation, token);
        const key = `dt=${day.dt}/${name}`;
        // Data first, index second, digest third, generation last: whatever a reader finds named is there.
        await store.putFile(key, merged.path);
        await store.put(indexKey(day.dt, name), encodeFileIndex(merged.index(key), signer, { writer: this.o.owner }));
        if (signer) {
          const digest = await this.compactionDigest(day.dt, group, local, key, merged, generation);
          await store.putIfAbsent(compactionDigestKey(key), signer.seal(digest));
        }
        this.crash('after-upload');
        outputs.push({ group, file: { key, size: merged.bytes, rows: merged.rows, topic: group.topic, partition: group.partition, first: merged.firstOffset, last: merged.lastOffset } });
        report.filesMerged += group.inputs.length;
        report.filesWritten++;
        report.rowsWritten += merged.rows;
        report.bytesWritten += merged.bytes;
        report.duplicatesDropped += merged.duplicates;
        await rm(join(work, `${gi}.out.parquet`), { force: true });
        await Promise.all(local.map((p) => rm(p, { force: true })));
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    const next = nextGeneration(day.dt, day.generation, outputs, {
      now: this.now(),
      graceMs: this.o.graceMs,
      committed,
      present: new Set(day.files.map((f) => f.key)),
    });
    this.crash('before-commit');
    const body = this.o.signer ? this.o.signer.seal(signedGenerationBody(next, this.o.owner, this.now())) : encodeGeneration(next);
    const won = await store.putIfAbsent(generationKey(day.dt, next.generation), body);
    if (!won) {
      // Never named by any generation: nobody can be reading them.
      await mapLimit(outputs, this.o.concurrency, async (o) => {
        await store.delete(o.file.key);
        await store.delete(indexKey(day.dt, o.file.key.slice(o.file.key.lastIndexOf('/') + 1)));
      });
      report.racesLost++;
      say(`lost dt=${day.dt} generation ${next.generation} to another maintainer; its files were removed`);
      return null;
    }
    this.crash('after-commit');
    report.daysCompacted++;
    say(`compacted dt=${day.dt}: ${outputs.map((o) => `${o.group.topic}/${o.group.partition} ${o.group.inputs.length} files into 1 (${o.file.rows} rows)`).join(', ')}; generation ${next.generation}`);
    return readDay(store, day.dt, this.o.trust);
  }

  /** What the compaction digest of one merged file proves: its inputs' hashes, as read, and its own. */
  private async compactionDigest(
    dt: string,
    group: MergeGroup,
    local: readonly string[],
    key: string,
    merged: Awaited<ReturnType<Compactor['merge']>>,
    generation: number,
  ): Promise<CompactionDigest> {
    const h = merged.hashes!;
    const replaced: FileEntry[] = await mapLimit(group.inputs, this.o.concurrency, async (f, i) => ({
      key: f.key,
      size: f.size,
      sha256: sha256Hex(await readFile(local[i]!)),
      rows: h.inputs[i]!.rows,
      first: h.inputs[i]!.first,
      last: h.inputs[i]!.last,
      rowHash: h.inputs[i]!.rowHash,
    }));
    return {
      kind: 'compaction',
      dt,
      topic: group.topic,
      partition: group.partition,
      file: { key, size: merged.bytes, sha256: sha256Hex(await readFile(merged.path)), rows: merged.rows, first: merged.firstOffset, last: merged.lastOffset, rowHash: h.output },
      replaced,
      dropped: h.dropped,
      generation,
      writtenAt: new Date(this.now()).toISOString(),
      writer: this.o.owner,
    };
  }

  private cleanupPlan(day: DayState): string[] {
    const plan = planCleanup(day, this.now(), this.o.graceMs);
    return [...plan.data, ...plan.generations];
  }

  private async cleanup(day: DayState, report: PassReport): Promise<void> {
    const plan = planCleanup(day, this.now(), this.o.graceMs);
    // Data first, then their indexes, then old generations: a reader never meets an index whose file it cannot find listed.
    await deleteKeys(this.o.store, plan.data, this.o.concurrency);
    if (plan.data.length > 0) this.crash('mid-cleanup');
    await deleteKeys(this.o.store, plan.data.map((key) => indexKey(day.dt, key.slice(key.lastIndexOf('/') + 1))), this.o.concurrency);
    await deleteKeys(this.o.store, plan.generations, this.o.concurrency);
    report.objectsDeleted += plan.data.length * 2 + plan.generations.length;
    if (plan.data.length + plan.generations.length > 0) {
      this.o.say(`cleaned dt=${day.dt}: ${plan.data.length} superseded data files, ${plan.generations.length} old generations`);
    }
  }

  private async removeClaims(committed: ReadonlyMap<string, bigint>, report: PassReport): Promise<void> {
    if (committed.size === 0) return;
    const { done, kept } = await scanClaims(this.o.store, committed, this.o.trust, this.o.concurrency);
    report.claimsKept += kept.length;
    for (const k of kept) this.o.say(`kept cut claim ${k.message.replace(': not a signed object', '')}: unsigned on a signed store (the previous release's, or planted), never removed on its word; remove it with admin credentials once checked`);
    if (this.o.dryRun) {
      if (done.length > 0) this.o.say(`would remove ${done.length} cut claims the consumer group has committed past`);
      return;
    }
    await deleteKeys(this.o.store, done, this.o.concurrency);
    report.claimsRemoved += done.length;
    report.objectsDeleted += done.length;
    if (done.length > 0) this.o.say(`removed ${done.length} cut claims the consumer group has committed past`);
  }

  /** The consumers' start-up probes (storage/self-check.ts): they cannot delete them, so the maintainer does, once old. */
  private async removeSelfCheckProbes(report: PassReport): Promise<void> {
    const old: string[] = [];
    const now = this.now();
    for await (const o of this.o.store.list(SELF_CHECK_PREFIX)) {
      if (o.lastModified !== undefined && now - o.lastModified >= this.o.graceMs) old.push(o.key);
    }
    await deleteKeys(this.o.store, old, this.o.concurrency);
    report.objectsDeleted += old.length;
  }

  private crash(point: CrashPoint): void {
    if (this.o.crashAt === point) process.kill(process.pid, 'SIGKILL');
  }
}

