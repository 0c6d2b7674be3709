import { type ObjectInfo } from '../../storage';
import { type DayGeneration, type DayState, LIVE_FORMAT, LiveSetError, decodeGeneration, encodeGeneration, generationKey, liveFiles, parseStoredFile, splitDay } from '../../catalog';
import { nextGeneration, planCleanup, planMerges } from '../../maintenance/plan';
import { retentionCutoff } from '../../maintenance/retention';
import { parseDuration } from '../../config/duration';

const DT = '2026-05-01';
const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 4, 3);

const raw = (p: number, first: number, last: number, ageMs = 2 * HOUR): ObjectInfo => ({ key: `dt=${DT}/audit.events-${p}-${first}-${last}.parquet`, size: 100, lastModified: NOW - ageMs });
const compacted = (p: number, first: number, last: number, gen: number, token = 'abcd0123'): ObjectInfo => ({
  key: `dt=${DT}/audit.events-${p}-${first}-${last}.c${gen}-${token}.parquet`,
  size: 1000,
  lastModified: NOW - 10 * HOUR,
});

function dayOf(objects: ObjectInfo[], generation: DayGeneration | null): DayState {
  const split = splitDay(DT, objects);
  return { ...split, dt: DT, generation, rejected: [], live: liveFiles(split.files, generation) };
}

function generation(n: number, files: ObjectInfo[], replaced: DayGeneration['replaced'], retired: DayGeneration['retired'] = [], committedAt = NOW - 5 * HOUR): DayGeneration {
  return {
    format: LIVE_FORMAT,
    dt: DT,
    generation: n,
    committedAt,
    files: files.map((f) => {
      const r = parseStoredFile(f.key)!;
      return { key: f.key, size: f.size, rows: 10, topic: r.topic, partition: r.partition, first: r.first, last: r.last };
    }),
    replaced,
    retired,
  };
}

describe('file names', () => {
  it('tells consumer files from compacted ones, and neither from generations or indexes', () => {
    expect(parseStoredFile(`dt=${DT}/audit.events-2-10-99.parquet`)).toMatchObject({ kind: 'raw', topic: 'audit.events', partition: 2, first: '10', last: '99' });
    expect(parseStoredFile(`dt=${DT}/audit.events-2-10-99.c7-00ff00ff.parquet`)).toMatchObject({ kind: 'compacted', topic: 'audit.events', partition: 2, first: '10', last: '99', generation: 7 });
    expect(parseStoredFile(generationKey(DT, 3))).toBeNull();
    expect(parseStoredFile(`_index/dt=${DT}/audit.events-2-10-99.json`)).toBeNull();
    expect(generationKey(DT, 3)).toBe(`dt=${DT}/_live/0000000003.json`);
  });
});

describe('live set', () => {
  it('without a generation every consumer file is live; with one, replaced ranges are hidden and only named compacted files live', () => {
    const objects = [raw(0, 0, 9), raw(0, 10, 19), raw(0, 20, 29), compacted(0, 0, 19, 1), compacted(0, 0, 19, 1, 'ffff0000')];
    expect(dayOf(objects, null).live.map((f) => f.key)).toEqual([raw(0, 0, 9), raw(0, 10, 19), raw(0, 20, 29)].map((o) => o.key));
    const g = generation(1, [compacted(0, 0, 19, 1)], { 'audit.events/0': [['0', '9', NOW - 5 * HOUR], ['10', '19', NOW - 5 * HOUR]] });
    expect(dayOf(objects, g).live.map((f) => f.key).sort()).toEqual([compacted(0, 0, 19, 1).key, raw(0, 20, 29).key].sort());
  });

  it('a damaged or misplaced generation is an error, never skipped (skipping would show replaced files again)', () => {
    const g = generation(2, [], {});
    expect(decodeGeneration(encodeGeneration(g), generationKey(DT, 2))).toEqual(g);
    expect(() => decodeGeneration('{"format":"audit-live/1"', generationKey(DT, 2))).toThrow(LiveSetError);
    expect(() => decodeGeneration(encodeGeneration(g), generationKey(DT, 3))).toThrow(/does not match its key/);
    expect(() => decodeGeneration(encodeGeneration({ ...g, format: 'other' as typeof LIVE_FORMAT }), generationKey(DT, 2))).toThrow(/unknown format/);
  });
});

describe('planMerges', () => {
  it('merges per partition the old consumer files with the current compacted file, and leaves young-only partitions alone', () => {
    const g = generation(1, [compacted(0, 0, 19, 1), compacted(1, 0, 5, 1)], { 'audit.events/0': [['0', '19', NOW - 5 * HOUR]], 'audit.events/1': [['0', '5', NOW - 5 * HOUR]] });
    const day = dayOf([compacted(0, 0, 19, 1), compacted(1, 0, 5, 1), raw(0, 20, 29), raw(0, 30, 39, 60_000), raw(1, 6, 9, 60_000), raw(2, 0, 3)], g);
    const groups = planMerges(day, NOW, HOUR);
    expect(groups.map((m) => [m.partition, m.inputs.map((f) => f.key).sort()])).toEqual([
      [0, [compacted(0, 0, 19, 1).key, raw(0, 20, 29).key].sort()],
      [2, [raw(2, 0, 3).key]],
    ]);
    expect(planMerges(day, NOW, 0).map((m) => m.partition)).toEqual([0, 1, 2]);
  });
});

