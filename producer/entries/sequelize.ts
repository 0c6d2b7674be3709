/** `audit-pipeline/sequelize`: the Sequelize (v6) global hooks (needs `sequelize`). */
export * from '../orm/sequelize';
export type { OrmAuditOptions, OrmModelOptions } from '../orm/common';
export type { AuditRecorder, HookStats } from '../http/emit';
