import type { Prisma } from '@prisma/client/extension';
import type { AuditAction } from '../../schemas';
import { type AuditEventInput, toJson } from '../build-record';
import { currentAuditContext } from '../context';
import { guard, type AuditRecorder, type HookStats } from '../http/emit';
import { DEFAULT_MASKED_FIELDS, fieldMatcher, maskValue } from '../mask';
import { type ModelPolicy, OrmAuditor, type OrmAuditOptions, type OrmModelOptions, plainValue, type Row } from './common';

export interface PrismaModelOptions extends OrmModelOptions {
  /** The model's primary key fields, joined into the object id (default `["id"]`). */
  idFields?: readonly string[];
}

export interface PrismaAuditOptions extends Omit<OrmAuditOptions, 'models' | 'deferUntilCommit'> {
  /** Per-model settings, keyed by model name or table name. */
  models?: Readonly<Record<string, PrismaModelOptions>>;
  /**
   * The PostgreSQL schema of the tables when the driver adapter was given one
   * (`new PrismaPg(pool, { schema })`): tables are then named `schema.table`, as
   * `capturedTables()` names them, in `include`/`exclude`/`models`.
   */
  schema?: string;
  /** Field names whose values are masked in `orm.where` (default DEFAULT_MASKED_FIELDS). */
  maskFields?: readonly (string | RegExp)[];
}

/** What a Prisma query extension's `$allOperations` receives. */
interface OperationParams {
  model?: string;
  operation: string;
  args: unknown;
  query: (args: unknown) => Promise<unknown>;
  __internalParams?: { transaction?: { kind?: string } };
}

interface RuntimeModel {
  dbName?: string | null;
  schema?: string | null;
  fields?: readonly { name: string; kind: string }[];
}

const WRITES = new Set([
  'create',
  'createMany',
  'createManyAndReturn',
  'update',
  'updateMany',
  'updateManyAndReturn',
  'upsert',
  'delete',
  'deleteMany',
]);

/**
 * `Prisma.defineExtension` for the function form, which returns its argument:
 * written here so that loading `audit-pipeline/prisma` does not load
 * `@prisma/client` (an optional peer), with Prisma's own type.
 */
const defineExtension = ((ext: unknown) => ext) as typeof Prisma.defineExtension;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A plain value as Prisma writes it; `{ increment: 1 }`, `{ set: x }` and nested writes are not values. */
function writtenValue(v: unknown): { value: unknown } | null {
  if (v === undefined) return null;
  if (isObject(v) && !(v instanceof Date) && !Buffer.isBuffer(v)) {
    if ('set' in v && Object.keys(v).length === 1) return { value: v.set };
    return null;
  }
  return { value: v };
}

/**
 * A Prisma client extension recording `create`, `update`, `upsert` and `delete`
 * events for model writes (create, createMany[AndReturn], update,
 * updateMany[AndReturn], upsert, delete, deleteMany), in the AuditContext the
 * write was made in.
 *
 * What Prisma lets an extension see, and so what the events hold:
 * - create / createManyAndReturn: `after` (the rows returned).
 * - delete: `before` (the row Prisma returns is the deleted one).
 * - update / upsert / updateManyAndReturn: `after` only: the row before the
 *   write is not available to an extension without a second query on another
 *   connection, so `metadata["orm.before_image"] = "unavailable"` and the
 *   fields the write set are listed in `metadata["orm.fields"]`.
 * - createMany / updateMany / deleteMany: Prisma returns only a count: one
 *   event per statement with object id `*`, the criteria in `orm.where`
 *   (masked), the count in `orm.count`, the values set in `after`.
 *
 * Events are recorded once the write has returned. Inside an interactive
 * transaction that is before the commit: a transaction rolled back after a
 * write leaves that write's event (`metadata["orm.transaction"]` says the write
 * was made in one). For exact, transaction-aware history of a table use
 * audit-cdc with `prismaCdcContext` (cdc/README.md): audit-cdc records only
 * committed changes, with before-images under REPLICA IDENTITY FULL.
 *
 * ```ts
 * const prisma = new PrismaClient({ adapter }).$extends(prismaAudit(auditClient));
 * ```
 */
