/** A storage operation failed; carries what was attempted where, and the cause. */
export class StorageError extends Error {
  constructor(
    readonly op: string,
    readonly location: string,
    override readonly cause: unknown,
    readonly code?: string,
  ) {
    super(`${op} ${location} failed: ${describe(cause)}`);
    this.name = 'StorageError';
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: string; Code?: string }).code ?? (cause as { Code?: string }).Code;
    const msg = cause.message || cause.name;
    return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
  }
  return String(cause);
}
