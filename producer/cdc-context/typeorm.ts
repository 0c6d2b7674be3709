import type { DataSource, EntitySubscriberInterface, TransactionStartEvent } from 'typeorm';
import { auditContextStatement } from './statement';

/**
 * TypeORM subscriber that stitches the current AuditContext onto every
 * transaction TypeORM opens (`save()`, `remove()`, `dataSource.transaction()`),
 * right after START TRANSACTION and before any write. Writes TypeORM runs
 * outside a transaction (QueryBuilder `execute()`, `repository.update()`) are
 * still captured by audit-cdc, with the role context instead: wrap them in
 * `dataSource.transaction()` to carry the request's context.
 */
export class CdcContextSubscriber implements EntitySubscriberInterface {
  async afterTransactionStart(event: TransactionStartEvent): Promise<void> {
    // Savepoints (nested transactions) share the outer transaction's context.
    if (((event.queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1) > 1) return;
    const stmt = auditContextStatement();
    if (stmt) await event.queryRunner.query(stmt);
  }
}

/** Registers the subscriber on an initialized DataSource. */
export function attachTypeormCdcContext(dataSource: DataSource): CdcContextSubscriber {
  const subscriber = new CdcContextSubscriber();
  dataSource.subscribers.push(subscriber);
  return subscriber;
}
