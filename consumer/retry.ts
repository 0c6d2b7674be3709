/** Retries an async operation with capped exponential backoff and jitter. */
export interface RetryOptions {
  retries: number;
  baseMs?: number;
  maxMs?: number;
  /** Called before each wait; `attempt` starts at 1. */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void | Promise<void>;
  /** Stop retrying (and rethrow) when this returns true, e.g. during shutdown. */
  abandon?: () => boolean;
  /** Errors that another attempt cannot mend: rethrown at once. */
  permanent?: (err: unknown) => boolean;
}

export async function withRetry<T>(op: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const base = opts.baseMs ?? 250;
  const max = opts.maxMs ?? 15_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (attempt > opts.retries || opts.permanent?.(err) || opts.abandon?.()) throw err;
      const wait = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      await opts.onRetry?.(err, attempt, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
