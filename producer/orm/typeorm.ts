import type {
  AfterQueryEvent,
  DataSource,
  EntityMetadata,
  EntitySubscriberInterface,
  InsertEvent,
  ObjectLiteral,
  QueryRunner,
  RecoverEvent,
  RemoveEvent,
  SoftRemoveEvent,
  TransactionCommitEvent,
  TransactionRollbackEvent,
  TransactionStartEvent,
  UpdateEvent,
} from 'typeorm';
import type { AuditAction } from '../../schemas';
import type { AuditEventInput } from '../build-record';
import { DEFAULT_MASKED_FIELDS, fieldMatcher, MASK, maskValue } from '../mask';
import { guard } from '../http/emit';
import type { AuditRecorder, HookStats } from '../http/emit';
import { diffRows, held, type HeldEvent, type ModelPolicy, OrmAuditor, type OrmAuditOptions, plainValue, type Row } from './common';

type Column = EntityMetadata['columns'][number];

export interface TypeormAuditOptions extends OrmAuditOptions {
  /**
   * For writes made without loading entities (QueryBuilder / `repository.update()`,
   * `delete()`, `softDelete()`): read the statement's WHERE clause from the
   * query just executed and put it in `metadata["orm.where"]` (parameters in
   * `metadata["orm.parameters"]`, masked); a plain primary-key criterion
   * (`id = $1`, `id IN (...)`) becomes one event per id. Default true.
   */
  captureCriteria?: boolean;
  /** Field names whose values are masked in `orm.parameters` (default DEFAULT_MASKED_FIELDS). */
  maskFields?: readonly (string | RegExp)[];
}

interface Statement {
  query: string;
  parameters: unknown[];
  affected: number | null;
}

const isStatement = /^\s*(UPDATE|DELETE)\b/i;

/** `((a = 1))` -> `a = 1`; `(a) AND (b)` is left alone. */
function stripOuterParens(text: string): string {
  let t = text.trim();
  while (t.startsWith('(') && t.endsWith(')')) {
    let depth = 0;
    let closesAtEnd = true;
    for (let i = 0; i < t.length; i++) {
      if (t[i] === '(') depth++;
      else if (t[i] === ')' && --depth === 0 && i < t.length - 1) {
        closesAtEnd = false;
        break;
      }
    }
    if (!closesAtEnd) break;
    t = t.slice(1, -1).trim();
  }
  return t;
}

/**
 * TypeORM subscriber recording `create`, `update`, `delete`, `soft_delete` and
 * `restore` events with before/after images and field-level changes. See
 * producer/docs/orm.md for exactly what is and is not captured.
 *
 * Register an instance on an initialized DataSource (`attachTypeormAudit`), or
 * pass `typeormAuditSubscriberClass(client, options)` in the DataSource's
 * `subscribers` option.
 */
export class AuditSubscriber implements EntitySubscriberInterface<ObjectLiteral> {
  readonly stats: HookStats;
  private readonly auditor: OrmAuditor;
  private readonly captureCriteria: boolean;
  private readonly isSensitive: (name: string) => boolean;
  // Per query runner: a stack of open transactions, each with the events made in it.
  private readonly frames = new WeakMap<QueryRunner, HeldEvent[][]>();
  // Per query runner: the last UPDATE/DELETE statement, for writes without entities.
  private readonly lastStatement = new WeakMap<QueryRunner, Statement>();

  constructor(client: AuditRecorder, options: TypeormAuditOptions = {}) {
    this.auditor = new OrmAuditor(client, options);
    this.stats = this.auditor.stats;
    this.captureCriteria = options.captureCriteria !== false;
    this.isSensitive = fieldMatcher(options.maskFields ?? DEFAULT_MASKED_FIELDS);
  }

  // ---- transactions ----

