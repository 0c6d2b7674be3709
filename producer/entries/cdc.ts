/**
 * `audit-pipeline/cdc`: the app side of PostgreSQL change capture, which stitches
 * the request's AuditContext onto the app's transactions so that audit-cdc
 * attributes every row change (cdc/README.md). The service itself (audit-cdc,
 * AuditCdcService) is in the services package, `@audit-pipeline/services/cdc`.
 */
export { auditContextStatement } from '../cdc-context/statement';
export { beginWithAuditContext, capturedTables, emitAuditContext, withAuditTransaction } from '../cdc-context/pg';
export { CdcContextSubscriber, attachTypeormCdcContext } from '../cdc-context/typeorm';
export { sequelizeAuditTransaction } from '../cdc-context/sequelize';
export { prismaCdcContext, type PrismaCdcContextOptions } from '../cdc-context/prisma';
export { CONTEXT_PREFIX, CONTEXT_SETTING } from '../cdc-context/context-message';
