import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who is acting, for whom and in which request. Carried across `await` by
 * AsyncLocalStorage, so code deep in a request records events without passing
 * it around. Every field can still be overridden per event.
 */
export interface AuditContext {
  actorId?: string | null;
  actorType?: string | null;
  tenantId?: string | null;
  requestId?: string | null;
  traceId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  httpMethod?: string | null;
  httpPath?: string | null;
  /** Extra data common to every event of the request (merged into `metadata`). */
  metadata?: Record<string, string>;
}

const storage = new AsyncLocalStorage<AuditContext>();

/** Runs `fn` with `context` merged over the current one. */
export function runWithAuditContext<T>(context: AuditContext, fn: () => T): T {
  const parent = storage.getStore();
  const merged: AuditContext = parent
    ? { ...parent, ...context, metadata: { ...parent.metadata, ...context.metadata } }
    : context;
  return storage.run(merged, fn);
}

export function currentAuditContext(): AuditContext | undefined {
  return storage.getStore();
}

/**
 * Changes the current context in place, e.g. once authentication has identified
 * the actor after the request context was opened.
 */
export function updateAuditContext(patch: AuditContext): void {
  const ctx = storage.getStore();
  if (!ctx) return;
  const metadata = patch.metadata ? { ...ctx.metadata, ...patch.metadata } : ctx.metadata;
  Object.assign(ctx, patch);
  if (metadata) ctx.metadata = metadata;
}
