#!/usr/bin/env node
import { binCommand, exitCodeOf, parseArgs, readEnvOrExit, runBin, sayError, stopOnSignals } from '../config/bin';
import { createLogger } from '../config/logger';
import { AuditCdcService } from './service';

async function main(argv: string[]): Promise<number> {
  const program = binCommand(
    'audit-cdc',
    'Publishes PostgreSQL row changes (logical replication, pgoutput) as audit events to Kafka (configuration: AUDIT_* environment variables, cdc/README.md)',
  );
  const usage = await parseArgs(program, argv);
  if (usage !== null) return usage;
  const env = readEnvOrExit('audit-cdc');
  if (env === 2) return 2;
  const log = createLogger('audit-cdc', env.AUDIT_LOG_LEVEL);
  let service: AuditCdcService;
  try {
    service = new AuditCdcService(env, { log });
  } catch (err) {
    sayError('audit-cdc', (err as Error).message);
    return exitCodeOf(err);
  }
  stopOnSignals(log, 'waiting for Kafka, then confirming the slot', () => service.stop());
  try {
    await service.run();
    return 0;
  } catch (err) {
    sayError('audit-cdc', (err as Error).message);
    return exitCodeOf(err);
  }
}

runBin('audit-cdc', main);
