import { terminalSafe } from '../config/safe-text';
import type { AuditLogger } from './client-options';

export interface ConsoleLoggerOptions {
  /** The same message is printed at most once per this many milliseconds (default 60,000). */
  intervalMs?: number;
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
  now?: () => number;
}

/**
 * The client's default logger: one line on stderr per message, each kind of message at most
 * once per interval. Without it, a broker that is down or a buffer that drops events went
 * unnoticed until someone read `stats()`; printed for every failed retry, they would flood the
 * app's own log instead. Lines that were held back are counted on the next one printed.
 * Deliberately not pino: the recording side carries no logging dependency of its own.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): AuditLogger {
  const intervalMs = options.intervalMs ?? 60_000;
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const now = options.now ?? Date.now;
  const last = new Map<string, { at: number; held: number }>();
  const emit = (level: 'warn' | 'error', obj: object, msg = '') => {
    const t = now();
    const seen = last.get(msg);
    if (seen && t - seen.at < intervalMs) {
      seen.held++;
      return;
    }
    last.set(msg, { at: t, held: 0 });
    const held = seen && seen.held > 0 ? ` (${seen.held} more since the last line like this)` : '';
    const detail = Object.keys(obj).length > 0 ? ` ${JSON.stringify(obj)}` : '';
    // Details quote object keys and broker errors: escaped so they print as one plain line.
    write(`audit-pipeline ${level}: ${terminalSafe(`${msg}${detail}`)}${held}\n`);
  };
  return { warn: (obj, msg) => emit('warn', obj, msg), error: (obj, msg) => emit('error', obj, msg) };
}
