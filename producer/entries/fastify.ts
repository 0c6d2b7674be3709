/** `audit-pipeline/fastify`: the Fastify plugin (needs `fastify`). */
export * from '../http/fastify';
export type { AuditHttpOptions, ActorInfo, ActorExtractor, AuthDetectionOptions, CaptureOptions } from '../http/core';
export type { AuditRecorder, HookStats } from '../http/emit';