describe('nextGeneration', () => {
  it('names the new files, retires the merged compacted file, hides the merged consumer files, and forgets a hidden range only once it is deleted and committed past', () => {
    const old = compacted(0, 0, 19, 1);
    const prev = generation(1, [old, compacted(1, 0, 5, 1)], {
      'audit.events/0': [['0', '9', NOW - 5 * HOUR], ['10', '19', NOW - 5 * HOUR]],
      'audit.events/1': [['0', '5', NOW - 5 * HOUR]],
    });
    const day = dayOf([old, compacted(1, 0, 5, 1), raw(0, 10, 19), raw(0, 20, 29)], prev);
    const [group] = planMerges(day, NOW, HOUR);
    const out = { key: `dt=${DT}/audit.events-0-0-29.c2-00000000.parquet`, size: 5, rows: 30, topic: 'audit.events', partition: 0, first: '0', last: '29' };
    const next = nextGeneration(DT, prev, [{ group: group!, file: out }], {
      now: NOW,
      graceMs: HOUR,
      committed: new Map([['audit.events/0', 15n]]),
      present: new Set(day.files.map((f) => f.key)),
    });
    expect(next.generation).toBe(2);
    expect(next.files.map((f) => f.key).sort()).toEqual([compacted(1, 0, 5, 1).key, out.key].sort());
    expect(next.retired).toEqual([{ key: old.key, at: NOW }]);
    // 0-9: gone and committed past -> forgotten; 10-19: still present -> kept; 20-29: newly hidden;
    // partition 1: gone but nothing known committed -> kept.
    expect(next.replaced).toEqual({
      'audit.events/0': [['10', '19', NOW - 5 * HOUR], ['20', '29', NOW]],
      'audit.events/1': [['0', '5', NOW - 5 * HOUR]],
    });
    const after = dayOf([...day.files, { key: out.key, size: 5, lastModified: NOW }], next);
    expect(after.live.map((f) => f.key).sort()).toEqual([compacted(1, 0, 5, 1).key, out.key].sort());
  });
});

describe('planCleanup', () => {
  it('deletes hidden, retired and orphaned files and old generations only after the grace period', () => {
    const g = generation(
      3,
      [compacted(0, 0, 29, 3)],
      { 'audit.events/0': [['0', '9', NOW - 5 * HOUR], ['10', '29', NOW - 60_000]] },
      [{ key: compacted(0, 0, 9, 2).key, at: NOW - 2 * HOUR }, { key: compacted(0, 0, 9, 1).key, at: NOW - 60_000 }],
      NOW - 2 * HOUR,
    );
    const orphanOld = { ...compacted(0, 0, 29, 3, 'deadbeef'), lastModified: NOW - 3 * HOUR };
    const orphanYoung = { ...compacted(0, 0, 29, 4, 'cafecafe'), lastModified: NOW - 60_000 };
    const objects = [
      raw(0, 0, 9), raw(0, 10, 29), raw(0, 30, 39),
      compacted(0, 0, 29, 3), compacted(0, 0, 9, 2), compacted(0, 0, 9, 1), orphanOld, orphanYoung,
      { key: generationKey(DT, 1), size: 10 }, { key: generationKey(DT, 2), size: 10 }, { key: generationKey(DT, 3), size: 10 },
    ];
    const plan = planCleanup(dayOf(objects, g), NOW, HOUR);
    expect(plan.data.sort()).toEqual([raw(0, 0, 9).key, compacted(0, 0, 9, 2).key, orphanOld.key].sort());
    expect(plan.generations).toEqual([generationKey(DT, 1), generationKey(DT, 2)]);
    // Within the grace period of the newest generation, older ones stay.
    expect(planCleanup(dayOf(objects, { ...g, committedAt: NOW - 60_000 }), NOW, HOUR).generations).toEqual([]);
  });
});

describe('durations and retention', () => {
  it('reads the documented forms and nothing else', () => {
    expect([parseDuration('30s'), parseDuration('15m'), parseDuration('1h'), parseDuration('400d'), parseDuration('7y'), parseDuration('0s')]).toEqual([
      30_000, 900_000, HOUR, 400 * 24 * HOUR, 7 * 365 * 24 * HOUR, 0,
    ]);
    for (const bad of ['', '1', 'h', '1.5h', '-1d', '1 year', '1hour']) expect(parseDuration(bad)).toBeNull();
  });

  it('keeps the cutoff day itself', () => {
    expect(retentionCutoff(Date.UTC(2026, 4, 3, 12), 2 * 24 * HOUR)).toBe('2026-05-01');
  });
});
