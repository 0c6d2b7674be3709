/**
 * Sequelize hooks against the real PostgreSQL and Kafka, bulk operations included.
 */
import { randomUUID } from 'node:crypto';
import { DataTypes, Op, Sequelize, type ModelStatic, type Model } from 'sequelize';
import { AuditClient, auditSequelize, MASK, runWithAuditContext, type SequelizeAuditHandle } from '../../producer';
import type { AuditRecord } from '../../schemas';
import { KAFKA_BROKERS } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';
import { PG_URL } from '../helpers/cdc';

jest.setTimeout(90_000);

const suffix = randomUUID().slice(0, 8);
const topic = `test.producer-sequelize-${randomUUID()}`;
const reader = new TopicReader(topic);
let client: AuditClient;

/** One Sequelize instance with its own tables (`<prefix>_...`) and audit hooks. */
function defineModels(sequelize: Sequelize, prefix: string) {
  const Account = sequelize.define(
    'Account',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      email: { type: DataTypes.STRING, allowNull: false },
      plan: { type: DataTypes.STRING, allowNull: false },
      balance: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      apiToken: { type: DataTypes.STRING, field: 'api_token' },
      passwordHash: { type: DataTypes.STRING, field: 'password_hash' },
      label: { type: DataTypes.VIRTUAL, get() { return 'virtual'; } },
    },
    { tableName: `${prefix}_accounts` },
  );
  const Doc = sequelize.define(
    'Doc',
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, title: DataTypes.STRING },
    { tableName: `${prefix}_docs`, paranoid: true },
  );
  const Membership = sequelize.define(
    'Membership',
    { orgId: { type: DataTypes.INTEGER, primaryKey: true }, userId: { type: DataTypes.INTEGER, primaryKey: true }, role: DataTypes.STRING },
    { tableName: `${prefix}_memberships`, timestamps: false },
  );
  const Log = sequelize.define('Log', { line: DataTypes.STRING }, { tableName: `${prefix}_logs`, timestamps: false });
  return { Account, Doc, Membership, Log };
}

let seq: Sequelize;
let models: ReturnType<typeof defineModels>;
let handle: SequelizeAuditHandle;
const prefix = `it_sq_${suffix}`;

beforeAll(async () => {
  await reader.start();
  client = new AuditClient({ brokers: [KAFKA_BROKERS], topic, sourceService: 'sequelize-it', lingerMs: 5 });
  seq = new Sequelize(PG_URL, { logging: false });
  models = defineModels(seq, prefix);
  await seq.sync();
  handle = auditSequelize(seq, client, {
    exclude: ['Log'],
    excludeFields: ['updatedAt', 'createdAt'],
    models: { Account: { objectType: 'account', excludeFields: ['passwordHash'] } },
  });
});

afterAll(async () => {
  if (seq) {
    for (const m of Object.values(models)) await (m as ModelStatic<Model>).drop().catch(() => undefined);
    await seq.close();
  }
  await client?.close();
  await reader.stop();
});

const ofAccount = (id: number | string) => (r: AuditRecord) => r.object_type === 'account' && r.object_id === String(id);
const accountValues = (email: string, extra: Record<string, unknown> = {}) => ({ email, plan: 'free', balance: 0, apiToken: 'tok-secret', passwordHash: 'bcrypt$hash', ...extra });

