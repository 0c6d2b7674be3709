import { Command, CommanderError } from 'commander';
import type { Logger } from 'pino';
import { ConfigError, type Env, readEnv } from './env';
import { terminalSafe } from './safe-text';

/**
 * What every bin (audit-consumer, audit-cdc, audit-admin, audit-query) does the
 * same way around its own work: configuration errors are one line and exit 2,
 * a failure is one line and exit 1, a signal stops the service cleanly.
 * Scripts rely on those exit codes (shared/CONTRACT.md).
 */

/**
 * One line, whatever the cause looks like (SDK errors can be multi-line), with
 * any control character escaped: messages may quote stored text (a DuckDB
 * conversion error quotes the value, a store error the key).
 */
export function oneLine(text: string): string {
  return terminalSafe(text.replace(/\s*\n\s*/g, ' ').trim());
}

/** Prints `<bin>: <message>` as one line on stderr. */
export function sayError(bin: string, message: string): void {
  process.stderr.write(`${bin}: ${oneLine(message)}\n`);
}

/** The exit code of a failure: 2 for a configuration found wrong (even late, once the store is open), else 1. */
export function exitCodeOf(err: unknown): 1 | 2 {
  return err instanceof ConfigError ? 2 : 1;
}

/** A bin's command: commander's usage errors and help come back to `parseArgs` instead of exiting, and go to stderr. */
export function binCommand(bin: string, description: string): Command {
  return new Command()
    .name(bin)
    .description(description)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

/**
 * Parses the command line (running the actions it selects). Null once parsed;
 * otherwise the exit code: 0 after --help or --version, 2 for a usage error
 * (commander printed it).
 */
export async function parseArgs(program: Command, argv: string[]): Promise<0 | 2 | null> {
  try {
    await program.parseAsync(argv);
    return null;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
}

/** The validated environment, or exit code 2 after one line naming the bad variable. */
export function readEnvOrExit(bin: string, check?: (env: Env) => void): Env | 2 {
  try {
    const env = readEnv();
    check?.(env);
    return env;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    sayError(bin, err.message);
    return 2;
  }
}

/** SIGTERM and SIGINT stop the service once; `what` says what the stop waits for. */
export function stopOnSignals(log: Logger, what: string, stop: () => unknown): void {
  const onSignal = (signal: string) => {
    log.info({ signal }, `shutting down: ${what}`);
    void Promise.resolve(stop()).catch((err: Error) => log.error({ err: err.message }, 'stopping failed'));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

/**
 * kafkajs 2.2 (unmaintained) arms its request queue's throttle check with a negative delay
 * whenever it is not throttled; Node 24 warns about each such timer (TimeoutNegativeWarning, two
 * lines on stderr) and runs it after 1 ms, as earlier Nodes did silently. Harmless, but it broke
 * "one line on stderr" (`audit-query verify --kafka`). Only the bins drop it: an app's process,
 * which may use kafkajs through the producer, keeps Node's warnings as they are.
 */
function withoutNegativeTimeoutWarnings(): void {
  const emit = process.emitWarning.bind(process) as (warning: string | Error, ...rest: unknown[]) => void;
  const filtered = (warning: string | Error, ...rest: unknown[]): void => {
    const option = rest[0];
    const type = typeof option === 'string' ? option : ((option as { type?: string } | undefined)?.type ?? (warning instanceof Error ? warning.name : undefined));
    if (type === 'TimeoutNegativeWarning') return;
    emit(warning, ...rest);
  };
  process.emitWarning = filtered as typeof process.emitWarning;
}

/**
 * Runs a bin's main and exits with its code. A failure main did not expect is
 * still one line for the user; its stack follows with AUDIT_LOG_LEVEL=debug.
 */
export function runBin(bin: string, main: (argv: string[]) => Promise<number>): void {
  // The AWS SDK's multi-line Node-version notice would break "one line on stderr".
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  withoutNegativeTimeoutWarnings();
  main(process.argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      sayError(bin, err instanceof Error ? err.message : String(err));
      const level = process.env.AUDIT_LOG_LEVEL;
      if ((level === 'debug' || level === 'trace') && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    },
  );
}
