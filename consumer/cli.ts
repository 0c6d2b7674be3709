#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, readEnv, schemaRegistryConfig } from '../config/env';
import { createLogger } from '../config/logger';
import { AuditConsumerService } from './service';

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('audit-consumer')
    .description('Stores audit records from Kafka as date-partitioned Parquet files (configuration: AUDIT_* environment variables)')
    .option('--drain', 'exit 0 once every assigned partition is caught up and stored')
    .option('--once', 'alias of --drain')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const flags = program.opts<{ drain?: boolean; once?: boolean }>();

  let env;
  try {
    env = readEnv();
    schemaRegistryConfig(env); // the pairing rules of the registry credentials
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`audit-consumer: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger('audit-consumer', env.AUDIT_LOG_LEVEL);
  const service = new AuditConsumerService(env, { drain: Boolean(flags.drain || flags.once), log });
  const onSignal = (signal: string) => {
    log.info({ signal }, 'shutting down: finishing the current batch');
    void service.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await service.run();
    log.info('stopped');
    return 0;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'audit-consumer failed');
    process.stderr.write(`audit-consumer: ${(err as Error).message}\n`);
    await service.stop(err as Error).catch(() => undefined);
    return 1;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`audit-consumer: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
