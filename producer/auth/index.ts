import type { AuditEventInput } from '../build-record';
import type { AuditRecorder } from '../http/emit';

/** Object type of authentication events: `user:<id or username>`. */
export const AUTH_OBJECT_TYPE = 'user';

interface AuthEventBase {
  actorType?: string | null;
  tenantId?: string | number | null;
  /** How the user authenticated (`password`, `sso`, `mfa`, `api_key`...): `metadata["auth.method"]`. */
  method?: string;
  metadata?: AuditEventInput['metadata'];
  occurredAt?: AuditEventInput['occurredAt'];
}

export interface LoginEvent extends AuthEventBase {
  /** The user who logged in (also the event's actor). */
  actorId: string | number;
}

export type LogoutEvent = LoginEvent;

export interface LoginFailedEvent extends AuthEventBase {
  /** The name the attempt was made with (object id). Never pass the password. */
  username: string;
  /** Why it failed (`bad_password`, `unknown_user`, `locked`, `http_401`...). */
  reason: string;
}

function authMetadata(e: AuthEventBase, extra: Record<string, string> = {}): AuditEventInput['metadata'] {
  return { ...e.metadata, ...(e.method ? { 'auth.method': e.method } : {}), ...extra };
}

function objectIdOf(id: string | number): string | number {
  return id === '' ? 'unknown' : id;
}

/** `login` of `user:<actorId>`, by that user. Returns `record()`'s promise (never rejects outside `fail` mode). */
export function recordLogin(client: AuditRecorder, e: LoginEvent): Promise<void> {
  return recordOwnSession(client, 'login', e);
}

/** `logout` of `user:<actorId>`, by that user. */
export function recordLogout(client: AuditRecorder, e: LogoutEvent): Promise<void> {
  return recordOwnSession(client, 'logout', e);
}

/** A user's own session event: the user is both the object and the actor. */
function recordOwnSession(client: AuditRecorder, action: 'login' | 'logout', e: LoginEvent): Promise<void> {
  return client.record({
    objectType: AUTH_OBJECT_TYPE,
    objectId: objectIdOf(e.actorId),
    action,
    actorId: e.actorId,
    actorType: e.actorType ?? 'user',
    ...(e.tenantId !== undefined ? { tenantId: e.tenantId } : {}),
    metadata: authMetadata(e),
    ...(e.occurredAt !== undefined ? { occurredAt: e.occurredAt } : {}),
  });
}

/**
 * `login_failed` of `user:<username>`. The actor is empty (nobody was
 * authenticated), whatever the surrounding context says; the reason is in
 * `metadata["auth.reason"]`.
 */
export function recordLoginFailed(client: AuditRecorder, e: LoginFailedEvent): Promise<void> {
  return client.record({
    objectType: AUTH_OBJECT_TYPE,
    objectId: objectIdOf(e.username),
    action: 'login_failed',
    actorId: null,
    actorType: null,
    ...(e.tenantId !== undefined ? { tenantId: e.tenantId } : {}),
    metadata: authMetadata(e, { 'auth.reason': e.reason }),
    ...(e.occurredAt !== undefined ? { occurredAt: e.occurredAt } : {}),
  });
}
