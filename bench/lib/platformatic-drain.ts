/**
 * @platformatic/kafka's own ceiling: its stream consumer reads a topic to its end
 * and drops the messages, with the consumer's fetch settings (maxWaitTime; maxBytes
 * per fetch, by default 1 MiB: with the library's 50 MiB default its buffer re-walks
 * chunks and it measured ~6x slower). The consumer benchmark runs it beside kcat.
 *
 *   node dist/bench/lib/platformatic-drain.js <topic>   (AUDIT_KAFKA_BROKERS, default localhost:9092;
 *   BENCH_PLATFORMATIC_MAX_BYTES overrides maxBytes)
 */
import { Consumer, MessagesStreamModes } from '@platformatic/kafka';
import { FETCH_SETTINGS } from '../../consumer/fetch-settings';

async function main(): Promise<void> {
  const topic = process.argv[2];
  if (!topic) throw new Error('usage: platformatic-drain <topic>');
  const maxBytes = Number(process.env.BENCH_PLATFORMATIC_MAX_BYTES ?? 1024 * 1024);
  const consumer = new Consumer({
    clientId: 'bench-platformatic-drain',
    groupId: `bench-platformatic-${process.pid}-${Date.now()}`,
    bootstrapBrokers: (process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092').split(','),
    maxWaitTime: FETCH_SETTINGS.maxWaitTimeInMs,
    maxBytes,
  });
  const offsets = await consumer.listOffsets({ topics: [topic] });
  const ends = new Map((offsets.get(topic) ?? []).map((high, p) => [p, high]));
  const pending = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    if (pending.size === 0) resolve();
    stream.on('error', reject);
    stream.on('data', (m) => {
      count++;
      if (m.offset + 1n >= ends.get(m.partition)!) pending.delete(m.partition);
      if (pending.size === 0) resolve();
    });
  });
  await stream.close();
  await consumer.close(true);
  process.stderr.write(`platformatic-drain: ${count} messages\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
