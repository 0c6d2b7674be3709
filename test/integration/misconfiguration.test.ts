/**
 * Misconfiguration is loud: what a user sees (the exact line, the exit code) when a reader
 * points at a store that is not there, the consumer at a topic that is not there, or verify
 * at a store written without a key; and readers agree after a replay (the sql view counts an
 * event stored twice once, as --object shows it). Real Kafka, real S3 (MinIO), the built CLIs.
 */
import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { auditStore, produceEvents } from '../helpers/audit-store';
import { KAFKA_BROKERS, ROOT, S3_ENDPOINT, binPath, isolatedEnv, runCli, runCliOk, waitExit, type RunResult } from '../helpers/infra';
import { signingKeyFile } from '../helpers/trust';

jest.setTimeout(120_000);

async function topicsOnBroker(): Promise<Set<string>> {
  const admin = new Kafka({ clientId: 'misconfig-test', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return new Set(await admin.listTopics());
  } finally {
    await admin.disconnect();
  }
}

/** A built CLI run in `cwd` with exactly these AUDIT_* variables (none inherited from the test's environment). */
function runIn(cwd: string, bin: 'query' | 'consumer', args: string[], vars: Record<string, string>): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUDIT_')) env[k] = v;
  return waitExit(spawn(process.execPath, [binPath(bin), ...args], { cwd, env: { ...env, ...vars }, stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
}

const exists = (path: string) => access(path).then(() => true, () => false);

describe('audit-query refuses a store that does not exist, and creates nothing', () => {
  it('the default ./.audit-data run from another folder: exit 2, one line naming the variable and the directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'misconfig-cwd-'));
    const vars = { AUDIT_CACHE_DIR: join(dir, 'cache') };
    const line = `audit-query: no store at file://./.audit-data (the default) (AUDIT_STORE_URL): ${join(dir, '.audit-data')} does not exist\n`;
    for (const args of [['--object', 'invoice:42'], ['sql', 'SELECT count(*) FROM audit'], ['--actor', 'alice', '--object', 'invoice:1', '--format', 'json']]) {
      const r = await runIn(dir, 'query', args, vars);
      expect({ args, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, code: 2, stdout: '', stderr: line });
    }
    expect(await exists(join(dir, '.audit-data'))).toBe(false);
    const verify = await runIn(dir, 'query', ['verify'], vars);
    expect({ code: verify.code, stdout: verify.stdout, stderr: verify.stderr }).toEqual({ code: 2, stdout: '', stderr: `audit-query verify: no store at file://./.audit-data (the default) (AUDIT_STORE_URL): ${join(dir, '.audit-data')} does not exist\n` });
    expect(await readdir(dir)).toEqual(expect.not.arrayContaining(['.audit-data']));
  });

  it('an S3 bucket that does not exist: exit 2, one line; an empty prefix of an existing bucket is an empty store (exit 0)', async () => {
    const vars = isolatedEnv('misconfig-bucket');
    const missing = await runCli('query', ['--object', 'invoice:42'], { ...vars, AUDIT_STORE_URL: 's3://no-such-bucket-misconfig/p' });
    expect(missing).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `audit-query: no store at s3://no-such-bucket-misconfig/p (AUDIT_STORE_URL): bucket no-such-bucket-misconfig does not exist (endpoint ${S3_ENDPOINT})\n`,
    });
    const empty = await runCli('query', ['--object', 'invoice:42', '--format', 'json'], vars);
    expect({ code: empty.code, stdout: empty.stdout, stderr: empty.stderr }).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
  });
});

describe.each(['kafkajs', 'platformatic'])('audit-consumer and a topic that does not exist (%s)', (client) => {
  it('refuses it: exit 2, one line naming the topic and the brokers, after a first line naming store, topic, group and client; creates nothing', async () => {
    const vars = isolatedEnv('misconfig-topic', { AUDIT_KAFKA_CLIENT: client, AUDIT_LOG_LEVEL: 'info' });
    const r = await runCli('consumer', ['--drain'], vars, 60_000);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect({ code: r.code, stdout: r.stdout, last: lines.at(-1) }).toEqual({
      code: 2,
      stdout: '',
      last: `audit-consumer: topic ${vars.AUDIT_TOPIC} does not exist on ${KAFKA_BROKERS} (AUDIT_TOPIC); create it, or set AUDIT_CREATE_TOPIC=true to have the consumer create it`,
    });
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: 'audit-consumer starting',
      store: vars.AUDIT_STORE_URL,
      topic: vars.AUDIT_TOPIC,
      group: vars.AUDIT_CONSUMER_GROUP,
      kafka: `${client} ${KAFKA_BROKERS}`,
    });
    const topics = await topicsOnBroker();
    expect([topics.has(vars.AUDIT_TOPIC!), topics.has(`${vars.AUDIT_TOPIC}.dlq`)]).toEqual([false, false]);
  });

  it('creates it with AUDIT_CREATE_TOPIC=true, and drains it (empty) with exit 0', async () => {
    const vars = isolatedEnv('misconfig-create', { AUDIT_KAFKA_CLIENT: client, AUDIT_CREATE_TOPIC: 'true' });
    await runCliOk('consumer', ['--drain'], vars, 90_000);
    const topics = await topicsOnBroker();
    expect([topics.has(vars.AUDIT_TOPIC!), topics.has(`${vars.AUDIT_TOPIC}.dlq`)]).toEqual([true, true]);
  });
});

