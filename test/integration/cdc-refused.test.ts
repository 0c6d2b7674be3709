/**
 * A change event Kafka refuses for its size even alone (a topic whose max.message.bytes, 8 kB
 * here, is under the producer's 900 KB): audit-cdc exits with an error naming the cause and does not
 * confirm the slot past that change, so nothing is lost; a restart reads it again and stops
 * again, until the topic takes it. The events before it are delivered.
 */
import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { parseLsn } from '../../cdc/lsn';
import { CdcProcess, cdcEnv, dropCapture, PG_URL, RecordReader } from '../helpers/cdc';
import { createTopic } from '../helpers/topic-reader';

jest.setTimeout(180_000);

const { table, vars } = cdcEnv('refused');
const pool = new Pool({ connectionString: PG_URL, max: 2 });
const reader = new RecordReader(vars.AUDIT_TOPIC!);
const noise = (chars: number) => randomBytes(Math.ceil((chars * 3) / 4)).toString('base64').slice(0, chars);
const currentLsn = async () => parseLsn((await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
const confirmedLsn = async () =>
  parseLsn((await pool.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [vars.AUDIT_CDC_SLOT])).rows[0]!.lsn);

beforeAll(async () => {
  await createTopic(vars.AUDIT_TOPIC!, [{ name: 'max.message.bytes', value: '8000' }]);
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, a text, b text)`);
  // A broker restarted by an earlier test can refuse a new group's subscription for a few seconds.
  for (let attempt = 1; ; attempt++) {
    try {
      await reader.start();
      break;
    } catch (err) {
      if (attempt >= 30) throw err;
      await reader.stop().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
});

afterAll(async () => {
  await reader.stop();
  await dropCapture(pool, vars, table);
  await pool.end();
});

it('stops with the cause and confirms nothing past a change Kafka refuses, on every restart', async () => {
  const first = new CdcProcess(vars);
  await first.ready();
  await pool.query(`INSERT INTO "${table}" VALUES (1, 'small', NULL)`);
  await reader.waitFor((r) => r.object_id === '1');
  // Noise: `after` is cut to 16 KiB, which gzip cannot bring under 12 kB (6 bits a character): over the topic's 8 kB.
  await pool.query(`INSERT INTO "${table}" VALUES (2, $1, $2)`, [noise(40_000), noise(40_000)]);
  // Where the huge change's commit ends: confirming it would take the slot there (or past it).
  const hugeCommitted = await currentLsn();
  await pool.query(`INSERT INTO "${table}" VALUES (3, 'after the huge one', NULL)`);

  const exited = await first.exited;
  expect(exited.code).toBe(1);
  expect(first.stderr).toMatch(/Kafka refused 1 change event\(s\) for their size/);
  expect(await confirmedLsn()).toBeLessThan(hugeCommitted);

  // Read again on restart, refused again: still nothing confirmed past it, nothing lost. PostgreSQL
  // frees the slot a moment after its reader exits; a second reader before that is refused.
  while ((await pool.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [vars.AUDIT_CDC_SLOT])).rows[0]?.active) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const second = new CdcProcess(vars);
  await second.ready();
  const again = await second.exited;
  expect(again.code).toBe(1);
  expect(second.stderr).toMatch(/Kafka refused 1 change event\(s\) for their size/);
  expect(await confirmedLsn()).toBeLessThan(hugeCommitted);
  expect(reader.records.filter((r) => r.object_id === '2')).toEqual([]);
});
