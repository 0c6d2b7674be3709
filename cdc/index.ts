/**
 * App side of PostgreSQL change capture: stitch the request's AuditContext onto
 * its transactions so audit-cdc attributes every row change (cdc/README.md).
 * The service itself is the `audit-cdc` command (cdc/cli.ts).
 */
export { auditContextStatement } from './stitch/statement';
export { beginWithAuditContext, capturedTables, emitAuditContext, withAuditTransaction } from './stitch/pg';
export { CdcContextSubscriber, attachTypeormCdcContext } from './stitch/typeorm';
export { sequelizeAuditTransaction } from './stitch/sequelize';
export { prismaCdcContext, type PrismaCdcContextOptions } from './stitch/prisma';
export { CONTEXT_PREFIX, CONTEXT_SETTING } from './context-message';
export { changeEventId } from './event-id';
export { AuditCdcService, CdcReplicationError } from './service';
export { CdcSetupError } from './setup';
