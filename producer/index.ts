export * from './client';
export * from './context';
export * from './errors';
export * from './build-record';
export { DEFAULT_MASKED_FIELDS, MASK, maskValue, fieldMatcher } from './mask';
export { TRUNCATED_MARKER_KEY } from './truncate';
export type { AuditRecord, AuditAction, KnownAction } from '../schemas';
