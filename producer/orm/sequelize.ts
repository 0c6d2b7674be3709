import type {
  BulkCreateOptions,
  CreateOptions,
  DestroyOptions,
  InstanceDestroyOptions,
  InstanceRestoreOptions,
  InstanceUpdateOptions,
  Model,
  ModelStatic,
  RestoreOptions,
  Sequelize,
  Transaction,
  UpdateOptions,
  UpsertOptions,
} from 'sequelize';
import type { AuditAction } from '../../schemas';
import type { AuditEventInput } from '../build-record';
import { guard } from '../http/emit';
import type { AuditRecorder, HookStats } from '../http/emit';
import { diffRows, held, type ModelPolicy, OrmAuditor, type OrmAuditOptions, plainValue, type Row } from './common';

export interface SequelizeAuditOptions extends OrmAuditOptions {
  /**
   * Bulk `Model.update()`, `Model.destroy()` and `Model.restore()`:
   * - `rows` (default): turn on `individualHooks`, so Sequelize loads the matching
   *   rows first (one extra SELECT) and each row gets its own event with
   *   before/after/changes;
   * - `statement`: no rows loaded; one event per statement, object id `*`, the
   *   WHERE criteria in `metadata["orm.where"]` and the new values in `after`.
   * A call that already passes `individualHooks: true` always gets per-row events.
   */
  bulk?: 'rows' | 'statement';
}

/** What `auditSequelize` returns: the counters and a way to remove the hooks. */
export interface SequelizeAuditHandle {
  readonly stats: HookStats;
  detach(): void;
}

type AnyModel = Model;
type Options = { transaction?: Transaction | null; individualHooks?: boolean; force?: boolean; where?: unknown; model?: ModelStatic<AnyModel>; attributes?: unknown };

interface RawAttribute {
  field?: string;
  type?: { key?: string } | string;
}

let hookSeq = 0;

function modelOf(instance: AnyModel): ModelStatic<AnyModel> {
  return instance.constructor as ModelStatic<AnyModel>;
}

function tableOf(model: ModelStatic<AnyModel>): string {
  const t = (model as { tableName?: unknown }).tableName;
  return typeof t === 'string' ? t : model.name;
}

function attributesOf(model: ModelStatic<AnyModel>): Record<string, RawAttribute> {
  const m = model as unknown as { getAttributes?: () => Record<string, RawAttribute>; rawAttributes?: Record<string, RawAttribute> };
  return (m.getAttributes ? m.getAttributes() : m.rawAttributes) ?? {};
}

function isVirtual(a: RawAttribute): boolean {
  const key = typeof a.type === 'string' ? a.type : a.type?.key;
  return key === 'VIRTUAL';
}

