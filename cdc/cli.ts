#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, readEnv } from '../config/env';
import { createLogger } from '../config/logger';
import { AuditCdcService } from './service';

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('audit-cdc')
    .description('Publishes PostgreSQL row changes (logical replication, pgoutput) as audit events to Kafka (configuration: AUDIT_* environment variables, cdc/README.md)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  let env;
  let service;
  const log = createLogger('audit-cdc', process.env.AUDIT_LOG_LEVEL ?? 'info');
  try {
    env = readEnv();
    log.level = env.AUDIT_LOG_LEVEL;
    service = new AuditCdcService(env, { log });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`audit-cdc: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const svc = service;
  const onSignal = (signal: string) => {
    log.info({ signal }, 'shutting down: waiting for Kafka, then confirming the slot');
    void svc.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await svc.run();
    return 0;
  } catch (err) {
    process.stderr.write(`audit-cdc: ${(err as Error).message}\n`);
    return 1;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`audit-cdc: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
