import type { Pgoutput } from 'pg-logical-replication';
import type { AuditEventInput } from '../producer/build-record';
import type { AuditContext } from '../producer/context';
import { MASK } from '../producer/mask';
import { diffRows, plainValue, type Row } from '../producer/orm/common';
import { CONTEXT_PREFIX, parseContext } from '../producer/cdc-context/context-message';
import { changeEventId } from './event-id';
import { type CdcMapping, tablePolicy, type TablePolicy } from './mapping';

type Relation = Pgoutput.MessageRelation;
type StitchedContext = NonNullable<ReturnType<typeof parseContext>>;

/** A transaction being decoded: its commit position and time, and the context stitched so far. */
interface OpenTransaction {
  commitLsn: string;
  /** Microseconds since the Unix epoch. */
  commitTime: bigint;
  xid: number;
  /** Row changes seen so far (all tables, audited or not), for deterministic event ids. */
  ordinal: number;
  ctx: StitchedContext | null;
}

export interface DecoderStats {
  transactions: number;
  changes: number;
  skipped: number;
  malformedContexts: number;
}

/** What the decoder reports at each commit: where the transaction ends, and when it committed. */
export interface CommitInfo {
  endLsn: string;
  commitTime: bigint;
}

/**
 * Turns pgoutput messages into audit events: one per inserted, updated or
 * deleted row (create/update/delete with before/after/changes, like the ORM
 * hooks), one per truncated table, each with the AuditContext the app emitted
 * in the same transaction (or the database role the role trigger emitted).
 * Pure and synchronous: the service decides when events are delivered and the
 * slot confirmed.
 */
export class ChangeDecoder {
  readonly stats: DecoderStats = { transactions: 0, changes: 0, skipped: 0, malformedContexts: 0 };
  private txn: OpenTransaction | null = null;
  private readonly policies = new Map<number, { relation: Relation; policy: TablePolicy }>();

  /**
   * Primary key columns by relation OID, filled by the service from the catalog
   * when a relation message arrives: the relation's own key flags are the
   * replica identity, which under REPLICA IDENTITY FULL is every column.
   */
  readonly primaryKeys = new Map<number, readonly string[]>();

  constructor(
    private readonly mapping: CdcMapping,
    private readonly emit: (input: AuditEventInput) => void,
    private readonly onCommit: (commit: CommitInfo) => void,
  ) {}

  /** The columns whose values make a row's object id. */
  idColumns(relation: Relation, policy: TablePolicy): readonly string[] {
    return policy.idColumns ?? this.primaryKeys.get(relation.relationOid) ?? (relation.replicaIdentity === 'full' ? [] : relation.keyColumns);
  }

  /** Inside a transaction (between its begin and commit messages). */
  get inTransaction(): boolean {
    return this.txn !== null;
  }

  handle(msg: Pgoutput.Message): void {
    switch (msg.tag) {
      case 'begin':
        this.txn = { commitLsn: msg.commitLsn ?? '0/0', commitTime: msg.commitTime as bigint, xid: msg.xid, ordinal: 0, ctx: null };
        return;
      case 'commit': {
        this.txn = null;
        this.stats.transactions++;
        this.onCommit({ endLsn: msg.commitEndLsn ?? msg.commitLsn ?? '0/0', commitTime: msg.commitTime as bigint });
        return;
      }
      case 'message':
        if (msg.prefix === CONTEXT_PREFIX && msg.transactional && this.txn) {
          const ctx = parseContext(msg.content);
          if (ctx) this.txn.ctx = ctx;
          else this.stats.malformedContexts++;
        }
        return;
      case 'insert':
        return this.row(msg.relation, 'create', null, msg.new, null);
      case 'update':
        return this.row(msg.relation, 'update', msg.old, msg.new, msg.key);
      case 'delete':
        return this.row(msg.relation, 'delete', msg.old ?? msg.key, null, null);
      case 'truncate':
        return this.truncate(msg);
      default:
        return; // relation, type, origin: the parser keeps what it needs
    }
  }

  private policyOf(relation: Relation): TablePolicy {
    const cached = this.policies.get(relation.relationOid);
    // A new relation message (ALTER TABLE) is a new object: recompute.
    if (cached && cached.relation === relation) return cached.policy;
    const policy = tablePolicy(this.mapping, relation.schema, relation.name);
    this.policies.set(relation.relationOid, { relation, policy });
    return policy;
  }

