import { randomUUID } from 'node:crypto';
import type { AuditEventInput } from './build-record';
import { AuditClient, type AuditLogger } from './client';
import { runWithAuditContext } from './context';
import { normalizeError } from './http/core';
import { type AuditRecorder, createHookStats, type HookSink, type HookStats, safeRecord } from './http/emit';

export interface ProcessOptions {
  /** Object the process works on (default `process`). */
  objectType?: string;
  /** Its id (default: the run id). */
  objectId?: string | number;
  /** Id of this run (default: a new UUID); stored as `metadata["process.id"]`. */
  runId?: string;
  /** Metadata added to every event of the run. */
  metadata?: Record<string, string | number | boolean | null | undefined>;
  /** Also record a `process_start` event (default false). */
  recordStart?: boolean;
  stats?: HookStats;
  logger?: AuditLogger;
}

export type StepStatus = 'success' | 'failure';

export interface StepOutcome {
  name: string;
  index: number;
  status: StepStatus;
  durationMs: number;
  error?: string;
}

export interface ProcessSummary {
  name: string;
  runId: string;
  status: StepStatus;
  durationMs: number;
  steps: readonly StepOutcome[];
  failedSteps: number;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * One run of a multi-step business process. Each `step()` records a
 * `process_step` event (success or failure, duration, error), `end()`/`fail()`
 * a `process_end` event with the outcome. Events made inside a step (ORM
 * hooks, explicit calls) carry `metadata["process.name"|"process.id"|"process.step"]`.
 */
export class ProcessAudit {
  readonly runId: string;
  readonly steps: StepOutcome[] = [];
  private readonly objectType: string;
  private readonly objectId: string | number;
  private readonly startedHr = process.hrtime.bigint();
  private readonly sink: HookSink;
  private summary: ProcessSummary | null = null;

  constructor(
    private readonly client: AuditRecorder,
    readonly name: string,
    private readonly options: ProcessOptions = {},
  ) {
    this.runId = options.runId ?? randomUUID();
    this.objectType = options.objectType ?? 'process';
    this.objectId = options.objectId ?? this.runId;
    this.sink = { stats: options.stats ?? createHookStats(), ...(options.logger ? { logger: options.logger } : {}) };
    if (options.recordStart) this.emit('process_start', { 'process.status': 'started' });
  }

  get stats(): HookStats {
    return this.sink.stats;
  }

  /** Whether `end()` or `fail()` was called. */
  get ended(): boolean {
    return this.summary !== null;
  }

  private emit(action: string, metadata: AuditEventInput['metadata'], extra: Partial<AuditEventInput> = {}): void {
    safeRecord(
      this.client,
      {
        objectType: this.objectType,
        objectId: this.objectId,
        action,
        ...extra,
        metadata: { ...this.options.metadata, 'process.name': this.name, 'process.id': this.runId, ...metadata },
      },
      this.sink,
    );
  }

  /**
   * Runs one step and records its outcome. Returns what `fn` returns (awaited);
   * rethrows what it throws, after recording the failure. Steps may run one
   * after another or concurrently.
   */
  async step<T>(name: string, fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
    const index = this.steps.length + 1;
    const started = process.hrtime.bigint();
    const stepMeta = { 'process.name': this.name, 'process.id': this.runId, 'process.step': name };
    const done = (status: StepStatus, err?: unknown): void => {
      const durationMs = Math.round((Number(process.hrtime.bigint() - started) / 1e6) * 1000) / 1000;
      const outcome: StepOutcome = { name, index, status, durationMs, ...(err !== undefined ? { error: errorText(err) } : {}) };
      this.steps.push(outcome);
      const error = err !== undefined ? normalizeError(err) : null;
      this.emit(
        'process_step',
        { 'process.step': name, 'process.step_index': index, 'process.status': status },
        { durationMs, ...(error ? { error } : {}) },
      );
    };
    let result: Awaited<T>;
    try {
      result = await runWithAuditContext({ metadata: stepMeta }, async () => await fn());
    } catch (err) {
      done('failure', err ?? new Error('step failed'));
      throw err;
    }
    done('success');
    return result;
  }

  private finish(status: StepStatus, err: unknown, metadata: AuditEventInput['metadata']): ProcessSummary {
    if (this.summary) return this.summary;
    const durationMs = Math.round((Number(process.hrtime.bigint() - this.startedHr) / 1e6) * 1000) / 1000;
    const failedSteps = this.steps.filter((s) => s.status === 'failure').length;
    this.summary = { name: this.name, runId: this.runId, status, durationMs, steps: [...this.steps], failedSteps };
    const error = status === 'failure' ? normalizeError(err ?? new Error('process failed')) : null;
    this.emit(
      'process_end',
      { ...metadata, 'process.status': status, 'process.steps': this.steps.length, 'process.failed_steps': failedSteps },
      { durationMs, ...(error ? { error } : {}) },
    );
    return this.summary;
  }

  /** Records the successful end of the run (once; later calls return the same summary). */
  end(metadata?: AuditEventInput['metadata']): ProcessSummary {
    return this.finish('success', undefined, metadata);
  }

  /** Records the failed end of the run with its error (once). */
  fail(err?: unknown, metadata?: AuditEventInput['metadata']): ProcessSummary {
    return this.finish('failure', err, metadata);
  }
}

/** Starts auditing one run of a process: `auditProcess(audit, 'invoice-export', { objectType: 'invoice', objectId: 42 })`. */
export function auditProcess(client: AuditRecorder, name: string, options: ProcessOptions = {}): ProcessAudit {
  return new ProcessAudit(client, name, options);
}

declare module './client' {
  interface AuditClient {
    /** Starts auditing one run of a process (see `ProcessAudit`). */
    process(name: string, options?: ProcessOptions): ProcessAudit;
  }
}

AuditClient.prototype.process = function (this: AuditClient, name: string, options?: ProcessOptions): ProcessAudit {
  return new ProcessAudit(this, name, options);
};
