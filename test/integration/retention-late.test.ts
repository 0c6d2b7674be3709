/**
 * Late events for a day that retention has removed, on the real broker and
 * MinIO: the consumer sends them to the dead-letter topic (ExpiredDayError)
 * instead of storing them into the removed day, where the next maintenance
 * pass would delete them again; the store still verifies clean, and the day
 * stays removed. One that reaches the consumer before it has read the day's
 * retention digest is stored, and the next pass removes it by policy under a
 * re-signed digest that names it, so verify still tells removal from deletion.
 */
import { openStore } from '../../storage';
import { auditStore, compareWithProduced, produceEvents, readTopic } from '../helpers/audit-store';
import { envOf, isolatedEnv, runCliOk } from '../helpers/infra';
import { expectVerified, signingKeyFile } from '../helpers/trust';

const DAY = 86_400_000;

async function days(vars: Record<string, string>): Promise<string[]> {
  const store = openStore(envOf(vars));
  try {
    return (await store.listPrefixes('')).filter((p) => p.startsWith('dt=')).map((p) => p.slice(3, -1)).sort();
  } finally {
    store.close();
  }
}

describe('late events for a day removed by retention (real Kafka, MinIO)', () => {
  it('are dead-lettered with the reason, never stored into the removed day, and the store verifies clean', async () => {
    const key = await signingKeyFile();
    const vars = isolatedEnv('retention-late', { AUDIT_SIGNING_KEY_FILE: key.path, AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_RETENTION: '400d' });
    const oldDay0 = Date.UTC(2023, 0, 10);
    const recentDay0 = Math.floor(Date.now() / DAY) * DAY - DAY;
    const old = await produceEvents(vars, 0, 60, { day0: oldDay0, days: 2, stepMs: 3_600_000 });
    const recent = await produceEvents(vars, 60, 60, { day0: recentDay0, days: 1 });
    const run = (bin: 'consumer' | 'maintenance', args: string[]) => runCliOk(bin, args, vars);
    await run('consumer', ['--drain']);
    expect(await days(vars)).toEqual(['2023-01-10', '2023-01-11', new Date(recentDay0).toISOString().slice(0, 10)]);
    // The old days are removed, each after its signed retention digest.
    await run('maintenance', ['maintain', '--once']);
    expect(await days(vars)).toEqual([new Date(recentDay0).toISOString().slice(0, 10)]);
    await expectVerified(vars, 120);
    expect(old).toHaveLength(60);

    // Late events for a removed day, and a few ordinary ones.
    await produceEvents(vars, 1000, 12, { day0: oldDay0, days: 1 });
    const more = await produceEvents(vars, 2000, 12, { day0: recentDay0, days: 1 });
    await run('consumer', ['--drain']);
    expect(await days(vars)).toEqual([new Date(recentDay0).toISOString().slice(0, 10)]);
    const letters = await readTopic(`${vars.AUDIT_TOPIC}.dlq`, 12);
    expect(letters).toHaveLength(12);
    expect(new Set(letters.map((l) => l.headers['audit-dlq-error-type']))).toEqual(new Set(['ExpiredDayError']));
    expect(letters[0]!.headers['audit-dlq-error']).toContain('dated 2023-01-10, a day removed by retention');

    await run('maintenance', ['maintain', '--once']);
    expect(compareWithProduced(await auditStore(vars), [...recent, ...more])).toEqual({ expected: 72, stored: 72, lost: 0, duplicated: 0, unexpected: 0 });
    // Every offset accounted for: 72 stored rows, 60 removed with their days, 12 dead letters.
    await expectVerified(vars, 144);

    // The consumer reads the retention digests every few minutes: a late event that arrives
    // before it has read a new one is stored into the removed day. Replayed here by hiding the
    // digest (admin credentials) from a consumer that then drains, and putting it back as it was.
    const store = openStore(envOf(vars));
    const digestKey = '_digests/retention/dt=2023-01-10.json';
    const digest = (await store.get(digestKey))!;
    expect(digest).not.toBeNull();
    await store.delete(digestKey);
    await produceEvents(vars, 3000, 6, { day0: oldDay0, days: 1 });
    await run('consumer', ['--drain']);
    await store.put(digestKey, digest);
    expect(await days(vars)).toEqual(['2023-01-10', new Date(recentDay0).toISOString().slice(0, 10)]);
    await expectVerified(vars, 150);
    const stored: string[] = [];
    for await (const o of store.list('dt=2023-01-10/')) stored.push(o.key);
    expect(stored.length).toBeGreaterThan(0);
    // The next pass removes the day again, by policy, and signs that removal naming the file:
    // verify tells it from a deletion (before, the file listed after the first removal was a finding).
    const pass = await run('maintenance', ['maintain', '--once']);
    expect(JSON.parse(pass.stdout.trim().split('\n').pop()!).pass.lateFilesRemoved).toBe(stored.length);
    expect(pass.stdout).toContain(`expired dt=2023-01-10 again: ${stored.length} data file(s) stored into it after its removal`);
    expect(await days(vars)).toEqual([new Date(recentDay0).toISOString().slice(0, 10)]);
    const resigned = JSON.parse(JSON.parse((await store.get(digestKey))!.toString('utf8')).body) as { writtenAt: string; firstWrittenAt: string; late: { key: string }[] };
    expect(resigned.firstWrittenAt).toBe(JSON.parse(JSON.parse(digest.toString('utf8')).body).writtenAt);
    expect(resigned.late.map((f) => f.key).sort()).toEqual(stored.sort());
    store.close();
    expect(compareWithProduced(await auditStore(vars), [...recent, ...more])).toEqual({ expected: 72, stored: 72, lost: 0, duplicated: 0, unexpected: 0 });
    await expectVerified(vars, 150);
  }, 480_000);
});
