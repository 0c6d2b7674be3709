import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type DayState, type FileIndex, indexKey, readDay } from '../../storage';
import type { TrustPolicy } from '../../trust/trust-policy';
import { UntrustedObjectError } from '../../trust/signed-object';
import { openFileIndex } from '../../storage/signed-index';
import { classifyKey } from '../../storage/layout';
import { mapLimit } from '../../storage/concurrency';
import { planCleanup } from '../plan';
import type { DataFileRecord, ManifestFileRecord } from './avro';
import {
  type DayManifest, type ResolvedEntry, type TableFile,
  buildDayManifest, dataFileRecord, liveHash, manifestFileRecord, manifestName, parseManifestPath, writeManifestList,
} from './manifest';
import {
  type Snapshot, type SnapshotOperation, type TableMetadata,
  addSnapshot, currentSnapshot, newSnapshotId, newTable, nextVersion, removeSnapshots, withCurrentSchema,
} from './metadata';
import { IcebergReadError, METADATA_PREFIX, TableReader, type TableStore, VERSION_HINT_KEY, keyOfUri, loadTable, metadataKey } from './table-io';

/**
 * The maintainer's Iceberg commit: after a pass has committed its generations,
 * one snapshot that makes the table's files equal the live set of every day
 * the pass saw (new consumer files ADDED, compaction's inputs DELETED and its
 * output ADDED, expired days DELETED), then expiry of the snapshots that name
 * a file the pass deleted (or will have deleted by the time a reader follows
 * them), and removal of metadata nothing names any more.
 *
 * The commit point is the create-if-absent PUT of `vN.metadata.json`: two
 * maintainers cannot both write version N, so the history cannot fork; the
 * loser retries from the winner's version.
 */

export interface PublisherOptions {
  store: TableStore;
  /** Which generations to believe when a day this pass did not see is read again (storage/live-set.ts). */
  trust: TrustPolicy;
  graceMs: number;
  concurrency: number;
  log: Logger;
  say: (line: string) => void;
  /**
   * How a new file stores `event_id` (maintenance/iceberg/file-columns.ts); absent = not checked.
   * The table's `event_id` is `uuid`, and Iceberg has no string-to-uuid promotion: a file of an
   * older release, which stored it as text, would fail or misread in every engine.
   */
  eventIdStorage?: (file: { key: string; size: number }) => Promise<'uuid' | 'text' | null>;
}

export interface IcebergCommitReport {
  version: number;
  snapshotId: number | null;
  operation: SnapshotOperation | null;
  daysChanged: number;
  filesAdded: number;
  filesDeleted: number;
  snapshotsExpired: number;
  metadataFilesDeleted: number;
  /** Live files left out of the table: `event_id` stored as text (each named in a line). */
  filesExcluded: number;
}

export class IcebergCommitError extends Error {
  constructor(
    readonly attempts: number,
    why: string,
  ) {
    super(`Iceberg commit failed after ${attempts} attempts: ${why}`);
    this.name = 'IcebergCommitError';
  }
}

const ATTEMPTS = 4;

interface DayView {
  dt: string;
  /** Live data files now. */
  live: DayState['live'];
  /** Keys present once this pass's cleanup is done. */
  present: Set<string>;
}

/** The day's keys left once cleanup at `now` (or earlier) has run: a later `now` can only remove more. */
function dayView(day: DayState, now: number, graceMs: number): DayView {
  const deleted = new Set(planCleanup(day, now, graceMs).data);
  return { dt: day.dt, live: day.live, present: new Set(day.files.map((f) => f.key).filter((k) => !deleted.has(k))) };
}

export class IcebergPublisher {
  private readonly observed = new Map<string, DayState>();
  private days = new Map<string, DayView>();

  constructor(private readonly o: PublisherOptions) {}

  /** A day as the pass left it (after its commit, before its cleanup). */
  observe(day: DayState): void {
    this.observed.set(day.dt, day);
  }

