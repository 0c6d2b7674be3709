/**
 * Actor/tenant filters of the indexes and the search cursor (issue 20): the
 * filters never miss a value, survive signing and the day manifest, and are
 * ignored (may-contain) when absent or of another hash family; a cursor is
 * refused when forged, altered, made under another key, or made for another
 * query or tenant scope.
 */
import { BLOOM_HASH, type FileIndex, buildSubjectFilters, decodeSubjectFilter, encodeDayManifest, hasSubjectFilters, openDayManifest, subjectBloom, subjectsMayMatch } from '../../storage';
import { encodeFileIndex, openFileIndex } from '../../storage/signed-index';
import { UsageError } from '../../query/args';
import { decodeCursor, encodeCursor } from '../../query/cursor';
import { normalizeSearch } from '../../query/search';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import { TrustedKeys } from '../../trust/trusted-keys';
import type { TrustPolicy } from '../../trust/trust-policy';
import { UntrustedObjectError } from '../../trust/signed-object';

const KEY = Buffer.alloc(32, 7);
const POS = { occurredUs: '1788220800000123', partition: 2, offset: '9007199254740993', eventId: '4a8f2c1e-0000-4000-8000-000000000001' };

function indexWith(subjects: FileIndex['subjects']): FileIndex {
  return {
    version: 1,
    key: 'dt=2026-09-01/audit.events-0-0-9.parquet',
    rows: 10,
    bytes: 1234,
    minOccurredAt: 1,
    maxOccurredAt: 2,
    rowGroups: [{ offset: 4, length: 1000, rows: 10, typeMin: 'a', typeMax: 'b', idMin: '1', idMax: '9' }],
    ...(subjects ? { subjects } : {}),
  };
}

describe('subject filters', () => {
  it('never miss a value, skip most others, and ignore nulls', () => {
    const actors = Array.from({ length: 2000 }, (_, i) => `usr_${i}`);
    const f = subjectBloom([...actors, null, undefined]);
    const bloom = decodeSubjectFilter(f)!;
    for (const a of actors) expect(bloom.mayContain(a)).toBe(true);
    const falsePositives = Array.from({ length: 10_000 }, (_, i) => `other_${i}`).filter((a) => bloom.mayContain(a)).length;
    // Sized for 1%: allow sampling noise, but far below "everything matches".
    expect(falsePositives).toBeLessThan(250);
  });

  it('a missing filter or one of another hash family means the file may hold anyone', () => {
    const { actor, tenant } = buildSubjectFilters(['alice'], ['acme']);
    expect(subjectsMayMatch({ actor: decodeSubjectFilter(actor), tenant: decodeSubjectFilter(tenant) }, { actor: 'bob' })).toBe(false);
    expect(subjectsMayMatch({ actor: decodeSubjectFilter(actor), tenant: decodeSubjectFilter(tenant) }, { tenant: 'globex' })).toBe(false);
    expect(subjectsMayMatch({ actor: decodeSubjectFilter(actor), tenant: decodeSubjectFilter(tenant) }, { tenants: ['globex', 'acme'] })).toBe(true);
    expect(subjectsMayMatch({ actor: decodeSubjectFilter(actor), tenant: decodeSubjectFilter(tenant) }, { tenants: ['globex'] })).toBe(false);
    expect(subjectsMayMatch({ actor: null, tenant: null }, { actor: 'bob', tenant: 'globex' })).toBe(true);
    expect(decodeSubjectFilter({ ...actor!, hash: 'other-hash' })).toBeNull();
    expect(hasSubjectFilters(undefined)).toBe(false);
    expect(hasSubjectFilters({ actor })).toBe(false);
    expect(hasSubjectFilters({ actor, tenant })).toBe(true);
  });

  it('are signed with the per-file index and carried by the day manifest; an altered filter is refused', () => {
    const signer = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
    const policy: TrustPolicy = { mode: 'pinned', keys: new TrustedKeys([TrustedKeys.keyFromPem(signer.publicKeyPem, 'test')]), notice: null };
    const subjects = buildSubjectFilters(['alice', 'bob'], ['acme']);
    const index = indexWith(subjects);
    const stored = encodeFileIndex(index, signer);
    const file = { key: index.key, size: index.bytes };
    const opened = openFileIndex(policy, Buffer.from(stored), '_index/x.json', file).index;
    expect(opened.subjects).toEqual(subjects);
    expect(decodeSubjectFilter(opened.subjects!.actor)!.mayContain('alice')).toBe(true);

    // Someone who can write the bucket empties the actor filter to hide alice: the signature no longer holds.
    const env = JSON.parse(stored) as { body: string };
    const body = JSON.parse(env.body) as { filters: { actor: { bits: string } } };
    body.filters.actor.bits = Buffer.alloc(Buffer.from(body.filters.actor.bits, 'base64').length).toString('base64');
    const forged = JSON.stringify({ ...env, body: JSON.stringify(body) });
    expect(() => openFileIndex(policy, Buffer.from(forged), '_index/x.json', file)).toThrow(UntrustedObjectError);

    const manifest = openDayManifest(policy, encodeDayManifest('2026-09-01', [index, indexWith(undefined)], { signer }), '_index/dt=2026-09-01/_manifest.bin');
    expect(manifest.files[0]!.index.subjects).toEqual(subjects);
    expect(manifest.files[1]!.index.subjects).toBeUndefined();
    expect(subjects.actor!.hash).toBe(BLOOM_HASH);
  });
});