  private row(relation: Relation, action: 'create' | 'update' | 'delete', oldRow: Row | null, newRow: Row | null, oldKey: Row | null): void {
    const txn = this.txn;
    if (!txn) throw new Error(`row change of ${relation.schema}.${relation.name} outside a transaction`);
    const ordinal = txn.ordinal++;
    const policy = this.policyOf(relation);
    if (policy.skip) {
      this.stats.skipped++;
      return;
    }
    this.stats.changes++;
    const idColumns = this.idColumns(relation, policy);
    const keySource = newRow ?? oldRow ?? {};
    const objectId = idColumns.length > 0 ? joinKey(idColumns.map((c) => keySource[c])) : null;
    const metadata: Record<string, string> = { 'cdc.table': `${relation.schema}.${relation.name}`, 'cdc.lsn': txn.commitLsn, 'cdc.xid': String(txn.xid) };
    const input = this.baseInput(txn, policy.objectType, objectId ?? `@${txn.commitLsn}:${ordinal}`, action, metadata);
    input.eventId = changeEventId(txn.commitLsn, ordinal, metadata['cdc.table']!, input.objectId as string);
    if (objectId === null) metadata['cdc.no_key'] = 'true';

    // Unchanged TOASTed values come as "unchanged" without a full old image: leave them out, and say so.
    const unchanged: string[] = [];
    const after = newRow ? this.image(newRow, policy, unchanged) : null;
    const before = oldRow ? this.image(oldRow, policy, null) : null;
    if (unchanged.length > 0) metadata['cdc.unchanged_toast'] = unchanged.join(',');

    if (action === 'create') {
      input.after = after;
    } else if (action === 'update') {
      input.after = after;
      if (before && relation.replicaIdentity === 'full') {
        input.before = before;
        // Diffed on the stored values, so a changed masked column is listed (as masked on both sides).
        const changes = diffRows(this.image(oldRow!, policy, null, false), this.image(newRow!, policy, null, false));
        for (const field of Object.keys(changes)) if (policy.isMasked(field)) changes[field] = { old: MASK, new: MASK };
        input.changes = changes;
      } else {
        // REPLICA IDENTITY DEFAULT/INDEX: PostgreSQL logs no old image (cdc/README.md).
        metadata['cdc.before'] = 'unavailable';
      }
      if (oldKey) {
        const oldId = joinKey(idColumns.map((c) => oldKey[c]));
        if (oldId !== null && oldId !== objectId) metadata['cdc.old_id'] = oldId;
      }
    } else {
      input.before = before;
      if (relation.replicaIdentity !== 'full') metadata['cdc.before'] = 'key_only';
    }
    this.emit(input);
  }

  private truncate(msg: Pgoutput.MessageTruncate): void {
    const txn = this.txn;
    if (!txn) throw new Error('truncate outside a transaction');
    const tables = msg.relations.filter(Boolean).map((r) => `${r.schema}.${r.name}`);
    for (const relation of msg.relations) {
      const ordinal = txn.ordinal++;
      if (!relation) continue;
      const policy = this.policyOf(relation);
      if (policy.skip) {
        this.stats.skipped++;
        continue;
      }
      this.stats.changes++;
      const table = `${relation.schema}.${relation.name}`;
      const metadata: Record<string, string> = {
        'cdc.table': table,
        'cdc.lsn': txn.commitLsn,
        'cdc.xid': String(txn.xid),
        'cdc.truncate.tables': tables.join(','),
        'cdc.truncate.cascade': String(msg.cascade),
        'cdc.truncate.restart_identity': String(msg.restartIdentity),
      };
      const input = this.baseInput(txn, policy.objectType, '*', 'truncate', metadata);
      input.eventId = changeEventId(txn.commitLsn, ordinal, table, '*');
      this.emit(input);
    }
  }

  private baseInput(txn: OpenTransaction, objectType: string, objectId: string, action: string, metadata: Record<string, string>): AuditEventInput {
    const ctx = txn.ctx;
    const input: AuditEventInput = { objectType, objectId, action, occurredAt: Number(txn.commitTime) / 1000, metadata };
    if (ctx) {
      applyContext(input, ctx);
      if (ctx.metadata) for (const [k, v] of Object.entries(ctx.metadata)) if (!(k in metadata)) metadata[k] = v;
      if (ctx.dbRole) metadata['db.role'] = ctx.dbRole;
      if (ctx.applicationName) metadata['db.application_name'] = ctx.applicationName;
    } else {
      // No app context and no role trigger: still recorded, as the database's doing.
      input.actorId = null;
      input.actorType = 'database';
      metadata['cdc.context'] = 'none';
    }
    return input;
  }

  /** The row as audited: columns filtered, values made JSON-friendly, the table's masked columns masked. */
  private image(row: Row, policy: TablePolicy, unchanged: string[] | null, mask = true): Row {
    const out: Row = {};
    for (const name of Object.keys(row)) {
      if (!policy.keepColumn(name)) continue;
      const v = row[name];
      if (v === undefined) {
        unchanged?.push(name);
        continue;
      }
      out[name] = mask && policy.isMasked(name) ? MASK : plainValue(v);
    }
    return out;
  }
}

function applyContext(input: AuditEventInput, ctx: AuditContext): void {
  input.actorId = ctx.actorId ?? null;
  input.actorType = ctx.actorType ?? (ctx.actorId ? 'user' : null);
  input.tenantId = ctx.tenantId ?? null;
  input.requestId = ctx.requestId ?? null;
  input.traceId = ctx.traceId ?? null;
  input.ip = ctx.ip ?? null;
  input.userAgent = ctx.userAgent ?? null;
  input.httpMethod = ctx.httpMethod ?? null;
  input.httpPath = ctx.httpPath ?? null;
}

/** Key column values joined like the ORM hooks join composite keys (`:`); null when a part is missing. */
function joinKey(parts: readonly unknown[]): string | null {
  const out: string[] = [];
  for (const v of parts) {
    if (v === undefined || v === null || v === '') return null;
    out.push(v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return out.length > 0 ? out.join(':') : null;
}
