import { createPublicKey } from 'node:crypto';
import { type DayState, type ObjectStore, INDEX_PREFIX, classifyKey, isDt, readDay } from '../storage';
import type { TrustPolicy } from './trust-policy';
import { mapLimit } from '../storage/concurrency';
import {
  type ChainDigest,
  type CompactionDigest,
  DIGEST_ROOT,
  type DigestBody,
  type FileEntry,
  type PublishedKey,
  parseChainKey,
  sha256Hex,
} from './format';
import { xorRowHashes } from './row-hash';
import { type ExternalManifest, checkExternalManifests } from './external-manifests';
import { newestSnapshotFiles } from '../maintenance/iceberg/table-io';
import { UntrustedObjectError, openSigned } from './signed-object';
import { keyIdOf } from './signer';
import { TrustedKeys, TrustedKeysError } from './trusted-keys';
import { checkIndexes } from './verify-indexes';

/**
 * `audit-query verify`: proves, with read access only, that the store holds
 * exactly what the pipeline signed. Per partition the chain digests must be
 * signed by a trusted key, numbered without gaps, linked by hash, and tile the
 * Kafka offsets (every offset a stored row, a dead letter or a skip Kafka made);
 * every data file must be listed by a digest and match its SHA-256; every
 * listed file must be present and live, or be held by a live compacted file
 * whose signed compaction digest proves its rows, or belong to a day removed
 * by retention (signed too).
 */

export type FindingCode =
  | 'bad-signature'
  | 'untrusted-key'
  | 'bad-digest'
  | 'digest-missing'
  | 'chain-broken'
  | 'offsets-unaccounted'
  | 'file-missing'
  | 'file-modified'
  | 'file-unlisted'
  | 'file-hidden'
  | 'file-duplicated'
  | 'compaction-mismatch'
  | 'bad-generation'
  | 'outside-layout'
  | 'external-manifest-mismatch'
  | 'iceberg-mismatch'
  | 'index-invalid'
  | 'manifest-invalid';

export interface Finding {
  code: FindingCode;
  /** The object concerned (a data file or a digest). */
  key: string;
  message: string;
}

export interface VerifyStats {
  keys: number;
  partitions: number;
  chainDigests: number;
  compactionDigests: number;
  filesChecked: number;
  bytesChecked: number;
  offsets: string;
  deadLetters: number;
  skippedOffsets: string;
  expiredDays: number;
  /** Per-file indexes and day manifests checked (trust/verify-indexes.ts). */
  indexesChecked: number;
  /** Where each partition's chain starts (an offset above 0: digests began then, or Kafka had dropped earlier records). */
  chainStarts: Record<string, string>;
  seconds: number;
}

export interface VerifyReport {
  intact: boolean;
  findings: Finding[];
  stats: VerifyStats;
}

export interface VerifyOptions {
  store: Pick<ObjectStore, 'list' | 'listPrefixes' | 'get' | 'uri'>;
  /** First and last day (YYYY-MM-DD) whose files are checked; null = unbounded. Chains are always checked whole. */
  since: string | null;
  until: string | null;
  /**
   * The process's one trust policy (trust/trust-policy.ts), used for digests,
   * generations and indexes alike. Pinned (`--trust`, AUDIT_TRUSTED_KEYS_FILE):
   * only those keys, with their configured validity only (the bucket's key
   * objects never widen or narrow it). Otherwise (or unset): the keys
   * published in the store, with theirs.
   */
  policy?: TrustPolicy;
  /**
   * The earliest offset Kafka still holds, per `<topic>/<partition>` (`verify
   * --kafka`): a chain starting above it leaves offsets Kafka has in no digest
   * (a store wiped and started again, or signing turned on later).
   */
  earliest?: ReadonlyMap<string, bigint>;
  concurrency: number;
  /**
   * Where the consumer group has committed, per `<topic>/<partition>` (read from Kafka
   * with `verify --kafka`): the group never commits past a digest, so a chain ending
   * below it lost its newest digests.
   */
  committed?: ReadonlyMap<string, bigint>;
  onProgress?: (what: string, done: number, total: number) => void;
  now?: () => number;
}

/** Verify cannot run (no digests, unreadable store): exit 2, not a finding. */
export class VerifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifyError';
  }
}