  afterTransactionStart(event: TransactionStartEvent): void {
    guard(this.auditor.sink, 'transaction start', () => {
      if (!this.auditor.defer || !event.queryRunner) return;
      const stack = this.frames.get(event.queryRunner) ?? [];
      stack.push([]);
      this.frames.set(event.queryRunner, stack);
    });
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    guard(this.auditor.sink, 'transaction commit', () => {
      const stack = event.queryRunner ? this.frames.get(event.queryRunner) : undefined;
      const frame = stack?.pop();
      if (!stack || !frame) return;
      const parent = stack[stack.length - 1];
      if (parent) parent.push(...frame); // a savepoint released: its events wait for the outer commit
      else {
        this.frames.delete(event.queryRunner);
        for (const e of frame) this.auditor.emit(e.input, e.ctx);
      }
    });
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    guard(this.auditor.sink, 'transaction rollback', () => {
      const stack = event.queryRunner ? this.frames.get(event.queryRunner) : undefined;
      const frame = stack?.pop();
      if (frame) this.stats.discarded += frame.length;
      if (stack && stack.length === 0) this.frames.delete(event.queryRunner);
    });
  }

  private record(queryRunner: QueryRunner | undefined, input: AuditEventInput): void {
    const e = held(input);
    if (this.auditor.defer && queryRunner?.isTransactionActive) {
      let stack = this.frames.get(queryRunner);
      if (!stack || stack.length === 0) {
        // Attached in the middle of a transaction: hold until the next commit.
        stack = [[]];
        this.frames.set(queryRunner, stack);
      }
      stack[stack.length - 1]!.push(e);
      return;
    }
    this.auditor.emit(e.input, e.ctx);
  }

  // ---- statements without entities ----

  afterQuery(event: AfterQueryEvent): void {
    if (!this.captureCriteria || !event.success || typeof event.query !== 'string' || !isStatement.test(event.query)) return;
    guard(this.auditor.sink, 'after query', () => {
      const raw = event.rawResults as { rowCount?: unknown } | undefined;
      const params = Array.isArray(event.parameters) ? (event.parameters as unknown[]) : [];
      this.lastStatement.set(event.queryRunner, {
        query: event.query,
        parameters: params,
        affected: raw && typeof raw.rowCount === 'number' ? raw.rowCount : null,
      });
    });
  }

  private takeStatement(queryRunner: QueryRunner | undefined, verb: 'UPDATE' | 'DELETE'): Statement | null {
    if (!queryRunner) return null;
    const s = this.lastStatement.get(queryRunner);
    this.lastStatement.delete(queryRunner);
    return s && new RegExp(`^\\s*${verb}\\b`, 'i').test(s.query) ? s : null;
  }

