import type { HistoryEvent } from '../query/history';

/**
 * What a viewer may see: every tenant (including events with no tenant), or
 * the events of some tenants only. Everything outside is answered exactly as if
 * it did not exist, so a scoped viewer cannot even learn that it does.
 */
export type Scope = { kind: 'all' } | { kind: 'tenants'; tenants: ReadonlySet<string> };

export const ALL_TENANTS: Scope = { kind: 'all' };

/** Events with no tenant belong to no tenant's scope: only an all-tenants viewer sees them. */
export function inScope(scope: Scope, tenant: string | null): boolean {
  if (scope.kind === 'all') return true;
  return tenant !== null && scope.tenants.has(tenant);
}

export function scopedEvents(scope: Scope, events: readonly HistoryEvent[]): HistoryEvent[] {
  return scope.kind === 'all' ? [...events] : events.filter((e) => inScope(scope, e.tenant_id));
}

/** The tenant list a search may run over, or null for every tenant. */
export function scopeTenants(scope: Scope): string[] | null {
  return scope.kind === 'all' ? null : [...scope.tenants].sort();
}

/** The tenant recorded on a viewer's own read events: its only tenant, else none. */
export function readTenant(scope: Scope): string | null {
  return scope.kind === 'tenants' && scope.tenants.size === 1 ? [...scope.tenants][0]! : null;
}

export function describeScope(scope: Scope): string {
  return scope.kind === 'all' ? 'all tenants' : [...scope.tenants].sort().join(', ');
}
