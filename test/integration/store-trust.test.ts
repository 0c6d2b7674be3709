/**
 * Attacks by a bucket writer without a key, on the real broker and MinIO, on a
 * signed and compacted store: a forged day generation that hides every file and
 * retires the compacted one at time 0 (once made the next maintenance pass
 * delete the whole day), and valid Parquet copied under a folder that is not a
 * date (once counted by `audit-query sql`). Nothing is deleted, readers return
 * every event exactly once, and verify names both (exit 1).
 */
import { openStore } from '../../storage';
import { parseStoredFile } from '../../catalog';
import { auditStore, compareWithProduced, produceEvents } from '../helpers/audit-store';
import { envOf, isolatedEnv, runCli } from '../helpers/infra';
import { expectVerified, runVerify, signingKeyFile } from '../helpers/trust';

const HOPS = 7 * 3_600_000 + 1_234;

async function keysUnder(vars: Record<string, string>, prefix: string): Promise<string[]> {
  const store = openStore(envOf(vars));
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  store.close();
  return out.sort();
}

async function sqlCount(vars: Record<string, string>): Promise<{ code: number | null; n: number; stderr: string }> {
  const r = await runCli('query', ['sql', 'SELECT count(*)::INTEGER AS n FROM audit', '--format', 'json'], vars, 120_000);
  const rows = r.code === 0 ? (JSON.parse(r.stdout) as { n: number }[]) : [];
  return { code: r.code, n: rows[0]?.n ?? -1, stderr: r.stderr };
}

describe('a bucket writer without a key (real Kafka, MinIO)', () => {
  it('a forged generation stops the maintainer (nothing deleted) and is named by verify; data outside the layout is read by no one and named', async () => {
    const key = await signingKeyFile();
    const vars = isolatedEnv('store-trust', { AUDIT_FLUSH_MAX_RECORDS: '60', AUDIT_SIGNING_KEY_FILE: key.path, AUDIT_COMPACT_MIN_AGE: '0s' });
    const produced = await produceEvents(vars, 0, 600, { days: 2, stepMs: HOPS });
    const drained = await runCli('consumer', ['--drain'], vars, 180_000);
    expect({ code: drained.code, stderr: drained.code === 0 ? '' : drained.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const compacted = await runCli('maintenance', ['maintain', '--once'], vars, 180_000);
    expect({ code: compacted.code, stderr: compacted.code === 0 ? '' : compacted.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    await expectVerified(vars, 600);

    // The attack: the next generation of a day, written with PutObject only (no key).
    const store = openStore(envOf(vars));
    const day = (await keysUnder(vars, 'dt=')).map((k) => parseStoredFile(k)).find((r) => r?.kind === 'compacted')!;
    const gens = (await keysUnder(vars, `dt=${day.dt}/_live/`)).sort();
    const newest = Number(/(\d{10})\.json$/.exec(gens[gens.length - 1]!)![1]);
    const raws = (await keysUnder(vars, `dt=${day.dt}/`)).map((k) => parseStoredFile(k)).filter((r) => r?.kind === 'raw');
    const forgedKey = `dt=${day.dt}/_live/${String(newest + 1).padStart(10, '0')}.json`;
    const replaced: Record<string, [string, string, number][]> = {};
    for (const r of raws) (replaced[`${r!.topic}/${r!.partition}`] ??= []).push([r!.first, r!.last, 0]);
    await store.put(forgedKey, JSON.stringify({ format: 'audit-live/1', dt: day.dt, generation: newest + 1, committedAt: 0, files: [], replaced, retired: [{ key: day.key, at: 0 }] }));
    // And valid Parquet copied under a folder that is not a date.
    await store.put(`dt=2026-13-01/${day.key.slice(day.key.indexOf('/') + 1)}`, (await store.get(day.key))!);
    store.close();
    const before = await keysUnder(vars, '');

    const stopped = await runCli('maintenance', ['maintain', '--once'], { ...vars, AUDIT_COMPACT_GRACE: '0s' }, 180_000);
    const lines = stopped.stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
    expect({ code: stopped.code, lines }).toEqual({ code: 1, lines: [expect.stringContaining(`generation ${forgedKey} failed the trust check (unsigned)`)] });
    expect(await keysUnder(vars, '')).toEqual(before);

    // Readers use the newest generation that passes, and say so; nothing outside the layout is read.
    expect(compareWithProduced(await auditStore(vars), produced)).toEqual({ expected: 600, stored: 600, lost: 0, duplicated: 0, unexpected: 0 });
    const sql = await sqlCount(vars);
    expect({ code: sql.code, n: sql.n }).toEqual({ code: 0, n: 600 });
    expect(sql.stderr).toContain(`warning: generation ${forgedKey} failed the trust check`);

    const v = await runVerify(vars);
    expect({ code: v.code, findings: v.findings }).toEqual({
      code: 1,
      findings: [`bad-generation ${forgedKey}`, `outside-layout dt=2026-13-01/${day.key.slice(day.key.indexOf('/') + 1)}`].sort(),
    });
  }, 300_000);
});
