export class AuditInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditInputError';
  }
}

/** Raised in `fail` mode when an event cannot be accepted (buffer full, client closed). */
export class AuditUnavailableError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'AuditUnavailableError';
  }
}
