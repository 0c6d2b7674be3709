/**
 * App side of PostgreSQL change capture: stitch the request's AuditContext onto
 * its transactions so audit-cdc attributes every row change (cdc/README.md).
 * The service itself is the `audit-cdc` command (cdc/cli.ts).
 */
export { auditContextStatement } from '../producer/cdc-context/statement';
export { beginWithAuditContext, capturedTables, emitAuditContext, withAuditTransaction } from '../producer/cdc-context/pg';
export { CdcContextSubscriber, attachTypeormCdcContext } from '../producer/cdc-context/typeorm';
export { sequelizeAuditTransaction } from '../producer/cdc-context/sequelize';
export { prismaCdcContext, type PrismaCdcContextOptions } from '../producer/cdc-context/prisma';
export { CONTEXT_PREFIX, CONTEXT_SETTING } from '../producer/cdc-context/context-message';
export { changeEventId } from './event-id';
export { AuditCdcService, CdcReplicationError } from './service';
export { CdcSetupError } from './setup';