export function prismaAudit(client: AuditRecorder, options: PrismaAuditOptions = {}) {
  const auditor = new OrmAuditor(client, options);
  const stats: HookStats = auditor.stats;
  const isSensitive = fieldMatcher(options.maskFields ?? DEFAULT_MASKED_FIELDS);

  const extension = defineExtension((prisma) => {
    // The generated client's data model (table names, scalar fields): internal to Prisma, read defensively.
    const runtimeModels = (prisma as unknown as { _runtimeDataModel?: { models?: Record<string, RuntimeModel> } })._runtimeDataModel?.models ?? {};

    const describe = (model: string) => {
      const rm = runtimeModels[model];
      const table = rm?.dbName ?? model;
      const schema = rm?.schema ?? options.schema;
      const qualifiedTable = schema && schema !== 'public' ? `${schema}.${table}` : table;
      const policy = auditor.policy(model, qualifiedTable);
      const settings = options.models?.[model] ?? options.models?.[qualifiedTable] ?? options.models?.[table];
      const scalars = rm?.fields ? new Set(rm.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum').map((f) => f.name)) : null;
      return { policy, idFields: settings?.idFields ?? ['id'], scalars };
    };
    type Described = ReturnType<typeof describe>;
    const described = new Map<string, Described>();

    const row = (d: Described, value: unknown): Row | null => {
      if (!isObject(value)) return null;
      const out: Row = {};
      for (const [k, v] of Object.entries(value)) {
        if (d.scalars ? !d.scalars.has(k) : isObject(v) || Array.isArray(v)) continue;
        if (d.policy.isExcludedField(k)) continue;
        out[k] = plainValue(v);
      }
      return out;
    };

    /** The values a `data` argument sets (plain values only). */
    const written = (d: Described, data: unknown): Row | null => {
      if (!isObject(data)) return null;
      const out: Row = {};
      for (const [k, v] of Object.entries(data)) {
        if ((d.scalars && !d.scalars.has(k)) || d.policy.isExcludedField(k)) continue;
        const w = writtenValue(v);
        if (w) out[k] = plainValue(w.value);
      }
      return out;
    };

    const idOf = (d: Described, ...sources: unknown[]): string | null => {
      for (const s of sources) {
        if (!isObject(s)) continue;
        const id = auditor.objectId(d.idFields.map((f) => s[f]));
        if (id !== null) return id;
      }
      return null;
    };

    const emit = (d: Described, action: AuditAction, objectId: string | null, fill: Partial<AuditEventInput>, meta: AuditEventInput['metadata']): void => {
      const input: AuditEventInput = {
        objectType: d.policy.objectType,
        objectId: objectId ?? '*',
        action,
        ...fill,
        metadata: { ...meta, ...(objectId === null && !meta?.['orm.where'] ? { 'orm.object_id': 'unavailable' } : {}) },
      };
      auditor.emit(input, currentAuditContext());
    };

    const record = (model: string, operation: string, args: unknown, result: unknown, inTransaction: string | undefined): void => {
      let d = described.get(model);
      if (!d) {
        d = describe(model);
        described.set(model, d);
      }
      const policy: ModelPolicy = d.policy;
      if (!policy.audited) {
        stats.skipped++;
        return;
      }
      const a = isObject(args) ? args : {};
      const base: Record<string, string | number | boolean> = { 'orm.operation': operation };
      if (inTransaction) base['orm.transaction'] = inTransaction;
      const where = (): string => toJson(maskValue(a.where ?? null, isSensitive));
      switch (operation) {
        case 'create':
          emit(d, 'create', idOf(d, result, a.data), { after: row(d, result) ?? written(d, a.data) }, base);
          break;
        case 'createManyAndReturn':
          for (const r of Array.isArray(result) ? result : []) emit(d, 'create', idOf(d, r), { after: row(d, r) }, base);
          break;
        case 'createMany': {
          const items: unknown[] = Array.isArray(a.data) ? a.data : [a.data];
          for (const item of items) emit(d, 'create', idOf(d, item), { after: written(d, item) }, { ...base, 'orm.before_image': 'unavailable' });
          break;
        }
        case 'update':
        case 'upsert': {
          const data = operation === 'upsert' ? a.update : a.data;
          const fields = Object.keys(written(d, data) ?? {});
          emit(d, operation, idOf(d, result, a.where), { after: row(d, result) }, { ...base, 'orm.before_image': 'unavailable', 'orm.fields': fields.join(',') });
          break;
        }
        case 'updateManyAndReturn': {
          const fields = Object.keys(written(d, a.data) ?? {}).join(',');
          for (const r of Array.isArray(result) ? result : []) {
            emit(d, 'update', idOf(d, r), { after: row(d, r) }, { ...base, 'orm.before_image': 'unavailable', 'orm.fields': fields });
          }
          break;
        }
        case 'updateMany': {
          const count = isObject(result) && typeof result.count === 'number' ? result.count : null;
          if (count === 0) break;
          emit(d, 'update', null, { after: written(d, a.data) }, { ...base, 'orm.before_image': 'unavailable', 'orm.where': where(), 'orm.count': count });
          break;
        }
        case 'delete':
          emit(d, 'delete', idOf(d, result, a.where), { before: row(d, result) }, base);
          break;
        case 'deleteMany': {
          const count = isObject(result) && typeof result.count === 'number' ? result.count : null;
          if (count === 0) break;
          emit(d, 'delete', null, {}, { ...base, 'orm.before_image': 'unavailable', 'orm.where': where(), 'orm.count': count });
          break;
        }
      }
    };

    return prisma.$extends({
      name: 'audit-pipeline',
      query: {
        $allModels: {
          async $allOperations(params) {
            const { model, operation, args, query } = params as OperationParams;
            if (!WRITES.has(operation) || !model) return query(args);
            const result = await query(args);
            const tx = (params as OperationParams).__internalParams?.transaction?.kind;
            guard(auditor.sink, `prisma ${model}.${operation}`, () => record(model, operation, args, result, tx === 'itx' ? 'interactive' : tx));
            return result;
          },
        },
      },
    });
  });
  // `stats`: the counters of what was recorded, skipped and failed to record.
  return Object.assign(extension, { stats });
}

export type { AuditRecorder, HookStats };
