import pino, { type Logger } from 'pino';

/** Structured JSON logs on stderr (stdout is left to command output). */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}

/** kafkajs log lines routed into pino. */
export function kafkaLogCreator(logger: Logger) {
  const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = { 1: 'error', 2: 'warn', 4: 'info', 5: 'debug' };
  return () =>
    ({ level, label, log }: { namespace: string; level: number; label: string; log: { message: string; [k: string]: unknown } }) => {
      const method = levels[level] ?? 'info';
      const { message, ...rest } = log;
      logger[method]({ kafka: label, ...rest }, message);
    };
}
