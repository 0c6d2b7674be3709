import type { AuditEventInput } from '../build-record';
import type { AuditLogger } from '../client';

/**
 * What the hooks need from an audit client: `AuditClient` satisfies it, and a
 * test can pass a fake.
 */
export interface AuditRecorder {
  record(input: AuditEventInput): Promise<void>;
}

/** Counters kept by a hook (middleware, subscriber, Sequelize hooks, process audit). */
export interface HookStats {
  /** Events handed to the client. */
  recorded: number;
  /** Events that could not be recorded: the hook's own code failed, or `record()` threw or rejected (`fail` mode). Never propagated to the app. */
  failed: number;
  /** Requests or writes not audited because include/exclude rules skipped them. */
  skipped: number;
  /** ORM events dropped because their transaction rolled back. */
  discarded: number;
}

export function createHookStats(): HookStats {
  return { recorded: 0, failed: 0, skipped: 0, discarded: 0 };
}

/** Where a hook reports its own failures: counted always, logged when a logger is given. */
export interface HookSink {
  stats: HookStats;
  logger?: AuditLogger;
}

export function hookFailed(sink: HookSink, err: unknown, what: string): void {
  sink.stats.failed++;
  try {
    sink.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, `audit hook failed: ${what}`);
  } catch {
    // A broken logger must not break the app either.
  }
}

/**
 * Fire-and-forget `client.record()`: never throws, never rejects, never waits
 * (in `block` mode the returned promise is not awaited, so the app is not held
 * up; the event still waits for room in the background).
 */
export function safeRecord(client: AuditRecorder, input: AuditEventInput, sink: HookSink): void {
  try {
    const pending = client.record(input);
    sink.stats.recorded++;
    if (pending && typeof pending.then === 'function') {
      pending.then(undefined, (err: unknown) => hookFailed(sink, err, `record ${input.objectType}:${String(input.objectId)}`));
    }
  } catch (err) {
    hookFailed(sink, err, `record ${input.objectType}:${String(input.objectId)}`);
  }
}

/** Runs `fn`, counting and swallowing anything it throws. */
export function guard<T>(sink: HookSink, what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    hookFailed(sink, err, what);
    return undefined;
  }
}