/** `where` as JSON: Sequelize operators (symbols) become `$op` keys. */
export function whereToJson(where: unknown, depth = 0): unknown {
  if (depth > 20) return '[deep]';
  if (where === null || typeof where !== 'object') return plainValue(where);
  if (where instanceof Date) return where;
  if (Array.isArray(where)) return where.map((w) => whereToJson(w, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key of Reflect.ownKeys(where)) {
    const name = typeof key === 'symbol' ? `$${key.description ?? 'op'}` : key;
    out[name] = whereToJson((where as Record<string | symbol, unknown>)[key], depth + 1);
  }
  const ctor = (where as object).constructor?.name;
  if (Object.keys(out).length === 0 && ctor && ctor !== 'Object') return `[${ctor}]`; // fn(), col(), literal()
  return out;
}

/**
 * Audits every model of a Sequelize instance (v6) with global hooks: `create`,
 * `update` (before/after/changes), `delete`/`soft_delete` (paranoid) and
 * `restore` events, including bulk operations. Events of writes made in a
 * transaction are recorded when it commits (and never if it rolls back). See
 * producer/docs/orm.md for exactly what is and is not captured.
 */
export function auditSequelize(sequelize: Sequelize, client: AuditRecorder, options: SequelizeAuditOptions = {}): SequelizeAuditHandle {
  const auditor = new OrmAuditor(client, options);
  const stats = auditor.stats;
  const sink = auditor.sink;
  const perRowBulk = (options.bulk ?? 'rows') === 'rows';
  const beforeImages = new WeakMap<AnyModel, Row>();
  const hookName = `audit-pipeline-${++hookSeq}`;

  const policyOf = (model: ModelStatic<AnyModel> | undefined): ModelPolicy | null => {
    if (!model) return null;
    const p = auditor.policy(model.name, tableOf(model));
    if (!p.audited) {
      stats.skipped++;
      return null;
    }
    return p;
  };

  const row = (model: ModelStatic<AnyModel>, policy: ModelPolicy, values: Row | undefined | null): Row => {
    const out: Row = {};
    if (!values) return out;
    for (const [name, attr] of Object.entries(attributesOf(model))) {
      if (isVirtual(attr) || policy.isExcludedField(name) || (attr.field !== undefined && policy.isExcludedField(attr.field))) continue;
      const v = values[name];
      if (v !== undefined) out[name] = plainValue(v);
    }
    return out;
  };

  const idOf = (model: ModelStatic<AnyModel>, values: Row | undefined | null): string => {
    const keys = (model as unknown as { primaryKeyAttributes?: string[] }).primaryKeyAttributes ?? [];
    return auditor.objectId(keys.map((k) => values?.[k])) ?? '*';
  };

  const dataOf = (instance: AnyModel): Row => (instance as unknown as { dataValues: Row }).dataValues ?? {};
  const previousOf = (instance: AnyModel): Row => ({ ...((instance as unknown as { _previousDataValues?: Row })._previousDataValues ?? {}) });

  /** Records now, or when the outermost transaction commits (never if it rolls back). */
  const record = (input: AuditEventInput, opts: Options | undefined): void => {
    const e = held(input);
    let t = opts?.transaction ?? null;
    if (auditor.defer && t) {
      while ((t as unknown as { parent?: Transaction }).parent) t = (t as unknown as { parent: Transaction }).parent;
      if (!(t as unknown as { finished?: string }).finished) {
        t.afterCommit(() => auditor.emit(e.input, e.ctx));
        return;
      }
    }
    auditor.emit(e.input, e.ctx);
  };

  const base = (model: ModelStatic<AnyModel>, policy: ModelPolicy, action: AuditAction, objectId: string): AuditEventInput => ({
    objectType: policy.objectType,
    objectId,
    action,
    metadata: { 'orm.entity': model.name, 'orm.source': 'sequelize' },
  });

  const created = (instance: AnyModel, opts: Options | undefined): void => {
    const model = modelOf(instance);
    const policy = policyOf(model);
    if (!policy) return;
    const after = row(model, policy, dataOf(instance));
    const input = base(model, policy, 'create', idOf(model, dataOf(instance)));
    input.after = after;
    record(input, opts);
  };

  const hooks: { [K in string]: (...args: never[]) => void } = {
    afterCreate: (instance: AnyModel, opts: CreateOptions) => guard(sink, 'afterCreate', () => created(instance, opts as Options)),

    afterBulkCreate: (instances: readonly AnyModel[], opts: BulkCreateOptions) =>
      guard(sink, 'afterBulkCreate', () => {
        // With individualHooks each row already went through afterCreate.
        if ((opts as Options).individualHooks) return;
        for (const instance of instances) created(instance, opts as Options);
      }),

    beforeUpdate: (instance: AnyModel) =>
      guard(sink, 'beforeUpdate', () => {
        beforeImages.set(instance, previousOf(instance));
      }),

    afterUpdate: (instance: AnyModel, opts: InstanceUpdateOptions) =>
      guard(sink, 'afterUpdate', () => {
        const model = modelOf(instance);
        const policy = policyOf(model);
        if (!policy) return;
        const before = row(model, policy, beforeImages.get(instance) ?? previousOf(instance));
        beforeImages.delete(instance);
        const after = row(model, policy, dataOf(instance));
        const changes = diffRows(before, after);
        if (Object.keys(changes).length === 0) return;
        const input = base(model, policy, 'update', idOf(model, dataOf(instance)));
        input.before = before;
        input.after = after;
        input.changes = changes;
        record(input, opts as Options);
      }),

    afterDestroy: (instance: AnyModel, opts: InstanceDestroyOptions) =>
      guard(sink, 'afterDestroy', () => {
        const model = modelOf(instance);
        const policy = policyOf(model);
        if (!policy) return;
        const paranoid = Boolean((model as unknown as { options?: { paranoid?: boolean } }).options?.paranoid) && !(opts as Options)?.force;
        const values = previousOf(instance);
        const image = Object.keys(values).length > 0 ? { ...values, ...dataOf(instance) } : dataOf(instance);
        const input = base(model, policy, paranoid ? 'soft_delete' : 'delete', idOf(model, image));
        input.before = row(model, policy, paranoid ? values : image);
        record(input, opts as Options);
      }),

    afterRestore: (instance: AnyModel, opts: InstanceRestoreOptions) =>
      guard(sink, 'afterRestore', () => {
        const model = modelOf(instance);
        const policy = policyOf(model);
        if (!policy) return;
        const input = base(model, policy, 'restore', idOf(model, dataOf(instance)));
        input.after = row(model, policy, dataOf(instance));
        record(input, opts as Options);
      }),

    afterUpsert: (result: [AnyModel, boolean | null], opts: UpsertOptions) =>
      guard(sink, 'afterUpsert', () => {
        const [instance, wasCreated] = result;
        const model = modelOf(instance);
        const policy = policyOf(model);
        if (!policy) return;
        const action = wasCreated === true ? 'create' : wasCreated === false ? 'update' : 'upsert';
        const input = base(model, policy, action, idOf(model, dataOf(instance)));
        input.after = row(model, policy, dataOf(instance));
        input.metadata = { ...input.metadata, 'orm.upsert': true, 'orm.before_image': 'unavailable' };
        record(input, opts as Options);
      }),

    beforeBulkUpdate: (opts: UpdateOptions) => guard(sink, 'beforeBulkUpdate', () => wantRows(opts as Options)),
    beforeBulkDestroy: (opts: DestroyOptions) => guard(sink, 'beforeBulkDestroy', () => wantRows(opts as Options)),
    beforeBulkRestore: (opts: RestoreOptions) => guard(sink, 'beforeBulkRestore', () => wantRows(opts as Options)),

    afterBulkUpdate: (opts: UpdateOptions) => guard(sink, 'afterBulkUpdate', () => statement(opts as Options, 'update')),
    afterBulkDestroy: (opts: DestroyOptions) =>
      guard(sink, 'afterBulkDestroy', () => {
        const o = opts as Options;
        const paranoid = Boolean((o.model as unknown as { options?: { paranoid?: boolean } } | undefined)?.options?.paranoid) && !o.force;
        statement(o, paranoid ? 'soft_delete' : 'delete');
      }),
    afterBulkRestore: (opts: RestoreOptions) => guard(sink, 'afterBulkRestore', () => statement(opts as Options, 'restore')),
  };

  function wantRows(opts: Options): void {
    // A TRUNCATE stays one statement event: loading the whole table first would be a trap.
    if (perRowBulk && !(opts as { truncate?: boolean }).truncate && policyOf(opts.model)) opts.individualHooks = true;
  }

  /** One event for a whole bulk statement (when rows were not loaded). */
  function statement(opts: Options, action: AuditAction): void {
    if (opts.individualHooks) return; // per-row events already recorded
    const model = opts.model;
    const policy = policyOf(model);
    if (!model || !policy) return;
    const input = base(model, policy, action, '*');
    input.metadata = {
      ...input.metadata,
      'orm.before_image': 'unavailable',
      'orm.where': JSON.stringify(whereToJson(opts.where ?? null)),
      ...((opts as { truncate?: boolean }).truncate ? { 'orm.truncate': true } : {}),
    };
    if (action === 'update' && opts.attributes && typeof opts.attributes === 'object') input.after = row(model, policy, opts.attributes as Row);
    record(input, opts);
  }

  const s = sequelize as unknown as {
    addHook(type: string, name: string, fn: (...args: never[]) => void): unknown;
    removeHook(type: string, name: string): unknown;
  };
  for (const [type, fn] of Object.entries(hooks)) s.addHook(type, hookName, fn);
  return {
    stats,
    detach: () => {
      for (const type of Object.keys(hooks)) s.removeHook(type, hookName);
    },
  };
}
