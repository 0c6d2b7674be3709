#!/usr/bin/env -S node --max-semi-space-size=8
// A smaller young generation than Node 24's default: on the consumer benchmark, peak RSS
// ~480 MB instead of ~585 MB and ~10 % less CPU (the garbage is short-lived staging
// bookkeeping). `node dist/consumer/cli.js` skips this line: pass the flag there yourself.
import { binCommand, exitCodeOf, parseArgs, readEnvOrExit, runBin, sayError, stopOnSignals } from '../config/bin';
import { ConfigError, schemaRegistryConfig } from '../config/env';
import { createLogger } from '../config/logger';
import { UntrustedObjectError } from '../trust/signed-object';
import { AuditConsumerService, DependencyError } from './service';

async function main(argv: string[]): Promise<number> {
  const program = binCommand('audit-consumer', 'Stores audit records from Kafka as date-partitioned Parquet files (configuration: AUDIT_* environment variables)')
    .option('--drain', 'exit 0 once every assigned partition is caught up and stored')
    .option('--once', 'alias of --drain');
  const usage = await parseArgs(program, argv);
  if (usage !== null) return usage;
  const flags = program.opts<{ drain?: boolean; once?: boolean }>();

  const env = readEnvOrExit('audit-consumer', schemaRegistryConfig); // with the pairing rules of the registry credentials
  if (env === 2) return 2;
  const log = createLogger('audit-consumer', env.AUDIT_LOG_LEVEL);
  let service: AuditConsumerService;
  try {
    service = new AuditConsumerService(env, { drain: Boolean(flags.drain || flags.once), log });
  } catch (err) {
    sayError('audit-consumer', (err as Error).message);
    return exitCodeOf(err);
  }
  stopOnSignals(log, 'finishing the current batch', () => service.stop());
  try {
    await service.run();
    log.info('stopped');
    return 0;
  } catch (err) {
    // Stop first (it logs nothing when start-up failed before consuming), then one line on stderr
    // with the reason, naming what failed (a DependencyError names Kafka or the store).
    await service.stop(err as Error).catch(() => undefined);
    // A dependency missing at start-up is said once, in the line below; later failures are logged too.
    // A failed trust check was logged when the consumer halted on it.
    if (!(err instanceof DependencyError || err instanceof ConfigError || err instanceof UntrustedObjectError)) log.error({ err: (err as Error).message }, 'audit-consumer failed');
    sayError('audit-consumer', (err as Error).message);
    // A configuration found wrong only once the store is open (a missing signing key) is still one: exit 2.
    return exitCodeOf(err);
  }
}

runBin('audit-consumer', main);
