/** Injection token of the audit client (`@Inject(AUDIT_CLIENT)` or `@InjectAuditClient()`); the `AuditClient` class is a token too. */
export const AUDIT_CLIENT = Symbol.for('audit-pipeline:audit-client');
/** Injection token of the options given to `AuditModule.forRoot` / `forRootAsync`. */
export const AUDIT_MODULE_OPTIONS = Symbol.for('audit-pipeline:audit-module-options');
/** Handler / controller metadata key written by `@Audited()`. */
export const AUDITED_METADATA = 'audit-pipeline:audited';
