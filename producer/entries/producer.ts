/**
 * `audit-pipeline/producer`: the client, the request context and every
 * framework-neutral hook. Nothing here refers to a framework's types, so an app
 * that uses none of them type-checks without installing them; the framework
 * hooks are the sibling entries (`audit-pipeline/express`, `/fastify`,
 * `/typeorm`, `/sequelize`).
 */
export * from '../client';
export * from '../context';
export * from '../errors';
export * from '../build-record';
export { DEFAULT_MASKED_FIELDS, MASK, maskValue, fieldMatcher, type FieldMatcher } from '../mask';
export { TRUNCATED_MARKER_KEY, TRUNCATED_VALUE_KEY } from '../truncate';
export type { KafkaClientKind, SenderThread } from '../transport/types';
export { MIN_OCCURRED_AT_MICROS, MAX_OCCURRED_AT_MICROS } from '../../schemas/validate';
export type { AuditRecord, AuditAction, KnownAction, FieldChange } from '../../schemas';
export * from '../auth';
export * from '../process';
export * from '../http/emit';
export * from '../http/ip';
export * from '../http/patterns';
export * from '../http/trace';
export * from '../http/jwt';
export * from '../http/core';
export * from '../orm/common';
export { SchemaIncompatibleError, SchemaRegistryRefusedError, SchemaRegistryUnavailableError } from '../../schema-registry';
