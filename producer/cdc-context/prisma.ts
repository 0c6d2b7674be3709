import { auditContextStatement } from './statement';

/*
 * Structural copies of the parts of Prisma's driver adapter interface
 * (@prisma/driver-adapter-utils) this module uses, so that its types do not
 * depend on a package the app may not have installed directly.
 */

/** A statement as Prisma hands it to a driver adapter. */
export interface PrismaSqlQuery {
  sql: string;
  args: unknown[];
  argTypes: unknown[];
}

/** The part of a driver adapter transaction (`Transaction`) used here. */
export interface PrismaAdapterTransaction {
  readonly options: { usePhantomQuery: boolean };
  queryRaw(query: PrismaSqlQuery): Promise<unknown>;
  executeRaw(query: PrismaSqlQuery): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** The part of a connected driver adapter (`SqlDriverAdapter`) used here. */
export interface PrismaSqlAdapter {
  readonly provider: string;
  queryRaw(query: PrismaSqlQuery): Promise<unknown>;
  executeRaw(query: PrismaSqlQuery): Promise<number>;
  startTransaction(isolationLevel?: never): Promise<PrismaAdapterTransaction>;
}

/** A driver adapter factory such as `new PrismaPg(pool)` (`SqlDriverAdapterFactory`). */
export interface PrismaAdapterFactory {
  readonly provider: string;
  connect(): Promise<PrismaSqlAdapter>;
}

export interface PrismaCdcContextOptions {
  /**
   * Writes Prisma sends outside a transaction (a single `update()`, `create()`,
   * `$executeRaw`) are run in a transaction of their own that carries the
   * context, when there is one (default true). With false they are recorded by
   * audit-cdc with the database role as actor, like any write without context.
   */
  wrapStandaloneWrites?: boolean;
}

const WRITE = /^\s*(?:INSERT|UPDATE|DELETE|MERGE|WITH)\b/i;

function statement(sql: string): PrismaSqlQuery {
  return { sql, args: [], argTypes: [] };
}

/** Commits or rolls back as Prisma's own transaction manager does: the statement, then the adapter's hook (which releases the connection). */
async function end(tx: PrismaAdapterTransaction, commit: boolean): Promise<void> {
  if (!tx.options.usePhantomQuery) await tx.executeRaw(statement(commit ? 'COMMIT' : 'ROLLBACK'));
  await (commit ? tx.commit() : tx.rollback());
}

/** Runs the context statement on a transaction that has just begun: on its own connection, before any write. */
async function stitch(tx: PrismaAdapterTransaction): Promise<PrismaAdapterTransaction> {
  const sql = auditContextStatement();
  if (sql) {
    try {
      await tx.executeRaw(statement(sql));
    } catch (err) {
      // The transaction is unusable after a failed statement: end it and release its connection.
      await end(tx, false).catch(() => undefined);
      throw err;
    }
  }
  return tx;
}

function wrapAdapter(adapter: PrismaSqlAdapter, options: PrismaCdcContextOptions): PrismaSqlAdapter {
  const wrapStandalone = options.wrapStandaloneWrites !== false;
  const standalone = async <R>(query: PrismaSqlQuery, run: (q: PrismaSqlQuery) => Promise<R>, runIn: (tx: PrismaAdapterTransaction) => Promise<R>): Promise<R> => {
    if (!wrapStandalone || !WRITE.test(query.sql) || auditContextStatement() === null) return run(query);
    const tx = await stitch(await adapter.startTransaction());
    let result: R;
    try {
      result = await runIn(tx);
    } catch (err) {
      await end(tx, false).catch(() => undefined);
      throw err;
    }
    await end(tx, true);
    return result;
  };
  return new Proxy(adapter, {
    get(target, prop, receiver) {
      switch (prop) {
        case 'startTransaction':
          return async (isolationLevel?: never) => stitch(await target.startTransaction(isolationLevel));
        case 'queryRaw':
          return (query: PrismaSqlQuery) =>
            standalone(
              query,
              (q) => target.queryRaw(q),
              (tx) => tx.queryRaw(query),
            );
        case 'executeRaw':
          return (query: PrismaSqlQuery) =>
            standalone(
              query,
              (q) => target.executeRaw(q),
              (tx) => tx.executeRaw(query),
            );
        default: {
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        }
      }
    },
  });
}

/**
 * Wraps a Prisma driver adapter (`new PrismaPg(pool)`) so that every
 * transaction Prisma opens on it — interactive `$transaction(async (tx) => …)`,
 * batch `$transaction([...])`, and the ones Prisma opens itself for nested
 * writes — starts with the current AuditContext as a transactional logical
 * decoding message, on the transaction's own connection, before any write:
 * audit-cdc attaches it to every row change of that transaction. Writes made
 * outside a transaction get a transaction of their own when a context is set
 * (see `wrapStandaloneWrites`).
 *
 * This lives at the driver adapter because a Prisma client extension cannot
 * reach the connection of an interactive transaction: a query extension that
 * runs its own `$executeRaw` would use another connection (or, inside an
 * interactive transaction, nest transactions, which Prisma refuses).
 *
 * ```ts
 * const prisma = new PrismaClient({ adapter: prismaCdcContext(new PrismaPg(pool)) });
 * ```
 */
export function prismaCdcContext<F extends PrismaAdapterFactory>(factory: F, options: PrismaCdcContextOptions = {}): F {
  if (factory.provider !== 'postgres') throw new TypeError(`prismaCdcContext needs a PostgreSQL driver adapter (got provider "${factory.provider}")`);
  return new Proxy(factory, {
    get(target, prop, receiver) {
      if (prop === 'connect' || prop === 'connectToShadowDb') {
        const connect = Reflect.get(target, prop, receiver) as (() => Promise<PrismaSqlAdapter>) | undefined;
        if (typeof connect !== 'function') return connect;
        // Migrations on the shadow database have nothing to attribute: left as they are.
        if (prop === 'connectToShadowDb') return connect.bind(target);
        return async () => wrapAdapter(await connect.call(target), options);
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
