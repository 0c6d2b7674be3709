/** `audit-pipeline/typeorm`: the TypeORM entity subscriber (needs `typeorm`). */
export * from '../orm/typeorm';
export type { OrmAuditOptions, OrmModelOptions } from '../orm/common';
export type { AuditRecorder, HookStats } from '../http/emit';