describe('Sequelize hooks -> Kafka', () => {
  it('records create, instance update with only the changed fields, and destroy, with the context actor', async () => {
    const { Account } = models;
    const acc = await runWithAuditContext({ actorId: 'admin-1', requestId: 'req-sq' }, () => Account.create(accountValues('a@x.io')));
    await runWithAuditContext({ actorId: 'admin-2' }, async () => {
      await new Promise((r) => setTimeout(r, 2));
      await acc.update({ plan: 'pro', balance: 10, passwordHash: 'bcrypt$new' });
    });
    await runWithAuditContext({ actorId: 'admin-3' }, () => acc.destroy());
    const id = acc.get('id') as number;
    const events = await reader.waitFor(ofAccount(id), 3);
    expect(events.map((e) => [e.action, e.actor_id])).toEqual([
      ['create', 'admin-1'],
      ['update', 'admin-2'],
      ['delete', 'admin-3'],
    ]);
    const [create, update, del] = events as [AuditRecord, AuditRecord, AuditRecord];
    expect(create.request_id).toBe('req-sq');
    expect(JSON.parse(create.after!)).toEqual({ id, email: 'a@x.io', plan: 'free', balance: 0, apiToken: MASK });
    expect(update.changes).toEqual({ plan: { old: '"free"', new: '"pro"' }, balance: { old: '0', new: '10' } });
    expect(JSON.parse(update.before!)).toMatchObject({ plan: 'free', balance: 0 });
    expect(JSON.parse(update.after!)).toMatchObject({ plan: 'pro', balance: 10 });
    expect(JSON.parse(del.before!)).toMatchObject({ id, plan: 'pro' });
    const text = JSON.stringify(events);
    expect(text).not.toContain('passwordHash');
    expect(text).not.toContain('bcrypt');
    expect(text).not.toContain('tok-secret');
    expect(text).not.toContain('virtual');
    expect(text).not.toContain('updatedAt');
  });

  it('bulk create, bulk update and bulk destroy give one event per row, with before-images', async () => {
    const { Account } = models;
    const rows = await Account.bulkCreate([accountValues('b1@x.io'), accountValues('b2@x.io'), accountValues('b3@x.io', { plan: 'pro' })]);
    const ids = rows.map((r) => r.get('id') as number);
    expect(ids.every((id) => typeof id === 'number')).toBe(true);
    const [count] = await Account.update({ plan: 'team' }, { where: { id: { [Op.in]: ids }, plan: 'free' } });
    expect(count).toBe(2);
    const destroyed = await Account.destroy({ where: { id: ids } });
    expect(destroyed).toBe(3);

    const creates = await reader.waitFor((r) => r.object_type === 'account' && ids.map(String).includes(r.object_id) && r.action === 'create', 3);
    expect(creates.map((c) => JSON.parse(c.after!).email).sort()).toEqual(['b1@x.io', 'b2@x.io', 'b3@x.io']);
    const updates = await reader.waitFor((r) => r.object_type === 'account' && ids.map(String).includes(r.object_id) && r.action === 'update', 2);
    expect(updates.map((u) => u.object_id).sort()).toEqual([String(ids[0]), String(ids[1])].sort());
    for (const u of updates) expect(u.changes).toEqual({ plan: { old: '"free"', new: '"team"' } });
    const deletes = await reader.waitFor((r) => r.object_type === 'account' && ids.map(String).includes(r.object_id) && r.action === 'delete', 3);
    expect(deletes.map((d) => JSON.parse(d.before!).plan).sort()).toEqual(['pro', 'team', 'team']);
  });

  it('paranoid models: destroy is a soft delete, restore is recorded; composite keys are joined; excluded models skipped', async () => {
    const { Doc, Membership, Log } = models;
    const doc = await Doc.create({ title: 'Spec' });
    await doc.destroy();
    await doc.restore();
    await Membership.create({ orgId: 3, userId: 9, role: 'owner' });
    await Membership.update({ role: 'admin' }, { where: { orgId: 3 } });
    await Log.create({ line: 'noise' });
    const docEvents = await reader.waitFor((r) => r.object_type === `${prefix}_docs` && r.object_id === String(doc.get('id')), 3);
    expect(docEvents.map((e) => e.action)).toEqual(['create', 'soft_delete', 'restore']);
    const mem = await reader.waitFor((r) => r.object_type === `${prefix}_memberships`, 2);
    expect(mem.map((m) => [m.action, m.object_id])).toEqual([
      ['create', '3:9'],
      ['update', '3:9'],
    ]);
    expect(mem[1]!.changes).toEqual({ role: { old: '"owner"', new: '"admin"' } });
    expect(await reader.settled(client, (r) => r.object_type === `${prefix}_logs`)).toEqual([]);
    expect(handle.stats.skipped).toBeGreaterThanOrEqual(1);
  });

  it('records on commit only; nothing for a rolled back transaction', async () => {
    const { Account } = models;
    let rolledBack = 0;
    await expect(
      seq.transaction(async (t) => {
        const a = await Account.create(accountValues('rb@x.io'), { transaction: t });
        rolledBack = a.get('id') as number;
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const id = await seq.transaction(async (t) => {
      const a = await Account.create(accountValues('tx@x.io'), { transaction: t });
      await Account.update({ balance: 5 }, { where: { id: a.get('id') as number }, transaction: t });
      await client.flush(5000);
      expect(reader.records.some(ofAccount(a.get('id') as number))).toBe(false);
      return a.get('id') as number;
    });
    const events = await reader.waitFor(ofAccount(id), 2);
    expect(events.map((e) => e.action)).toEqual(['create', 'update']);
    expect(await reader.settled(client, ofAccount(rolledBack))).toEqual([]);
  });

  it('upsert is recorded (PostgreSQL does not say whether it inserted or updated: action upsert); truncate is one statement event', async () => {
    const { Membership } = models;
    await Membership.upsert({ orgId: 4, userId: 1, role: 'viewer' });
    await Membership.upsert({ orgId: 4, userId: 1, role: 'editor' });
    const ev = await reader.waitFor((r) => r.object_type === `${prefix}_memberships` && r.object_id === '4:1', 2);
    expect(ev.map((e) => [e.action, JSON.parse(e.after!).role])).toEqual([
      ['upsert', 'viewer'],
      ['upsert', 'editor'],
    ]);
    expect(ev[0]!.metadata['orm.before_image']).toBe('unavailable');
    // TRUNCATE: one statement event, the table is not loaded first.
    await Membership.destroy({ truncate: true });
    const [trunc] = await reader.waitFor((r) => r.object_type === `${prefix}_memberships` && r.object_id === '*' && r.action === 'delete');
    expect(trunc!.metadata).toMatchObject({ 'orm.truncate': 'true', 'orm.before_image': 'unavailable' });
  });

  it("statement mode: one event per bulk statement with the criteria, no rows loaded; a failing client never breaks the write", async () => {
    const other = new Sequelize(PG_URL, { logging: false });
    const m = defineModels(other, `${prefix}_st`);
    await other.sync();
    const h = auditSequelize(other, client, { bulk: 'statement', include: ['Account'] });
    // Both in statement mode: a `rows` handle on the same instance would turn on individualHooks for both.
    const broken = auditSequelize(other, { record: () => Promise.reject(new Error('audit unavailable')) }, { bulk: 'statement', include: ['Account'] });
    try {
      await m.Account.bulkCreate([accountValues('s1@x.io'), accountValues('s2@x.io')]);
      await m.Account.update({ plan: 'gold' }, { where: { balance: { [Op.gte]: 0 }, plan: 'free' } });
      await m.Account.destroy({ where: { email: 's1@x.io' } });
      const type = `${prefix}_st_accounts`;
      const stmt = await reader.waitFor((r) => r.object_type === type && r.object_id === '*', 2);
      expect(stmt.map((s) => s.action)).toEqual(['update', 'delete']);
      expect(JSON.parse(stmt[0]!.metadata['orm.where']!)).toEqual({ balance: { $gte: 0 }, plan: 'free' });
      expect(JSON.parse(stmt[0]!.after!)).toMatchObject({ plan: 'gold' });
      expect(JSON.parse(stmt[1]!.metadata['orm.where']!)).toEqual({ email: 's1@x.io' });
      expect(stmt.every((s) => s.metadata['orm.before_image'] === 'unavailable')).toBe(true);
      expect(await m.Account.count()).toBe(1);
      expect(broken.stats.failed).toBe(4); // 2 creates + 2 statements, each counted, none thrown
      expect(h.stats.failed).toBe(0);
    } finally {
      h.detach();
      broken.detach();
      for (const model of Object.values(m)) await (model as ModelStatic<Model>).drop().catch(() => undefined);
      await other.close();
    }
  });
});
