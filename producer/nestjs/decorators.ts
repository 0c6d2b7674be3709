import { Inject, SetMetadata } from '@nestjs/common';
import { AUDIT_CLIENT, AUDITED_METADATA } from './tokens';

/** What `@Audited()`'s `objectId` function is given. */
export interface AuditedCall {
  /** Route parameters (`:id`). */
  params: Readonly<Record<string, string | undefined>>;
  query: unknown;
  body: unknown;
  /** The handler's result (undefined when it failed). */
  result: unknown;
  /** The framework's request (Express or Fastify). */
  request: unknown;
}

export interface AuditedOptions {
  /** Object type of the event (default: the action up to its first `.`, `invoice` for `invoice.approve`). */
  objectType?: string;
  /** Object id: a route parameter name (default `id`), or a function of the call. */
  objectId?: string | ((call: AuditedCall) => string | number | bigint | null | undefined);
  /** Extra metadata of the event. */
  metadata?: Readonly<Record<string, string | number | boolean | null>>;
  /** Also record the event, with the error, when the handler fails (default true). */
  recordFailures?: boolean;
}

export interface AuditedMetadata extends AuditedOptions {
  action: string;
}

/**
 * Records an explicit event when the handler completes, e.g.
 * `@Audited('invoice.approve')` on `POST /invoices/:id/approve` records action
 * `invoice.approve` on `invoice:<id>` with the request's actor, request id and
 * trace. On a controller class it applies to each of its handlers (a handler's
 * own `@Audited` wins). Needs the AuditModule's interceptor.
 */
export function Audited(action: string, options: AuditedOptions = {}): MethodDecorator & ClassDecorator {
  if (typeof action !== 'string' || action.trim() === '') throw new TypeError('@Audited needs an action name');
  const meta: AuditedMetadata = { ...options, action };
  return SetMetadata(AUDITED_METADATA, meta);
}

/** Injects the audit client: `constructor(@InjectAuditClient() private readonly audit: AuditClient)`. */
export function InjectAuditClient(): PropertyDecorator & ParameterDecorator {
  return Inject(AUDIT_CLIENT);
}
