import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs on stderr (stdout is left to command output), written synchronously:
 * buffered, they reached stderr after a command's final one-line reason, and could be lost
 * when the process exits (volume is low: a few lines per stored cut).
 */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
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
