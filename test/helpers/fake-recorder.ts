import {
  DEFAULT_MASKED_FIELDS,
  buildRecord,
  currentAuditContext,
  fieldMatcher,
  type AuditEventInput,
  type AuditRecord,
  type AuditRecorder,
} from '../../producer';

/** Builds records exactly as the client would (context, masking), without Kafka. */
export class FakeRecorder implements AuditRecorder {
  readonly records: AuditRecord[] = [];
  /** When set, `record` rejects like a client whose buffer is full. */
  fail = false;

  record(input: AuditEventInput): Promise<void> {
    if (this.fail) return Promise.reject(new Error('buffer full'));
    this.records.push(buildRecord(input, currentAuditContext(), { sourceService: 'unit', isSensitive: fieldMatcher(DEFAULT_MASKED_FIELDS) }));
    return Promise.resolve();
  }
}
