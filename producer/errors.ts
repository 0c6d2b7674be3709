/**
 * An event `record()` refuses: a required field is missing, or the record would
 * fail the consumer's checks (schemas/validate.ts) and be dead-lettered instead of
 * stored. `problems` lists every reason; `object` is `type:id` when known. Counted
 * in `stats().invalid`; `record()` rejects with it in `fail` mode only.
 */
export class AuditInputError extends Error {
  readonly problems: readonly string[];
  constructor(
    message: string,
    problems: readonly string[] = [message],
    readonly object?: string,
  ) {
    super(message);
    this.name = 'AuditInputError';
    this.problems = problems;
  }
}

/** Raised in `fail` mode when an event cannot be accepted (buffer full, client closed). */
export class AuditUnavailableError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'AuditUnavailableError';
  }
}

/** The client was configured with something this process cannot run (thrown by the constructor, at the app's start). */
export class AuditConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditConfigError';
  }
}
