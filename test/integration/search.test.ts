/**
 * Activity across objects on the real broker and MinIO (issue 20): events of
 * several actors and tenants over four days go through the real pipeline
 * (AuditClient -> Kafka -> audit-consumer --drain, signed), then
 * `audit-query --actor/--tenant` page through them in event order, reading
 * fewer files than are stored; a page's cursor still works after
 * `audit-admin maintain` compacted the files; indexes forged without signature
 * are read around with the same answer; indexes written without the new
 * filters are backfilled by the maintainer; a tenant-scoped search never sees
 * another tenant's or a null tenant's events.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditClient, type AuditEventInput } from '../../producer';
import { type FileIndex, encodeDayManifest, indexKey, manifestKey, openStore, parseStoredFile, type ObjectStore } from '../../storage';
import { encodeFileIndex, openFileIndex } from '../../storage/signed-index';
import { UsageError } from '../../query/args';
import { openSearchContext, searchEvents, type SearchQuery } from '../../query/search';
import { DigestSigner } from '../../trust/signer';
import { TrustedKeys } from '../../trust/trusted-keys';
import { envOf, isolatedEnv, runCli, runCliOk } from '../helpers/infra';
import { signingKeyFile } from '../helpers/trust';

const DAY = (d: number, h: number, m: number, s = 0) => Date.UTC(2026, 5, d, h, m, s); // June 2026
const id = (prefix: string, n: number) => `${prefix}-0000-4000-8000-${String(n).padStart(12, '0')}`;

interface Produced {
  eventId: string;
  occurredAt: number;
  actorId: string;
  tenantId: string | null;
}

/**
 * 1,200 filler events of 40 actors in 6 tenants spread over four days, and
 * bursts by alice (tenant acme, plus one event for globex and one with no
 * tenant), bob (acme) and carol (globex), so that their events sit in a few
 * files only. Event times are distinct: the expected order is the time order.
 */
function plan(): Produced[] {
  const out: Produced[] = [];
  let n = 0;
  const span = 4 * 86_400_000;
  for (let i = 0; i < 1200; i++) {
    const t = DAY(1, 0, 0) + Math.floor((i * span) / 1200) + 7;
    out.push({ eventId: id('f0000000', ++n), occurredAt: t, actorId: `user-${i % 40}`, tenantId: `t${i % 6}` });
    if (i === 200 || i === 700) {
      for (let k = 0; k < 9; k++) out.push({ eventId: id('a1000000', ++n), occurredAt: t + 1 + k * 13, actorId: 'alice', tenantId: 'acme' });
      out.push({ eventId: id('a2000000', ++n), occurredAt: t + 200, actorId: 'alice', tenantId: i === 200 ? 'globex' : null });
    }
    if (i === 450) for (let k = 0; k < 6; k++) out.push({ eventId: id('b1000000', ++n), occurredAt: t + 1 + k * 11, actorId: 'bob', tenantId: 'acme' });
    if (i === 1000) for (let k = 0; k < 5; k++) out.push({ eventId: id('c1000000', ++n), occurredAt: t + 1 + k * 17, actorId: 'carol', tenantId: 'globex' });
  }
  return out;
}

const byTime = (a: Produced, b: Produced) => a.occurredAt - b.occurredAt;

async function dataKeys(store: ObjectStore): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  for await (const o of store.list('dt=')) if (parseStoredFile(o.key) !== null || o.key.endsWith('.parquet')) out.push({ key: o.key, size: o.size });
  return out;
}

