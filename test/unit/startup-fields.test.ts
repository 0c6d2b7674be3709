/**
 * What a service's first log line says it works with: a store left to its default is said
 * to be the default, with the directory it resolves to from where the process runs.
 */
import { join } from 'node:path';
import { readEnv, startupFields } from '../../config/env';

it('names the default store as the default, with its directory, and the Kafka client with its brokers', () => {
  const env = readEnv({ AUDIT_KAFKA_CLIENT: 'kafkajs' });
  expect(startupFields(env, env.AUDIT_KAFKA_CLIENT, {})).toEqual({
    store: `file://./.audit-data (default), ${join(process.cwd(), '.audit-data')}`,
    topic: 'audit.events',
    group: 'audit-consumer',
    kafka: 'kafkajs localhost:9092',
  });
});

it('names a store that was set as it was set', () => {
  const vars = { AUDIT_STORE_URL: 's3://audit/prod', AUDIT_TOPIC: 'audit.prod', AUDIT_CONSUMER_GROUP: 'g', AUDIT_KAFKA_BROKERS: 'k1:9092,k2:9092', AUDIT_KAFKA_CLIENT: 'kafkajs' };
  expect(startupFields(readEnv(vars), 'kafkajs', vars)).toEqual({ store: 's3://audit/prod', topic: 'audit.prod', group: 'g', kafka: 'kafkajs k1:9092,k2:9092' });
});
