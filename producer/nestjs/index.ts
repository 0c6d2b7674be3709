export { AuditModule, type AuditModuleOptions, type AuditModuleAsyncOptions } from './module';
export { AuditInterceptor, type AuditInterceptorOptions, type NestHttpRequest } from './interceptor';
export { Audited, InjectAuditClient, type AuditedOptions, type AuditedCall, type AuditedMetadata } from './decorators';
export { AUDIT_CLIENT, AUDIT_MODULE_OPTIONS, AUDITED_METADATA } from './tokens';