describe('search cursor', () => {
  const q = normalizeSearch({ actor: 'alice', sinceUs: 0, untilUs: 10 });

  it('round-trips a position beyond 2^53', () => {
    expect(decodeCursor(KEY, q.hash, encodeCursor(KEY, q.hash, POS))).toEqual(POS);
  });

  it('is refused when forged, altered or issued under another key', () => {
    const c = encodeCursor(KEY, q.hash, POS);
    const [body, mac] = c.split('.') as [string, string];
    const moved = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString('utf8')), t: '1' })).toString('base64url');
    expect(() => decodeCursor(KEY, q.hash, `${moved}.${mac}`)).toThrow(/forged, altered/);
    expect(() => decodeCursor(Buffer.alloc(32, 8), q.hash, c)).toThrow(UsageError);
    // The same MAC bytes spelt otherwise (base64's spare bits in the last character) are an alteration too.
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const respelt = c.slice(0, -1) + B64[B64.indexOf(c.slice(-1)) ^ 1];
    expect(Buffer.from(respelt.split('.')[1]!, 'base64url')).toEqual(Buffer.from(c.split('.')[1]!, 'base64url'));
    expect(() => decodeCursor(KEY, q.hash, respelt)).toThrow(/forged, altered/);
    expect(() => decodeCursor(KEY, q.hash, 'not-a-cursor')).toThrow(/not a cursor/);
    expect(() => decodeCursor(KEY, q.hash, `${body}.${mac.slice(1)}`)).toThrow(UsageError);
  });

  it('is refused for another query or another tenant scope, whatever the page size', () => {
    const c = encodeCursor(KEY, q.hash, POS);
    expect(decodeCursor(KEY, normalizeSearch({ actor: 'alice', sinceUs: 0, untilUs: 10, limit: 500 }).hash, c)).toEqual(POS);
    for (const other of [
      normalizeSearch({ actor: 'bob', sinceUs: 0, untilUs: 10 }),
      normalizeSearch({ actor: 'alice', sinceUs: 0, untilUs: 11 }),
      normalizeSearch({ actor: 'alice', tenant: 'acme', sinceUs: 0, untilUs: 10 }),
      normalizeSearch({ actor: 'alice', sinceUs: 0, untilUs: 10, scope: ['acme'] }),
    ]) {
      expect(() => decodeCursor(KEY, other.hash, c)).toThrow(/another search/);
    }
    // The scope is a set: order and repeats do not make another query.
    const scoped = normalizeSearch({ actor: 'alice', scope: ['b', 'a'] });
    expect(normalizeSearch({ actor: 'alice', scope: ['a', 'b', 'a'] }).hash).toBe(scoped.hash);
    expect(normalizeSearch({ actor: 'alice', scope: ['a'] }).hash).not.toBe(scoped.hash);
  });
});

describe('search validation', () => {
  it.each([
    [{}, /needs --actor, --tenant or --action/],
    [{ action: 'login' }, /action alone needs --since and --until/],
    [{ action: 'login', sinceUs: 1 }, /action alone needs --since and --until/],
    [{ actor: 'a', sinceUs: 5, untilUs: 1 }, /--since is after --until/],
    [{ actor: 'a', limit: 0 }, /limit/],
    [{ actor: 'a', limit: 1001 }, /limit/],
    [{ actor: '' }, /non-empty/],
  ])('refuses %j', (query, reason) => {
    expect(() => normalizeSearch(query)).toThrow(UsageError);
    expect(() => normalizeSearch(query)).toThrow(reason);
  });

  it('accepts an action with both bounds, and defaults the page to 100', () => {
    expect(normalizeSearch({ action: 'login', sinceUs: 1, untilUs: 2 }).limit).toBe(100);
  });
});
