/**
 * `audit-pipeline/nestjs`: the NestJS module (the client as a provider, the
 * request interceptor, `@Audited()`); needs `@nestjs/common`, `@nestjs/core`,
 * `rxjs` and `reflect-metadata`. Express and Fastify adapters.
 */
export * from '../nestjs';
export type { AuditHttpOptions, ActorInfo, ActorExtractor, CaptureOptions } from '../http/core';
export type { AuditRecorder, HookStats } from '../http/emit';