interface Signed<T extends DigestBody> {
  key: string;
  bytes: Buffer;
  body: T;
}

/** A listed file, who listed it and when. */
interface Expected {
  entry: FileEntry;
  by: string;
  writtenAt: string;
  dt: string;
}

/**
 * A file missing from a day removed by retention is excused only if the digest
 * that listed it was written before the day's retention digest: a file listed
 * later arrived after the removal (a late event stored into an expired day, or
 * a forged listing) and its absence is a deletion, not the policy.
 */
export function excusedByRetention(listedAt: string, retentionWrittenAt: string | undefined): boolean {
  if (retentionWrittenAt === undefined) return false;
  const listed = Date.parse(listedAt);
  const removed = Date.parse(retentionWrittenAt);
  return !Number.isNaN(listed) && !Number.isNaN(removed) && listed < removed;
}

const EXTERNAL_MANIFEST_ROOT = '_symlink_format_manifest/';

export async function verifyStore(o: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const findings: Finding[] = [];
  const find = (code: FindingCode, key: string, message: string) => findings.push({ code, key, message });
  const list = async (prefix: string) => {
    const out: { key: string; size: number }[] = [];
    for await (const obj of o.store.list(prefix)) out.push(obj);
    return out;
  };

  // ---- keys ----
  const published = new Map<string, PublishedKey>();
  for (const obj of await list(`${DIGEST_ROOT}keys/`)) {
    const bytes = await o.store.get(obj.key);
    if (bytes === null) continue;
    try {
      const k = JSON.parse(bytes.toString('utf8')) as PublishedKey;
      if (keyIdOf(createPublicKey(k.publicKey)) !== k.keyId) throw new Error('key id does not match the key');
      published.set(k.keyId, k);
    } catch (err) {
      find('bad-digest', obj.key, `unreadable public key (${(err as Error).message})`);
    }
  }
  const pinned = o.policy?.mode === 'pinned';
  let policy: TrustPolicy;
  if (o.policy && (o.policy.mode === 'pinned' || o.policy.mode === 'store-keys')) {
    policy = o.policy;
  } else {
    const fromStore = new TrustedKeys();
    // Without pinned keys, as before: a published key retires at its validUntil; its validFrom
    // (first publication, as bucket content) proves nothing an attacker could not write.
    for (const k of published.values()) {
      try {
        fromStore.add(TrustedKeys.keyFromPem(k.publicKey, `the store's ${DIGEST_ROOT}keys/${k.keyId}.json`, k.validUntil ? { validUntil: k.validUntil } : {}));
      } catch (err) {
        if (!(err instanceof TrustedKeysError)) throw err;
      }
    }
    policy = { mode: 'store-keys', keys: fromStore, notice: null };
  }
  const keys = policy.keys;
  // A store written without a key has no digest at all: with keys to check against (--trust),
  // every data file would be "added by something other than the pipeline", one finding each,
  // where the one thing to say is that nothing was signed.
  if (published.size === 0 && keys.size > 0 && !(await hasAny(o.store, DIGEST_ROOT))) {
    throw new VerifyError(`the store has no digests (nothing under ${DIGEST_ROOT}): it was written without a signing key, so there is nothing to verify (set AUDIT_SIGNING_KEY_FILE for the consumer and maintainer; trust/README.md)`);
  }
  if (published.size === 0 && keys.size === 0) {
    throw new VerifyError('the store has no published digest keys (_digests/keys/): digests were never written (set AUDIT_SIGNING_KEY_FILE for the consumer and maintainer)');
  }

  const fetchSigned = async (keyList: string[], what: string, kind: DigestBody['kind']): Promise<(Signed<DigestBody> | null)[]> => {
    let done = 0;
    return mapLimit(keyList, o.concurrency, async (key) => {
      const bytes = await o.store.get(key);
      o.onProgress?.(what, ++done, keyList.length);
      if (bytes === null) {
        find('digest-missing', key, 'listed but gone');
        return null;
      }
      try {
        return { key, bytes, body: openSigned<DigestBody>(bytes, key, keys, kind).body };
      } catch (err) {
        if (!(err instanceof UntrustedObjectError)) throw err;
        const why = err.message.slice(key.length + 2);
        if (err.code === 'untrusted-key') find('untrusted-key', key, `${why} (${pinned ? 'not pinned' : 'not published in the store'})`);
        else if (err.code === 'key-not-valid') find('untrusted-key', key, why);
        else if (err.code === 'bad-signature') find('bad-signature', key, why);
        else find('bad-digest', key, why);
        return null;
      }
    });
  };

  // ---- chains ----
  const stats: VerifyStats = {
    keys: keys.size, partitions: 0, chainDigests: 0, compactionDigests: 0, filesChecked: 0, bytesChecked: 0,
    offsets: '0', deadLetters: 0, skippedOffsets: '0', expiredDays: 0, indexesChecked: 0, chainStarts: {}, seconds: 0,
  };
  let offsets = 0n;
  let skipped = 0n;
  const expected = new Map<string, Expected>();
  const expect = (entry: FileEntry, by: string, writtenAt: string) => {
    const dt = /^dt=(\d{4}-\d{2}-\d{2})\//.exec(entry.key)?.[1] ?? '';
    const before = expected.get(entry.key);
    if (before) find('file-duplicated', entry.key, `listed by ${before.by} and by ${by}`);
    else expected.set(entry.key, { entry, by, writtenAt, dt });
  };
  const chainKeys = (await list(`${DIGEST_ROOT}chain/`)).map((x) => x.key);
  const byPartition = new Map<string, { seq: number; key: string }[]>();
  for (const key of chainKeys) {
    const c = parseChainKey(key);
    if (!c) {
      find('bad-digest', key, 'not a chain digest name');
      continue;
    }
    const id = `${c.topic}/${c.partition}`;
    let l = byPartition.get(id);
    if (!l) byPartition.set(id, (l = []));
    l.push({ seq: c.seq, key });
  }
  const chainBodies = await fetchSigned(chainKeys, 'chain digests', 'chain');
  const signedByKey = new Map(chainBodies.filter((x): x is Signed<DigestBody> => x !== null).map((x) => [x.key, x]));
  for (const [id, entries] of [...byPartition].sort(([a], [b]) => a.localeCompare(b))) {
    stats.partitions++;
    entries.sort((a, b) => a.seq - b.seq);
    let prev: Signed<ChainDigest> | null = null;
    let expectSeq = 0;
    for (const { seq, key } of entries) {
      const s = signedByKey.get(key);
      if (seq > expectSeq) {
        const from = prev ? BigInt(prev.body.to) + 1n : null;
        find('digest-missing', key.replace(/\d{12}\.json$/, `${String(expectSeq).padStart(12, '0')}.json`),
          `${id}: digest${seq - expectSeq > 1 ? `s ${expectSeq}-${seq - 1}` : ` ${expectSeq}`} missing${from !== null && s?.body.kind === 'chain' ? `: offsets ${from}-${BigInt(s.body.from) - 1n} are unaccounted for` : ''}`);
        prev = null;
      }
      expectSeq = seq + 1;
      if (!s) {
        prev = null;
        continue;
      }
      const d = s.body;
      if (d.kind !== 'chain' || `${d.topic}/${d.partition}` !== id || d.seq !== seq) {
        find('bad-digest', key, `holds ${d.kind === 'chain' ? `digest ${d.seq} of ${d.topic}/${d.partition}` : `a ${d.kind} digest`}: replaced by another`);
        prev = null;
        continue;
      }
      stats.chainDigests++;
      if (seq === 0) {
        if (d.prev !== null) find('chain-broken', key, `${id}: the first digest names a predecessor`);
        stats.chainStarts[id] = d.from;
        const earliest = o.earliest?.get(id);
        if (earliest !== undefined && BigInt(d.from) > earliest) {
          find('offsets-unaccounted', key, `${id}: the chain starts at offset ${d.from} but Kafka still holds offsets from ${earliest}: offsets ${earliest}-${BigInt(d.from) - 1n} are in no digest (store wiped and started again, or signing turned on later)`);
        }
      } else if (prev !== null) {
        if (d.prev === null || d.prev.seq !== seq - 1 || d.prev.sha256 !== sha256Hex(prev.bytes)) {
          find('chain-broken', key, `${id}: digest ${seq} does not name digest ${seq - 1} as it is stored (replaced or reordered)`);
        }
        if (BigInt(d.from) !== BigInt(prev.body.to) + 1n) {
          find('offsets-unaccounted', key, `${id}: digest ${seq} starts at offset ${d.from}, digest ${seq - 1} ended at ${prev.body.to}`);
        }
      }
      const span = BigInt(d.to) - BigInt(d.from) + 1n;
      const skips = d.skipped.reduce((n, [a, b]) => n + BigInt(b) - BigInt(a) + 1n, 0n);
      const rows = d.files.reduce((n, f) => n + BigInt(f.rows), 0n);
      if (rows + BigInt(d.deadLetters.length) + skips !== span) {
        find('offsets-unaccounted', key, `${id}: offsets ${d.from}-${d.to} (${span}) are not ${rows} rows + ${d.deadLetters.length} dead letters + ${skips} skipped`);
      }
      offsets += span;
      skipped += skips;
      stats.deadLetters += d.deadLetters.length;
      for (const f of d.files) expect(f, key, d.writtenAt);
      prev = s as Signed<ChainDigest>;
    }
    const committed = o.committed?.get(id);
    const last = entries[entries.length - 1]!;
    const end = prev && prev.body.seq === last.seq ? BigInt(prev.body.to) : null;
    if (committed !== undefined && end !== null && end + 1n < committed) {
      find('offsets-unaccounted', last.key.replace(/\d{12}\.json$/, `${String(last.seq + 1).padStart(12, '0')}.json`),
        `${id}: the consumer group committed offset ${committed}, the digests end at ${end}: offsets ${end + 1n}-${committed - 1n} are unaccounted for (newest digests deleted?)`);
    }
  }
  for (const [id, committed] of o.committed ?? []) {
    if (!byPartition.has(id) && committed > 0n) find('offsets-unaccounted', `${DIGEST_ROOT}chain/${id}/`, `${id}: the consumer group committed offset ${committed} but there is no digest at all`);
  }
  stats.offsets = offsets.toString();
  stats.skippedOffsets = skipped.toString();

  // ---- compactions and retention ----
  const inWindow = (dt: string) => (o.since === null || dt >= o.since) && (o.until === null || dt <= o.until);
  const compactionKeys = (await list(`${DIGEST_ROOT}compaction/`)).map((x) => x.key);
  const compactions = new Map<string, Signed<CompactionDigest>>();
  for (const s of await fetchSigned(compactionKeys, 'compaction digests', 'compaction')) {
    if (!s) continue;
    if (s.body.kind !== 'compaction' || `${DIGEST_ROOT}compaction/${s.body.file.key.replace(/\.parquet$/, '.json')}` !== s.key) {
      find('bad-digest', s.key, 'does not describe the file it is named after');
      continue;
    }
    compactions.set(s.body.file.key, s as Signed<CompactionDigest>);
    stats.compactionDigests++;
  }
  const expiredDays = new Map<string, string>(); // dt -> when its retention digest was written
  for (const s of await fetchSigned((await list(`${DIGEST_ROOT}retention/`)).map((x) => x.key), 'retention digests', 'retention')) {
    if (s?.body.kind === 'retention') expiredDays.set(s.body.dt, s.body.writtenAt);
  }
  stats.expiredDays = expiredDays.size;

  // A compacted file's rows: every input's, minus the dropped copies; its inputs are what the chain (or an earlier compaction) signed.
  const holds = new Map<string, Set<string>>(); // compacted key -> raw keys it holds (transitively)
  const rawHeld = (key: string, seen = new Set<string>()): Set<string> => {
    const cached = holds.get(key);
    if (cached) return cached;
    const out = new Set<string>();
    const c = compactions.get(key);
    if (c && !seen.has(key)) {
      seen.add(key);
      for (const r of c.body.replaced) {
        if (compactions.has(r.key)) for (const k of rawHeld(r.key, seen)) out.add(k);
        else out.add(r.key);
      }
    }
    holds.set(key, out);
    return out;
  };
  for (const [fileKey, c] of compactions) {
    const d = c.body;
    if (!inWindow(d.dt)) continue;
    const inputRows = d.replaced.reduce((n, r) => n + r.rows, 0);
    if (inputRows !== d.file.rows + d.dropped.offsets.length) {
      find('compaction-mismatch', fileKey, `holds ${d.file.rows} rows + ${d.dropped.offsets.length} dropped copies, its inputs ${inputRows}`);
    }
    if (xorRowHashes(d.replaced.map((r) => r.rowHash)) !== xorRowHashes([d.file.rowHash, d.dropped.rowHash])) {
      find('compaction-mismatch', fileKey, 'its rows are not the rows of the files it replaced (row hashes differ)');
    }
    for (const r of d.replaced) {
      const signedEntry = compactions.get(r.key)?.body.file ?? expected.get(r.key)?.entry;
      if (!signedEntry) find('compaction-mismatch', fileKey, `replaced ${r.key}, which no digest lists`);
      else if (signedEntry.sha256 !== r.sha256 || signedEntry.rowHash !== r.rowHash || signedEntry.rows !== r.rows) {
        find('compaction-mismatch', fileKey, `replaced ${r.key} as it was not signed (the input had been altered)`);
      }
    }
  }

  // ---- the files ----
  const days = new Set<string>();
  for (const p of await o.store.listPrefixes('')) {
    const dt = /^dt=(\d{4}-\d{2}-\d{2})\/$/.exec(p)?.[1];
    if (dt && isDt(dt) && inWindow(dt)) days.add(dt);
  }
  for (const e of expected.values()) if (e.dt && inWindow(e.dt)) days.add(e.dt);
  // Generations are opened as the readers open them (storage/live-set.ts), under the same policy.
  let dayDone = 0;
  const states = await mapLimit([...days].sort(), o.concurrency, async (dt) => {
    const state = await readDay(o.store, dt, policy);
    o.onProgress?.('days', ++dayDone, days.size);
    return state;
  });
  for (const state of states) {
    const used = state.generation ? `readers use generation ${state.generation.generation}` : 'readers use no generation (every consumer file live)';
    for (const r of state.rejected) find('bad-generation', r.key, `${r.code}: ${r.reason.replace(`${r.key}: `, '')}; ${used}`);
  }
  // The layout is closed: anything else under the prefix is read by no one, and named here.
  for (const obj of await list('')) {
    if (classifyKey(obj.key) === null) find('outside-layout', obj.key, 'not part of the store\'s layout (storage/layout.ts): readers ignore it');
  }
  const present = new Map<string, { size: number; live: boolean; state: DayState }>();
  for (const state of states) {
    const live = new Set(state.live.map((f) => f.key));
    for (const f of state.files) present.set(f.key, { size: f.size, live: live.has(f.key), state });
  }
  // Every present file: listed, and its bytes as signed.
  const toHash: { key: string; entry: FileEntry }[] = [];
  for (const [key, p] of present) {
    const entry = compactions.get(key)?.body.file ?? expected.get(key)?.entry;
    if (!entry) {
      find('file-unlisted', key, 'no digest lists this data file (added to the store by something other than the pipeline)');
      continue;
    }
    if (entry.size !== p.size) find('file-modified', key, `${p.size} bytes, signed as ${entry.size}`);
    else toHash.push({ key, entry });
  }
  let hashed = 0;
  await mapLimit(toHash, o.concurrency, async ({ key, entry }) => {
    const bytes = await o.store.get(key);
    o.onProgress?.('files', ++hashed, toHash.length);
    if (bytes === null) return find('file-missing', key, 'listed in the store but gone when read');
    stats.filesChecked++;
    stats.bytesChecked += bytes.length;
    if (sha256Hex(bytes) !== entry.sha256) find('file-modified', key, `SHA-256 differs from the one signed in ${compactions.has(key) ? 'its compaction digest' : expected.get(key)!.by}`);
  });
  // Every listed file of the window: present and live, or held by a live compacted file, or expired.
  const liveHolders = new Map<string, string[]>();
  for (const [key, p] of present) {
    if (!p.live || !compactions.has(key)) continue;
    for (const raw of rawHeld(key)) {
      const l = liveHolders.get(raw) ?? [];
      l.push(key);
      liveHolders.set(raw, l);
    }
  }
  // The external manifests engines read: only their day's files, none twice (trust/external-manifests.ts).
  if (o.store.uri) {
    const uriOf = o.store.uri.bind(o.store);
    const manifests: ExternalManifest[] = [];
    for (const obj of await list(EXTERNAL_MANIFEST_ROOT)) {
      const dt = /^_symlink_format_manifest\/dt=(\d{4}-\d{2}-\d{2})\/manifest$/.exec(obj.key)?.[1];
      if (!dt || classifyKey(obj.key) !== 'external-manifest' || !inWindow(dt)) continue;
      const bytes = await o.store.get(obj.key);
      if (bytes !== null) manifests.push({ key: obj.key, dt, body: bytes.toString('utf8') });
    }
    const byDay = new Map(states.map((st) => [st.dt, st]));
    for (const f of checkExternalManifests(manifests, byDay, uriOf, (key) => rawHeld(key))) find('external-manifest-mismatch', f.key, f.message);
    // The Iceberg table (maintenance/iceberg/) is unsigned metadata engines read: its newest snapshot is held
    // to the same rule, day by day (it may lag the live set by one pass, never name a file twice or a foreign one).
    let table: Awaited<ReturnType<typeof newestSnapshotFiles>> = null;
    try {
      table = await newestSnapshotFiles({ get: (k) => o.store.get(k), uri: uriOf });
    } catch (err) {
      // Anything the bucket holds there is input: whatever fails to read is the finding.
      if (!(err instanceof Error)) throw err;
      find('iceberg-mismatch', '_iceberg/metadata/', `the table's newest snapshot cannot be read: ${(err as Error).message}`);
    }
    if (table !== null) {
      const byDt = new Map<string, string[]>();
      for (const key of table.files) {
        const dt = /^dt=(\d{4}-\d{2}-\d{2})\//.exec(key)?.[1] ?? '';
        if (dt !== '' && !inWindow(dt)) continue;
        byDt.set(dt, [...(byDt.get(dt) ?? []), key]);
      }
      const snapshotDays: ExternalManifest[] = [...byDt].map(([dt, keys]) => ({ key: `_iceberg/ snapshot ${table!.snapshotId} dt=${dt}`, dt, body: keys.map((k) => `${uriOf(k)}\n`).join('') }));
      for (const f of checkExternalManifests(snapshotDays, byDay, uriOf, (key) => rawHeld(key))) find('iceberg-mismatch', f.key, f.message);
    }
  }
  for (const [key, e] of expected) {
    if (!inWindow(e.dt)) continue;
    const p = present.get(key);
    const holders = liveHolders.get(key) ?? [];
    if (p?.live && holders.length > 0) find('file-duplicated', key, `live, and its rows are also in ${holders.join(', ')}`);
    if (p?.live || holders.length === 1) continue;
    if (holders.length > 1) {
      find('file-duplicated', key, `its rows are in ${holders.length} live compacted files`);
      continue;
    }
    if (excusedByRetention(e.writtenAt, expiredDays.get(e.dt))) continue;
    if (p) find('file-hidden', key, `hidden from readers by ${p.state.generation ? `generation ${p.state.generation.generation}` : 'the day\'s generation'}, but no live compacted file holds its rows`);
    else find('file-missing', key, `listed in ${e.by} (offsets ${e.entry.first}-${e.entry.last}, ${e.entry.rows} rows) but not in the store`);
  }
  // ---- the lookup indexes: signed by the same keys as the digests ----
  const indexes = await checkIndexes(o.store, policy, states, o.concurrency);
  // A data file already named (modified, unlisted) is the finding; its index no longer matching it adds nothing.
  const named = new Set(findings.filter((f) => f.code.startsWith('file-')).map((f) => `${INDEX_PREFIX}${f.key.replace(/\.parquet$/, '.json')}`));
  for (const f of indexes.findings) if (!named.has(f.key)) find(f.code, f.key, f.message);
  stats.indexesChecked = indexes.checked;

  stats.seconds = (Date.now() - started) / 1000;
  findings.sort((a, b) => a.key.localeCompare(b.key) || a.code.localeCompare(b.code));
  return { intact: findings.length === 0, findings, stats };
}

async function hasAny(store: Pick<ObjectStore, 'list'>, prefix: string): Promise<boolean> {
  for await (const _ of store.list(prefix)) return true;
  return false;
}