describe('audit-query --actor / --tenant on MinIO (real Kafka, real S3)', () => {
  const produced = plan();
  let vars: Record<string, string>;
  let signer: DigestSigner;
  let trustFile: string;

  const search = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await runCli('query', [...args, '--format', 'ndjson', '--stats'], { ...vars, ...extra }, 120_000);
    const lines = r.stderr.trim().split('\n');
    const stats = r.code === 0 ? (JSON.parse(lines.pop()!) as Record<string, number>) : {};
    const next = lines.map((l) => /^next-cursor: (\S+)$/.exec(l)?.[1]).find((c) => c !== undefined) ?? null;
    const ids = r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event_id: string }).event_id);
    return { code: r.code, ids, next, stats, notes: lines.filter((l) => !l.startsWith('next-cursor: ')).join('\n'), stderr: r.stderr };
  };
  /** Every page of a search: the ids in order, and each page's stats. */
  const allPages = async (args: string[], extra: Record<string, string> = {}) => {
    const ids: string[] = [];
    const pages: Record<string, number>[] = [];
    let cursor: string | null = null;
    do {
      const r = await search([...args, ...(cursor ? ['--cursor', cursor] : [])], extra);
      expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
      ids.push(...r.ids);
      pages.push(r.stats);
      cursor = r.next;
    } while (cursor !== null && pages.length < 20);
    return { ids, pages };
  };
  const expected = (keep: (p: Produced) => boolean) => produced.filter(keep).sort(byTime).map((p) => p.eventId);

  beforeAll(async () => {
    const key = await signingKeyFile();
    signer = DigestSigner.fromPem(await readFile(key.path, 'utf8'), 'test');
    const base = isolatedEnv('search', { AUDIT_FLUSH_MAX_RECORDS: '50', AUDIT_SIGNING_KEY_FILE: key.path, AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' });
    trustFile = join(base.AUDIT_CACHE_DIR!, '..', `${base.AUDIT_TOPIC}-trusted.json`);
    await mkdir(join(trustFile, '..'), { recursive: true });
    await writeFile(trustFile, JSON.stringify([{ publicKeyFile: key.publicPem }]));
    vars = { ...base, AUDIT_TRUSTED_KEYS_FILE: trustFile, AUDIT_QUERY_CURSOR_KEY: 'k'.repeat(40) };
    const client = new AuditClient({ brokers: [vars.AUDIT_KAFKA_BROKERS!], topic: vars.AUDIT_TOPIC, sourceService: 'search-test', onBufferFull: 'block' });
    for (const p of produced) {
      const e: AuditEventInput = { eventId: p.eventId, objectType: 'order', objectId: p.eventId.slice(-3), action: 'update', occurredAt: p.occurredAt, actorId: p.actorId, tenantId: p.tenantId };
      await client.record(e);
    }
    expect(await client.flush(60_000)).toBe(true);
    await client.close();
    expect(client.stats()).toMatchObject({ dropped: 0, invalid: 0 });
    await runCliOk('consumer', ['--drain'], vars, 180_000);
  }, 300_000);

  it('pages an actor and a tenant in event order, reading fewer files than stored, and the cursor survives compaction', async () => {
    const store = openStore(envOf(vars));
    const stored = (await dataKeys(store)).length;
    store.close();
    expect(stored).toBeGreaterThan(10);
    const alice = expected((p) => p.actorId === 'alice');
    expect(alice).toHaveLength(20);

    const first = await search(['--actor', 'alice', '--limit', '7']);
    expect(first.ids).toEqual(alice.slice(0, 7));
    expect(first.next).not.toBeNull();
    expect(first.stats.filesRead).toBeGreaterThan(0);

    // Compaction rewrites every day's files; the cursor names a position, not a file.
    const maintained = await runCliOk('maintenance', ['maintain', '--once'], vars, 180_000);
    const report = (JSON.parse(maintained.stdout.trim().split('\n').pop()!) as { pass: Record<string, number> }).pass;
    expect(report.filesMerged).toBeGreaterThan(0);
    const afterCompaction = await dataKeys(openStore(envOf(vars)));
    expect(afterCompaction.length).toBeLessThan(stored);

    const rest: string[] = [];
    let cursor: string | null = first.next;
    while (cursor !== null) {
      const page = await search(['--actor', 'alice', '--limit', '7', '--cursor', cursor]);
      expect(page.code).toBe(0);
      rest.push(...page.ids);
      cursor = page.next;
    }
    expect([...first.ids, ...rest]).toEqual(alice);

    // Every page reads fewer files than the days it looks at hold.
    const whole = await allPages(['--actor', 'bob']);
    expect(whole.ids).toEqual(expected((p) => p.actorId === 'bob'));
    for (const s of whole.pages) expect(s.filesRead).toBeLessThan(s.filesListed!);

    const acme = await allPages(['--tenant', 'acme', '--limit', '6']);
    expect(acme.ids).toEqual(expected((p) => p.tenantId === 'acme'));
    expect(acme.pages.length).toBe(Math.ceil(acme.ids.length / 6));

    // A bounded range: only its events, and only its days are looked at.
    const since = new Date(DAY(2, 0, 0)).toISOString();
    const until = new Date(DAY(3, 23, 59, 59)).toISOString();
    const ranged = await allPages(['--tenant', 't3', '--since', since, '--until', until, '--limit', '1000']);
    expect(ranged.ids).toEqual(expected((p) => p.tenantId === 't3' && p.occurredAt >= DAY(2, 0, 0) && p.occurredAt <= DAY(3, 23, 59, 59)));
    expect(ranged.pages[0]!.days).toBe(2);
  }, 300_000);

  it('reads around indexes forged without signature (same answer, counted) and the maintainer backfills indexes without actor/tenant filters', async () => {
    // The files as the maintainer leaves them (compacted; a no-op after the first test).
    await runCliOk('maintenance', ['maintain', '--once'], vars, 180_000);
    const store = openStore(envOf(vars));
    const policy = { mode: 'pinned' as const, keys: await TrustedKeys.fromFile(trustFile), notice: null };
    const files = await dataKeys(store);
    const carol = expected((p) => p.actorId === 'carol');
    const before = await search(['--actor', 'carol']);
    expect(before.ids).toEqual(carol);

    // The attacker rewrites every index and day manifest of the store (no key): filters that hold no one.
    const forged = new Map<string, FileIndex[]>();
    const nobody = { actor: { hash: 'fnv1a-x2', hashes: 3, bits: Buffer.alloc(64).toString('base64') }, tenant: { hash: 'fnv1a-x2', hashes: 3, bits: Buffer.alloc(64).toString('base64') } };
    for (const f of files) {
      const dt = parseStoredFile(f.key)?.dt ?? f.key.slice(3, 13);
      const ixKey = indexKey(dt, f.key.slice(f.key.lastIndexOf('/') + 1));
      const { index } = openFileIndex(policy, (await store.get(ixKey))!, ixKey, f);
      const looksEmpty: FileIndex = { ...index, subjects: nobody };
      forged.set(dt, [...(forged.get(dt) ?? []), looksEmpty]);
      await store.put(ixKey, JSON.stringify(looksEmpty));
    }
    for (const [dt, indexes] of forged) await store.put(manifestKey(dt), encodeDayManifest(dt, indexes));
    const tampered = await search(['--actor', 'carol'], { AUDIT_CACHE_DIR: join(vars.AUDIT_CACHE_DIR!, 'tampered') });
    expect(tampered.code).toBe(0);
    expect(tampered.ids).toEqual(carol);
    expect(tampered.stats.indexesRejected).toBe(files.length + forged.size);
    expect(tampered.notes).toContain('failed the trust check');

    // Indexes of an earlier release: signed, but without the new filters.
    for (const f of files) {
      const dt = parseStoredFile(f.key)?.dt ?? f.key.slice(3, 13);
      const ixKey = indexKey(dt, f.key.slice(f.key.lastIndexOf('/') + 1));
      await store.delete(ixKey);
    }
    const rebuilt = await runCliOk('maintenance', ['maintain', '--once'], vars, 180_000);
    const first = (JSON.parse(rebuilt.stdout.trim().split('\n').pop()!) as { pass: Record<string, number> }).pass;
    expect(first.indexesRebuilt).toBe(files.length);
    for (const f of files) {
      const dt = parseStoredFile(f.key)?.dt ?? f.key.slice(3, 13);
      const ixKey = indexKey(dt, f.key.slice(f.key.lastIndexOf('/') + 1));
      const { index } = openFileIndex(policy, (await store.get(ixKey))!, ixKey, f);
      const { subjects: _dropped, ...old } = index;
      await store.put(ixKey, encodeFileIndex(old, signer, { writer: 'an earlier release' }));
      await store.delete(manifestKey(dt));
    }
    // Without the filters the search is still right, reading every file of the days.
    const unfiltered = await search(['--actor', 'carol'], { AUDIT_CACHE_DIR: join(vars.AUDIT_CACHE_DIR!, 'old') });
    expect(unfiltered.ids).toEqual(carol);
    expect(unfiltered.stats.filesRead).toBe(unfiltered.stats.filesListed);
    const backfill = await runCliOk('maintenance', ['maintain', '--once'], vars, 180_000);
    expect((JSON.parse(backfill.stdout.trim().split('\n').pop()!) as { pass: Record<string, number> }).pass.indexesRebuilt).toBe(files.length);
    for (const f of files) {
      const dt = parseStoredFile(f.key)?.dt ?? f.key.slice(3, 13);
      const ixKey = indexKey(dt, f.key.slice(f.key.lastIndexOf('/') + 1));
      expect(openFileIndex(policy, (await store.get(ixKey))!, ixKey, f).index.subjects?.actor).toBeDefined();
    }
    const after = await search(['--actor', 'carol'], { AUDIT_CACHE_DIR: join(vars.AUDIT_CACHE_DIR!, 'after') });
    expect(after.ids).toEqual(carol);
    expect(after.stats).toMatchObject({ indexesRejected: 0 });
    expect(after.stats.filesRead).toBeLessThan(after.stats.filesListed!);
    store.close();
  }, 300_000);

  it('a scoped search never returns nor counts other tenants or a null tenant; bad searches are refused in one line', async () => {
    const ctx = await openSearchContext(envOf(vars), { cursorKey: Buffer.alloc(32, 3) });
    try {
      const q: SearchQuery = { actor: 'alice', limit: 4 };
      const collect = async (query: SearchQuery) => {
        const ids: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await searchEvents(ctx, { ...query, cursor });
          ids.push(...page.events.map((e) => e.event_id));
          for (const e of page.events) if (query.scope && query.scope !== '*') expect(query.scope).toContain(e.tenant_id);
          cursor = page.next;
        } while (cursor !== null);
        return ids;
      };
      expect(await collect({ ...q, scope: '*' })).toEqual(expected((p) => p.actorId === 'alice'));
      expect(await collect({ ...q, scope: ['acme'] })).toEqual(expected((p) => p.actorId === 'alice' && p.tenantId === 'acme'));
      expect(await collect({ ...q, scope: ['globex'] })).toEqual(expected((p) => p.actorId === 'alice' && p.tenantId === 'globex'));
      expect(await collect({ tenant: 'acme', scope: ['globex'] })).toEqual([]);
      expect(await collect({ actor: 'alice', scope: [] })).toEqual([]);
      // The next page of a scoped search is not the next page of a wider one.
      const scoped = await searchEvents(ctx, { ...q, scope: ['acme'] });
      expect(scoped.next).not.toBeNull();
      await expect(searchEvents(ctx, { ...q, scope: '*', cursor: scoped.next })).rejects.toThrow(UsageError);
      await expect(searchEvents(ctx, { ...q, scope: ['acme', 'globex'], cursor: scoped.next })).rejects.toThrow(/another search/);
      await expect(searchEvents(ctx, { action: 'update' })).rejects.toThrow(/action alone needs/);
      const since = DAY(1, 0, 0);
      const until = DAY(1, 23, 59);
      const updates = await searchEvents(ctx, { action: 'update', since, until, limit: 1000 });
      expect(updates.events.map((e) => e.event_id)).toEqual(expected((p) => p.occurredAt >= since && p.occurredAt <= until));
    } finally {
      ctx.close();
    }

    const first = await search(['--tenant', 'acme', '--limit', '3']);
    for (const [args, reason] of [
      [['--action', 'update'], /action alone needs --since and --until/],
      [['--tenant', 'acme', '--cursor', `${first.next!.slice(0, -4)}AAAA`], /--cursor is not valid here/],
      [['--tenant', 'globex', '--cursor', first.next!], /--cursor belongs to another search/],
      [['--actor', 'alice', '--limit', '0'], /limit/],
      [['--object', 'order:1', '--tenant', 'acme'], /--tenant applies to a search without --object/],
    ] as const) {
      const r = await search([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(reason);
    }
    // Another cursor key (another user's cache dir without AUDIT_QUERY_CURSOR_KEY) refuses it too.
    const other = await search(['--tenant', 'acme', '--limit', '3', '--cursor', first.next!], { AUDIT_QUERY_CURSOR_KEY: 'z'.repeat(40) });
    expect(other.code).toBe(2);
  }, 300_000);
});
