/** `audit-pipeline/express`: the Express middleware (needs `express`, and `@types/express` for TypeScript). */
export * from '../http/express';
export type { AuditHttpOptions, ActorInfo, ActorExtractor, AuthDetectionOptions, CaptureOptions } from '../http/core';
export type { AuditRecorder, HookStats } from '../http/emit';
