/**
 * The client is loud where it matters: with no logger option, an unreachable broker and
 * dropped events each print a line on stderr (rate-limited), `logger: false` prints
 * nothing, and a `schemaRegistry` option with only a URL gets its other settings' defaults.
 * The broker is a closed port: no service is needed.
 */
import { AuditClient, consoleLogger, SchemaRegistryUnavailableError } from '../../producer';
import { AuditConfigError } from '../../producer/errors';
import { resolveSchemaRegistry } from '../../producer/client-options';

const CLOSED = ['127.0.0.1:1'];

/** Every stderr line written while `run` runs. */
async function stderrOf(run: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return lines;
}

it('prints by default that Kafka is unreachable and that events were dropped, once each', async () => {
  const lines = await stderrOf(async () => {
    const client = new AuditClient({ brokers: CLOSED, topic: 't', schemaRegistry: null, bufferSize: 2, onBufferFull: 'drop', sender: { client: 'kafkajs', thread: 'inline' } });
    for (let i = 0; i < 10; i++) await client.record({ objectType: 'invoice', objectId: i, action: 'update' });
    await client.close(500);
    expect(client.stats().dropped).toBe(10);
  });
  const unreachable = lines.filter((l) => l.includes('Kafka unreachable'));
  expect(unreachable).toHaveLength(1);
  expect(unreachable[0]).toMatch(/^audit-pipeline error: audit events not delivered: Kafka unreachable or refusing; kept in the buffer and retried \{.*"brokers":"127\.0\.0\.1:1"/);
  expect(lines.filter((l) => l.includes('audit buffer full: event dropped'))).toEqual(['audit-pipeline warn: audit buffer full: event dropped {"dropped":1,"buffered":2}']);
  expect(lines).toContain('audit-pipeline error: audit client closed with undelivered events {"lost":2}');
});

it('prints nothing with logger: false, and hands the same messages to a logger it is given', async () => {
  const given: string[] = [];
  const lines = await stderrOf(async () => {
    const quiet = new AuditClient({ brokers: CLOSED, topic: 't', schemaRegistry: null, bufferSize: 1, logger: false, sender: { client: 'kafkajs', thread: 'inline' } });
    const own = new AuditClient({ brokers: CLOSED, topic: 't', schemaRegistry: null, bufferSize: 1, sender: { client: 'kafkajs', thread: 'inline' }, logger: { warn: (_o, m) => given.push(`warn ${m}`), error: (_o, m) => given.push(`error ${m}`) } });
    for (const c of [quiet, own]) for (let i = 0; i < 3; i++) await c.record({ objectType: 'invoice', objectId: i, action: 'update' });
    await Promise.all([quiet.close(300), own.close(300)]);
    expect(quiet.stats().dropped).toBe(3);
  });
  expect(lines.filter((l) => l.startsWith('audit-pipeline'))).toEqual([]);
  expect(given).toContain('warn audit buffer full: event dropped');
  expect(given).toContain('error audit client closed with undelivered events');
});

it('rate-limits each message and counts the lines held back', () => {
  const out: string[] = [];
  let t = 0;
  const log = consoleLogger({ intervalMs: 1000, write: (l) => out.push(l), now: () => t });
  log.warn({ n: 1 }, 'a');
  log.warn({ n: 2 }, 'a');
  log.warn({ n: 3 }, 'a');
  log.error({}, 'b');
  t = 1000;
  log.warn({ n: 4 }, 'a');
  log.warn({}, 'c\u001b[2J');
  expect(out).toEqual([
    'audit-pipeline warn: a {"n":1}\n',
    'audit-pipeline error: b\n',
    'audit-pipeline warn: a {"n":4} (2 more since the last line like this)\n',
    'audit-pipeline warn: c\\e[2J\n',
  ]);
});

it('fills the schemaRegistry option from the URL alone, as the environment variable does', async () => {
  expect(resolveSchemaRegistry({ url: 'http://127.0.0.1:1/apis/ccompat/v7' })).toEqual({ url: 'http://127.0.0.1:1/apis/ccompat/v7', auth: { kind: 'none' }, subjectStrategy: 'topic', retryMs: 300_000 });
  expect(resolveSchemaRegistry({ url: 'http://r', subjectStrategy: 'record', auth: { kind: 'bearer', token: 't' } })).toMatchObject({ subjectStrategy: 'record', auth: { kind: 'bearer', token: 't' } });
  expect(() => resolveSchemaRegistry({ url: 'not a url' })).toThrow(new AuditConfigError('schemaRegistry.url must be a URL (got "not a url")'));
  // Before: "Cannot read properties of undefined (reading 'kind')". Now the registry is asked, and is down.
  const client = new AuditClient({ brokers: CLOSED, topic: 't', schemaRegistry: { url: 'http://127.0.0.1:1' }, logger: false, sender: { client: 'kafkajs', thread: 'inline' } });
  await expect(client.start()).rejects.toBeInstanceOf(SchemaRegistryUnavailableError);
  await client.close(100);
});
