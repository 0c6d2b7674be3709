import type { Sequelize, Transaction } from 'sequelize';
import { auditContextStatement } from './statement';

/**
 * `sequelize.transaction(fn)` whose row changes audit-cdc records with the
 * current AuditContext. Sequelize has no hook at transaction start, so this is
 * a wrapper: use it where the app opens its transactions.
 */
export function sequelizeAuditTransaction<T>(sequelize: Sequelize, fn: (t: Transaction) => Promise<T>): Promise<T> {
  return sequelize.transaction(async (t) => {
    const stmt = auditContextStatement();
    if (stmt) await sequelize.query(stmt, { transaction: t });
    return fn(t);
  });
}