describe('a store written without a key, and an event stored twice', () => {
  const vars = isolatedEnv('misconfig-replay', { AUDIT_LOG_LEVEL: 'info' });
  let firstLine: Record<string, unknown>;

  beforeAll(async () => {
    // The same 300 event ids twice, the second time as a replay would resend them: stored twice.
    await produceEvents(vars, 0, 300, { objects: 10 });
    await produceEvents(vars, 0, 300, { objects: 10, extra: { actorId: 'replayed' } });
    const drained = await runCliOk('consumer', ['--drain'], vars, 120_000);
    firstLine = JSON.parse(drained.stderr.split('\n')[0]!) as Record<string, unknown>;
    // Stored twice indeed: each id at two offsets.
    const stored = await auditStore(vars);
    expect({ rows: stored.rows, ids: stored.counts.size }).toEqual({ rows: 600, ids: 300 });
  }, 240_000);

  it("the consumer's first line names the store, topic, group and Kafka client", () => {
    expect(firstLine).toMatchObject({ msg: 'audit-consumer starting', store: vars.AUDIT_STORE_URL, topic: vars.AUDIT_TOPIC, group: vars.AUDIT_CONSUMER_GROUP, kafka: expect.stringMatching(/^(kafkajs|platformatic) /) });
  });

  it('verify --trust on it says in one line that nothing was signed (exit 2), not one finding per file', async () => {
    const key = await signingKeyFile();
    const r = await runCli('query', ['verify', '--trust', key.publicPem], vars);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 2,
      stdout: '',
      stderr: 'audit-query verify: the store has no digests (nothing under _digests/): it was written without a signing key, so there is nothing to verify (set AUDIT_SIGNING_KEY_FILE for the consumer and maintainer; trust/README.md)\n',
    });
  });

  it('sql counts each event id once, the first stored copy, as --object does; counts are numbers', async () => {
    const sql = await runCli('query', ['sql', "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(*) FILTER (WHERE actor_id = 'replayed') AS replayed FROM audit", '--format', 'json'], vars);
    expect({ code: sql.code, stderr: sql.stderr, rows: JSON.parse(sql.stdout) as unknown }).toEqual({ code: 0, stderr: '', rows: [{ n: 300, ids: 300, replayed: 0 }] });
    const byObject = await runCli('query', ['sql', 'SELECT object_id, count(*) AS n FROM audit GROUP BY 1 ORDER BY 1', '--format', 'json'], vars);
    const counts = JSON.parse(byObject.stdout) as { object_id: string; n: number }[];
    const history = await runCli('query', ['--object', 'order:3', '--format', 'json'], vars);
    const events = JSON.parse(history.stdout) as { actor_id: string }[];
    expect(counts.find((c) => c.object_id === '3')?.n).toBe(events.length);
    expect(events.filter((e) => e.actor_id === 'replayed')).toEqual([]);
  });
});


it('verify --kafka prints its one summary line and nothing else (kafkajs on Node 24 warned about negative timers)', async () => {
  const key = await signingKeyFile();
  const vars = isolatedEnv('misconfig-kafka', { AUDIT_SIGNING_KEY_FILE: key.path });
  await produceEvents(vars, 0, 50, { objects: 5 });
  await runCliOk('consumer', ['--drain'], vars, 120_000);
  const r = await runCli('query', ['verify', '--kafka', '--trust', key.publicPem], vars);
  expect({ code: r.code, stdout: r.stdout, lines: r.stderr.split('\n').filter(Boolean) }).toEqual({ code: 0, stdout: '', lines: [expect.stringMatching(/^verify: intact: \d+ partition\(s\), .* 50 offsets /)] });
});
