import type { AuditContext } from '../context';

/** Prefix of the logical decoding messages carrying a transaction's AuditContext. */
export const CONTEXT_PREFIX = 'audit-context';

/**
 * Transaction-local setting the app helpers set when they emit a context, so the
 * role trigger (cdc/setup.ts) does not emit a second, role-only one.
 */
export const CONTEXT_SETTING = 'audit.context';

/** What travels in the message: the AuditContext's plain fields (getters resolved now). */
export function serializeContext(ctx: AuditContext): string {
  const out: AuditContext = {};
  for (const k of ['actorId', 'actorType', 'tenantId', 'requestId', 'traceId', 'ip', 'userAgent', 'httpMethod', 'httpPath'] as const) {
    const v = ctx[k];
    if (v !== undefined && v !== null) out[k] = String(v);
  }
  if (ctx.metadata && Object.keys(ctx.metadata).length > 0) out.metadata = ctx.metadata;
  return JSON.stringify(out);
}

/** The context a message carries; null when it is not one of ours or is malformed (logged by the caller). */
export function parseContext(content: Uint8Array): (AuditContext & { dbRole?: string; applicationName?: string }) | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const out: AuditContext & { dbRole?: string; applicationName?: string } = {};
  for (const k of ['actorId', 'actorType', 'tenantId', 'requestId', 'traceId', 'ip', 'userAgent', 'httpMethod', 'httpPath', 'dbRole', 'applicationName'] as const) {
    const f = v[k];
    if (typeof f === 'string' || typeof f === 'number') out[k] = String(f);
  }
  if (v.metadata && typeof v.metadata === 'object' && !Array.isArray(v.metadata)) {
    const md: Record<string, string> = {};
    for (const [k, f] of Object.entries(v.metadata as Record<string, unknown>)) if (f !== null && f !== undefined) md[k] = String(f);
    out.metadata = md;
  }
  return out;
}