  /** WHERE text, its parameters (masked) and the primary-key ids it names, if it is a plain key criterion. */
  private criteria(metadata: EntityMetadata, policy: ModelPolicy, s: Statement): { where: string; params: unknown[]; ids: string[] | null } {
    const m = /\sWHERE\s([\s\S]*?)(\sRETURNING\s[\s\S]*)?$/i.exec(s.query);
    const where = m ? m[1]!.trim() : '';
    const used = [...where.matchAll(/\$(\d+)/g)].map((x) => Number(x[1]));
    const sensitiveColumn = metadata.columns.some(
      (c) => (this.isSensitive(c.propertyName) || policy.isExcludedField(c.propertyPath) || policy.isExcludedField(c.databaseName)) && where.includes(`"${c.databaseName}"`),
    );
    const params = used.map((i) => (sensitiveColumn ? MASK : maskValue(plainValue(s.parameters[i - 1]), this.isSensitive)));
    let ids: string[] | null = null;
    const pk = metadata.primaryColumns;
    if (pk.length === 1) {
      const col = pk[0]!.databaseName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const inner = stripOuterParens(where);
      const eq = new RegExp(`^(?:"[^"]+"\\.)?"${col}"\\s*=\\s*\\$(\\d+)$`).exec(inner);
      const list = new RegExp(`^(?:"[^"]+"\\.)?"${col}"\\s+IN\\s*\\(((?:\\s*\\$\\d+\\s*,?)+)\\)$`, 'i').exec(inner);
      const idx = eq ? [Number(eq[1])] : list ? [...list[1]!.matchAll(/\$(\d+)/g)].map((x) => Number(x[1])) : null;
      if (idx) {
        const values = idx.map((i) => s.parameters[i - 1]);
        if (values.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint')) ids = values.map(String);
      }
    }
    return { where, params, ids };
  }

  // ---- helpers ----

  private policyOf(metadata: EntityMetadata | undefined): ModelPolicy | null {
    if (!metadata) return null;
    const p = this.auditor.policy(metadata.name, metadata.tableName);
    if (!p.audited) {
      this.stats.skipped++;
      return null;
    }
    return p;
  }

  private excluded(policy: ModelPolicy, c: Column): boolean {
    return policy.isExcludedField(c.propertyPath) || policy.isExcludedField(c.databaseName);
  }

  /** Column values of an entity (or of a partial set of values), without excluded fields. */
  private row(metadata: EntityMetadata, policy: ModelPolicy, entity: ObjectLiteral | undefined | null): Row | null {
    if (!entity) return null;
    const out: Row = {};
    for (const c of metadata.columns) {
      if (this.excluded(policy, c)) continue;
      let v: unknown;
      try {
        v = c.getEntityValue(entity);
      } catch {
        v = undefined;
      }
      if (v !== undefined) out[c.propertyPath] = plainValue(v);
    }
    return out;
  }

  private idOf(metadata: EntityMetadata, ...sources: (ObjectLiteral | undefined | null)[]): string | null {
    for (const src of sources) {
      if (!src) continue;
      const parts = metadata.primaryColumns.map((c) => {
        try {
          return c.getEntityValue(src) as unknown;
        } catch {
          return undefined;
        }
      });
      const id = this.auditor.objectId(parts);
      if (id !== null) return id;
    }
    return null;
  }

  private base(policy: ModelPolicy, metadata: EntityMetadata, action: AuditAction, objectId: string): AuditEventInput {
    return { objectType: policy.objectType, objectId, action, metadata: { 'orm.entity': metadata.name, 'orm.source': 'typeorm' } };
  }

  /** Events of a write made without entities (QueryBuilder, `update()`, `delete()`...): one per id if the criterion is a plain key, else one with the criterion. */
  private statementEvents(event: { queryRunner: QueryRunner; metadata: EntityMetadata }, policy: ModelPolicy, action: AuditAction, verb: 'UPDATE' | 'DELETE', values: Row | null): void {
    const s = this.takeStatement(event.queryRunner, verb);
    const c = s ? this.criteria(event.metadata, policy, s) : null;
    const fromValues = values ? this.idOf(event.metadata, values) : null;
    const ids = fromValues ? [fromValues] : (c?.ids ?? ['*']);
    for (const id of ids) {
      const input = this.base(policy, event.metadata, action, id);
      input.metadata = {
        ...input.metadata,
        'orm.before_image': 'unavailable',
        ...(c ? { 'orm.where': c.where, 'orm.parameters': JSON.stringify(c.params) } : {}),
        ...(s?.affected !== null && s?.affected !== undefined ? { 'orm.affected': s.affected } : {}),
      };
      if (values && Object.keys(values).length > 0) input.after = values;
      this.record(event.queryRunner, input);
    }
  }

  // ---- writes ----

  afterInsert(event: InsertEvent<ObjectLiteral>): void {
    guard(this.auditor.sink, 'afterInsert', () => {
      const policy = this.policyOf(event.metadata);
      if (!policy) return;
      const after = this.row(event.metadata, policy, event.entity);
      const id = this.idOf(event.metadata, event.entityId, event.entity) ?? '*';
      const input = this.base(policy, event.metadata, 'create', id);
      if (after) input.after = after;
      this.record(event.queryRunner, input);
    });
  }

  afterUpdate(event: UpdateEvent<ObjectLiteral>): void {
    guard(this.auditor.sink, 'afterUpdate', () => {
      const policy = this.policyOf(event.metadata);
      if (!policy) return;
      const md = event.metadata;
      if (!event.databaseEntity) {
        this.statementEvents(event, policy, 'update', 'UPDATE', this.row(md, policy, event.entity));
        return;
      }
      const before = this.row(md, policy, event.databaseEntity) ?? {};
      const changedPart = this.row(md, policy, event.entity) ?? {};
      const after = { ...before, ...changedPart };
      const columns = (event.updatedColumns ?? []).filter((c) => !this.excluded(policy, c));
      const changes =
        columns.length > 0
          ? Object.fromEntries(
              columns.map((c) => [c.propertyPath, { old: plainValue(c.getEntityValue(event.databaseEntity)) ?? null, new: plainValue(event.entity ? c.getEntityValue(event.entity) : undefined) ?? null }]),
            )
          : diffRows(before, changedPart);
      const id = this.idOf(md, event.entity, event.databaseEntity) ?? '*';
      const input = this.base(policy, md, 'update', id);
      input.before = before;
      input.after = after;
      input.changes = changes;
      this.record(event.queryRunner, input);
    });
  }

  private removal(event: RemoveEvent<ObjectLiteral>, action: AuditAction, verb: 'UPDATE' | 'DELETE'): void {
    const policy = this.policyOf(event.metadata);
    if (!policy) return;
    const md = event.metadata;
    const image = event.databaseEntity ?? event.entity;
    if (!image && event.entityId === undefined) {
      this.statementEvents(event, policy, action, verb, null);
      return;
    }
    const entityId = event.entityId as ObjectLiteral | string | number | undefined;
    const id =
      (entityId !== null && typeof entityId === 'object' ? this.idOf(md, entityId) : entityId !== undefined ? String(entityId) : null) ??
      this.idOf(md, event.databaseEntity, event.entity) ??
      '*';
    const input = this.base(policy, md, action, id);
    const before = this.row(md, policy, image);
    if (before) input.before = before;
    // Soft delete and restore change the entity: its new image (deletion date set or cleared) is the after.
    if (action !== 'delete' && event.entity && event.databaseEntity) {
      const after = this.row(md, policy, event.entity);
      if (after) input.after = { ...before, ...after };
    }
    this.record(event.queryRunner, input);
  }

  afterRemove(event: RemoveEvent<ObjectLiteral>): void {
    guard(this.auditor.sink, 'afterRemove', () => this.removal(event, 'delete', 'DELETE'));
  }

  afterSoftRemove(event: SoftRemoveEvent<ObjectLiteral>): void {
    guard(this.auditor.sink, 'afterSoftRemove', () => this.removal(event, 'soft_delete', 'UPDATE'));
  }

  afterRecover(event: RecoverEvent<ObjectLiteral>): void {
    guard(this.auditor.sink, 'afterRecover', () => this.removal(event, 'restore', 'UPDATE'));
  }
}

export function createTypeormAuditSubscriber(client: AuditRecorder, options: TypeormAuditOptions = {}): AuditSubscriber {
  return new AuditSubscriber(client, options);
}

/** Adds the subscriber to an initialized DataSource; returns it (for `stats`). */
export function attachTypeormAudit(dataSource: DataSource, client: AuditRecorder, options: TypeormAuditOptions = {}): AuditSubscriber {
  if (!dataSource.isInitialized) {
    throw new Error('attachTypeormAudit: initialize the DataSource first, or use typeormAuditSubscriberClass() in its `subscribers` option');
  }
  const subscriber = new AuditSubscriber(client, options);
  dataSource.subscribers.push(subscriber);
  return subscriber;
}

/** A subscriber class bound to a client, for the DataSource `subscribers` option (TypeORM instantiates it). */
export function typeormAuditSubscriberClass(client: AuditRecorder, options: TypeormAuditOptions = {}): new () => AuditSubscriber {
  return class BoundAuditSubscriber extends AuditSubscriber {
    constructor() {
      super(client, options);
    }
  };
}
