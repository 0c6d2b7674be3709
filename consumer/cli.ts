#!/usr/bin/env -S node --max-semi-space-size=8
// A smaller young generation than Node 24's default: on the consumer benchmark, peak RSS
// ~480 MB instead of ~585 MB and ~10 % less CPU (the garbage is short-lived staging
// bookkeeping). `node dist/consumer/cli.js` skips this line: pass the flag there yourself.
import { Command, CommanderError } from 'commander';
import { ConfigError, readEnv, schemaRegistryConfig } from '../config/env';
import { createLogger } from '../config/logger';
import { AuditConsumerService, DependencyError } from './service';

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
  let service: AuditConsumerService;
  try {
    service = new AuditConsumerService(env, { drain: Boolean(flags.drain || flags.once), log });
  } catch (err) {
    process.stderr.write(`audit-consumer: ${oneLine((err as Error).message)}\n`);
    return 1;
  }
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
    // Stop first (it logs nothing when start-up failed before consuming), then one line on stderr
    // with the reason, naming what failed (a DependencyError names Kafka or the store).
    await service.stop(err as Error).catch(() => undefined);
    // A dependency missing at start-up is said once, in the line below; later failures are logged too.
    if (!(err instanceof DependencyError || err instanceof ConfigError)) log.error({ err: (err as Error).message }, 'audit-consumer failed');
    process.stderr.write(`audit-consumer: ${oneLine((err as Error).message)}\n`);
    // A configuration found wrong only once the store is open (a missing signing key) is still one: exit 2.
    return err instanceof ConfigError ? 2 : 1;
  }
}

/** One line, whatever the cause looks like (SDK errors can be multi-line). */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

// The AWS SDK's multi-line Node-version notice would break "one line on stderr".
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`audit-consumer: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
