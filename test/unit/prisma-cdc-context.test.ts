/**
 * prismaCdcContext against a recording fake driver adapter: which statement goes
 * on which connection, in which order (the real adapter and PostgreSQL are in
 * test/integration/prisma.test.ts).
 */
import { prismaCdcContext, type PrismaAdapterTransaction, type PrismaSqlAdapter, type PrismaSqlQuery } from '../../producer/cdc-context/prisma';
import { runWithAuditContext } from '../../producer';

class FakeAdapter implements PrismaSqlAdapter {
  readonly provider = 'postgres';
  readonly log: string[] = [];
  failOn: RegExp | null = null;
  private next = 0;
  private run(where: string, q: PrismaSqlQuery): void {
    this.log.push(`${where}: ${q.sql.startsWith('SELECT set_config') ? '<context>' : q.sql}`);
    if (this.failOn?.test(q.sql)) throw new Error(`failed: ${q.sql}`);
  }
  async queryRaw(q: PrismaSqlQuery): Promise<unknown> {
    this.run('pool', q);
    return { rows: [] };
  }
  async executeRaw(q: PrismaSqlQuery): Promise<number> {
    this.run('pool', q);
    return 1;
  }
  async startTransaction(): Promise<PrismaAdapterTransaction> {
    const name = `tx${++this.next}`;
    this.log.push(`${name}: BEGIN`);
    return {
      options: { usePhantomQuery: false },
      queryRaw: async (q) => (this.run(name, q), { rows: [] }),
      executeRaw: async (q) => (this.run(name, q), 1),
      commit: async () => void this.log.push(`${name}: released`),
      rollback: async () => void this.log.push(`${name}: released`),
    };
  }
}

function setup() {
  const adapter = new FakeAdapter();
  const factory = { provider: 'postgres', adapterName: 'fake', connect: async () => adapter };
  return { adapter, factory: prismaCdcContext(factory) };
}
const q = (sql: string): PrismaSqlQuery => ({ sql, args: [], argTypes: [] });
const CTX = { actorId: 'alice', requestId: 'req-1' };

describe('prismaCdcContext', () => {
  it('sends the context on the transaction itself, right after BEGIN, before any write', async () => {
    const { adapter, factory } = setup();
    const conn = await factory.connect();
    await runWithAuditContext(CTX, async () => {
      const tx = await conn.startTransaction();
      await tx.executeRaw(q('UPDATE t SET a = 1'));
    });
    expect(adapter.log).toEqual(['tx1: BEGIN', 'tx1: <context>', 'tx1: UPDATE t SET a = 1']);
  });

  it('adds nothing without a context, and leaves reads alone', async () => {
    const { adapter, factory } = setup();
    const conn = await factory.connect();
    const tx = await conn.startTransaction();
    await tx.queryRaw(q('SELECT 1'));
    await conn.queryRaw(q('UPDATE t SET a = 2'));
    await runWithAuditContext(CTX, () => conn.queryRaw(q('SELECT * FROM t')));
    expect(adapter.log).toEqual(['tx1: BEGIN', 'tx1: SELECT 1', 'pool: UPDATE t SET a = 2', 'pool: SELECT * FROM t']);
  });

  it('runs a standalone write with a context in a transaction of its own that commits (or rolls back on failure)', async () => {
    const { adapter, factory } = setup();
    const conn = await factory.connect();
    await runWithAuditContext(CTX, () => conn.queryRaw(q('INSERT INTO t VALUES (1) RETURNING id')));
    adapter.failOn = /^DELETE/;
    await expect(runWithAuditContext(CTX, () => conn.executeRaw(q('DELETE FROM t')))).rejects.toThrow('failed: DELETE FROM t');
    expect(adapter.log).toEqual([
      'tx1: BEGIN',
      'tx1: <context>',
      'tx1: INSERT INTO t VALUES (1) RETURNING id',
      'tx1: COMMIT',
      'tx1: released',
      'tx2: BEGIN',
      'tx2: <context>',
      'tx2: DELETE FROM t',
      'tx2: ROLLBACK',
      'tx2: released',
    ]);
  });

  it('leaves standalone writes alone with wrapStandaloneWrites: false', async () => {
    const adapter = new FakeAdapter();
    const conn = await prismaCdcContext({ provider: 'postgres', connect: async () => adapter }, { wrapStandaloneWrites: false }).connect();
    await runWithAuditContext(CTX, () => conn.executeRaw(q('UPDATE t SET a = 3')));
    expect(adapter.log).toEqual(['pool: UPDATE t SET a = 3']);
  });

  it('ends the transaction and releases its connection when the context statement fails', async () => {
    const { adapter, factory } = setup();
    const conn = await factory.connect();
    adapter.failOn = /^SELECT set_config/;
    await expect(runWithAuditContext(CTX, () => conn.startTransaction())).rejects.toThrow(/failed/);
    expect(adapter.log).toEqual(['tx1: BEGIN', 'tx1: <context>', 'tx1: ROLLBACK', 'tx1: released']);
  });

  it('passes the rest of the adapter through, and refuses a non-PostgreSQL adapter', async () => {
    const { factory } = setup();
    expect((factory as { adapterName?: string }).adapterName).toBe('fake');
    expect((await factory.connect()).provider).toBe('postgres');
    expect(() => prismaCdcContext({ provider: 'sqlite', connect: async () => new FakeAdapter() })).toThrow(/PostgreSQL/);
  });
});