  /** Commits what the pass observed; days of the table in `inRange` that it did not observe are read again. */
  async commit(inRange: (dt: string) => boolean, now: number): Promise<IcebergCommitReport | null> {
    let lastErr = '';
    // Cleanup ran at an earlier clock than `now`: judging deletions at `now` errs towards expiring, never towards a dangling snapshot.
    try {
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const r = await this.attempt(inRange, now);
        if (r !== 'lost') return r;
        lastErr = 'another maintainer committed the same version each time';
        this.o.log.info({ attempt }, 'Iceberg commit lost to another maintainer; retrying from its version');
      }
    } finally {
      this.observed.clear();
    }
    throw new IcebergCommitError(ATTEMPTS, lastErr);
  }

  private async attempt(inRange: (dt: string) => boolean, now: number): Promise<IcebergCommitReport | null | 'lost'> {
    const { store } = this.o;
    this.days = new Map([...this.observed].map(([dt, day]) => [dt, dayView(day, now, this.o.graceMs)]));
    const table = await loadTable(store);
    let m: TableMetadata = withCurrentSchema(table?.metadata ?? newTable(store.uri(ICEBERG_LOCATION), now));
    const schema = m.schemas.find((s) => s['schema-id'] === m['current-schema-id'])!;
    const reader = new TableReader(store);
    const parent = currentSnapshot(m);
    const current = parent ? await reader.manifestList(parent['manifest-list']) : [];
    const byDay = new Map<string, ManifestFileRecord>();
    const foreign: ManifestFileRecord[] = [];
    for (const mf of current) {
      const p = parseManifestPath(mf.manifest_path);
      if (p) byDay.set(p.dt, mf);
      else foreign.push(mf); // not ours to rewrite (e.g. written by an engine): carried as it is
    }
    // Days the table holds that this pass did not see (lost races, locked or expired days): as the store has them now.
    for (const dt of byDay.keys()) {
      if (this.days.has(dt) || !inRange(dt)) continue;
      const day = await readDay(store, dt, this.o.trust);
      this.days.set(dt, { dt, live: day.live, present: new Set(day.files.map((f) => f.key)) });
    }

    const snapshotId = newSnapshotId();
    const sequenceNumber = m['last-sequence-number'] + 1;
    const written: string[] = [];
    const list: ManifestFileRecord[] = [...foreign];
    const totals = { added: 0, deleted: 0, addedRows: 0, deletedRows: 0, days: 0, excluded: 0 };
    for (const [dt, mf] of byDay) if (!this.days.has(dt)) list.push(mf);
    const changed = [...this.days.values()].filter((d) => {
      const old = byDay.get(d.dt);
      const hash = liveHash(d.live.map((f) => f.key));
      if (old && parseManifestPath(old.manifest_path)!.hash === hash) {
        // Unchanged; a manifest left with deleted entries only is dropped (its deletes belong to its own snapshot).
        if (old.added_files_count + old.existing_files_count > 0) list.push(old);
        return false;
      }
      return old !== undefined || d.live.length > 0;
    });
    await mapLimit(changed, this.o.concurrency, async (d) => {
      const old = byDay.get(d.dt);
      const previous: ResolvedEntry[] = old ? await reader.entries(old) : [];
      const had = new Set(previous.filter((e) => e.status !== 2).map((e) => e.dataFile.file_path));
      const candidates = d.live.filter((f) => !had.has(store.uri(f.key)));
      const check = this.o.eventIdStorage;
      const text = new Set(check ? (await mapLimit(candidates, this.o.concurrency, async (f) => ((await check(f)) === 'text' ? f.key : null))).filter((k): k is string => k !== null) : []);
      for (const key of text) {
        this.o.say(`iceberg: left out ${key}: event_id stored as text (written before the UUID column; the table's event_id is uuid): its rows are not in the table until compaction rewrites it as UUID`);
      }
      totals.excluded += text.size;
      const fresh = candidates.filter((f) => !text.has(f.key));
      const added: DataFileRecord[] = await mapLimit(fresh, this.o.concurrency, async (f) =>
        dataFileRecord(await this.tableFile(d.dt, f), store.uri(f.key), d.dt, schema),
      );
      const published = new Set(d.live.filter((f) => !text.has(f.key)).map((f) => store.uri(f.key)));
      const dm: DayManifest = buildDayManifest({ dt: d.dt, schema, snapshotId, previous, live: published, added });
      const key = `${METADATA_PREFIX}${manifestName(d.dt, liveHash(d.live.map((f) => f.key)), snapshotId)}`;
      await store.put(key, dm.body);
      written.push(key);
      list.push(manifestFileRecord(store.uri(key), d.dt, dm, snapshotId, sequenceNumber));
      totals.days++;
      totals.added += dm.added.files;
      totals.deleted += dm.deleted.files;
      totals.addedRows += dm.added.rows;
      totals.deletedRows += dm.deleted.rows;
    });

    let snapshot: Snapshot | null = null;
    if (changed.length > 0 || parent === null) {
      list.sort((a, b) => (a.manifest_path < b.manifest_path ? -1 : 1));
      const listKey = `${METADATA_PREFIX}snap-${snapshotId}-1-${randomUUID()}.avro`;
      await store.put(listKey, writeManifestList(list, snapshotId, parent?.['snapshot-id'] ?? null, sequenceNumber));
      written.push(listKey);
      const totalFiles = list.reduce((n, f) => n + f.added_files_count + f.existing_files_count, 0);
      const totalRows = list.reduce((n, f) => n + f.added_rows_count + f.existing_rows_count, 0);
      const operation: SnapshotOperation =
        totals.deleted === 0 ? 'append' : totals.added === 0 ? 'delete' : totals.addedRows === totals.deletedRows ? 'replace' : 'overwrite';
      snapshot = {
        'snapshot-id': snapshotId,
        ...(parent ? { 'parent-snapshot-id': parent['snapshot-id'] } : {}),
        'sequence-number': sequenceNumber,
        'timestamp-ms': Math.max(now, m['last-updated-ms']),
        'manifest-list': store.uri(listKey),
        summary: {
          operation,
          'added-data-files': String(totals.added),
          'deleted-data-files': String(totals.deleted),
          'added-records': String(totals.addedRows),
          'deleted-records': String(totals.deletedRows),
          'total-data-files': String(totalFiles),
          'total-records': String(totalRows),
          'total-delete-files': '0',
          'total-position-deletes': '0',
          'total-equality-deletes': '0',
          'changed-partition-count': String(totals.days),
        },
        'schema-id': schema['schema-id'],
      };
      m = addSnapshot(m, snapshot);
    }

    const expired = await this.expired(m, reader, now);
    if (snapshot === null && expired.size === 0 && table !== null && table.metadata === m) return null;
    const retainedLists = m.snapshots.filter((s) => !expired.has(s['snapshot-id'])).map((s) => s['manifest-list']);
    const expiredLists = m.snapshots.filter((s) => expired.has(s['snapshot-id'])).map((s) => s['manifest-list']);
    m = removeSnapshots(m, expired);
    const version = (table?.version ?? 0) + 1;
    const next = nextVersion(m, table ? store.uri(table.key) : null, now, this.o.graceMs);
    const won = await store.putIfAbsent(metadataKey(version), JSON.stringify(next.metadata));
    if (!won) {
      // Never named by any committed metadata: nobody can be reading them.
      await mapLimit(written, this.o.concurrency, (k) => store.delete(k));
      return 'lost';
    }
    await store.put(VERSION_HINT_KEY, String(version));
    const deleted = await this.removeUnreferenced(reader, retainedLists, expiredLists, next.dropped);
    const report: IcebergCommitReport = {
      version,
      snapshotId: snapshot?.['snapshot-id'] ?? null,
      operation: snapshot?.summary.operation ?? null,
      daysChanged: totals.days,
      filesAdded: totals.added,
      filesDeleted: totals.deleted,
      snapshotsExpired: expired.size,
      metadataFilesDeleted: deleted,
      filesExcluded: totals.excluded,
    };
    this.o.say(
      `iceberg v${version}: ${snapshot ? `snapshot ${snapshot['snapshot-id']} (${snapshot.summary.operation}, ${totals.days} days, +${totals.added} -${totals.deleted} files)` : 'no new snapshot'}` +
        `, ${expired.size} snapshots expired, ${deleted} metadata files removed`,
    );
    return report;
  }

  /** Row count and time bounds of a new file, from the index written beside it (immutable like the file). */
  private async tableFile(dt: string, f: DayState['live'][number]): Promise<TableFile> {
    const name = f.key.slice(f.key.lastIndexOf('/') + 1);
    const body = await this.o.store.get(indexKey(dt, name));
    if (body === null) throw new IcebergCommitError(0, `no index for ${f.key}: cannot state its row count`);
    // The index is opened like every index (signed by a trusted key, naming this file and size): the
    // table states its row count to every engine. The pass rebuilt failed indexes before this step.
    let index: FileIndex;
    try {
      index = openFileIndex(this.o.trust, body, indexKey(dt, name), f).index;
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
      throw new IcebergCommitError(0, `the index of ${f.key} failed the trust check (${err.code}): cannot state its row count`);
    }
    return { key: f.key, size: f.size, rows: index.rows, minOccurredAt: index.minOccurredAt, maxOccurredAt: index.maxOccurredAt, sorted: f.ref.kind === 'compacted' };
  }

  /**
   * Snapshots to expire: every non-current one superseded a grace period ago,
   * and any that reads a file this pass deleted or is deleting (the grace
   * period runs from the generation commit, a little before ours). So time
   * travel reaches back one grace period and never to a missing file.
   */
  private async expired(m: TableMetadata, reader: TableReader, now: number): Promise<Set<number>> {
    const out = new Set<number>();
    const currentId = m['current-snapshot-id'];
    const cur = currentSnapshot(m);
    const currentManifests = new Set(cur ? (await reader.manifestList(cur['manifest-list'])).map((f) => f.manifest_path) : []);
    const gone = (uri: string): boolean => {
      const key = keyOfUri(this.o.store, uri);
      const dt = /^dt=(\d{4}-\d{2}-\d{2})\//.exec(key)?.[1];
      const day = dt ? this.days.get(dt) : undefined;
      return day !== undefined && !day.present.has(key);
    };
    const supersededAt = new Map<number, number>();
    for (const s of m.snapshots) if (s['parent-snapshot-id'] !== undefined) supersededAt.set(s['parent-snapshot-id'], s['timestamp-ms']);
    for (const s of m.snapshots) {
      if (s['snapshot-id'] === currentId) continue;
      // Time travel reaches back one grace period; beyond it snapshots only grow the metadata (a quiet year of appends would keep them all).
      const since = supersededAt.get(s['snapshot-id']);
      if (since !== undefined && now - since >= this.o.graceMs) {
        out.add(s['snapshot-id']);
        continue;
      }
      let list: ManifestFileRecord[];
      try {
        list = await reader.manifestList(s['manifest-list']);
      } catch (err) {
        if (!(err instanceof IcebergReadError)) throw err;
        // A snapshot whose list is gone cannot be read by anyone: expiring it is the repair.
        this.o.log.warn({ err: (err as Error).message, snapshot: s['snapshot-id'] }, 'Iceberg snapshot unreadable; expired');
        out.add(s['snapshot-id']);
        continue;
      }
      for (const mf of list) {
        if (currentManifests.has(mf.manifest_path)) continue;
        if ((await reader.entries(mf)).some((e) => e.status !== 2 && gone(e.dataFile.file_path))) {
          out.add(s['snapshot-id']);
          break;
        }
      }
    }
    return out;
  }

  /** Deletes the expired snapshots' lists, the manifests only they named, and metadata files past the log. */
  private async removeUnreferenced(reader: TableReader, retained: string[], expired: string[], metadataFiles: string[]): Promise<number> {
    const { store } = this.o;
    const keep = new Set<string>();
    for (const l of retained) for (const mf of await reader.manifestList(l)) keep.add(mf.manifest_path);
    const doomed = new Set<string>(metadataFiles);
    for (const l of expired) {
      doomed.add(l);
      let list: ManifestFileRecord[] = [];
      try {
        list = await reader.manifestList(l);
      } catch (err) {
        if (!(err instanceof IcebergReadError)) throw err;
        continue; // already gone: nothing it names can be found through it
      }
      for (const mf of list) if (!keep.has(mf.manifest_path)) doomed.add(mf.manifest_path);
    }
    // The metadata read back is not signed: whatever it names, only the table's own metadata files
    // are ever deleted here (a planted metadata file could name data files or digests).
    const keys: string[] = [];
    for (const u of doomed) {
      let key: string | null = null;
      try {
        key = keyOfUri(store, u);
      } catch (err) {
        if (!(err instanceof IcebergReadError)) throw err;
      }
      if (key !== null && classifyKey(key) === 'iceberg-metadata') keys.push(key);
      else this.o.log.warn({ uri: u }, 'Iceberg metadata names a file outside the table metadata for removal: kept');
    }
    await mapLimit(keys, this.o.concurrency, (k) => store.delete(k));
    return keys.length;
  }
}

/** The table location, relative to the store (the table's files are under it). */
export const ICEBERG_LOCATION = '_iceberg';
