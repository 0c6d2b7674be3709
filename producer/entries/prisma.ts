/**
 * `audit-pipeline/prisma`: the Prisma (7, driver adapters) client extension
 * recording write events, and the driver adapter wrapper that stitches the
 * request's AuditContext onto Prisma's transactions for audit-cdc (needs
 * `@prisma/client`; the wrapper works with `@prisma/adapter-pg`).
 */
export * from '../orm/prisma';
export { prismaCdcContext, type PrismaCdcContextOptions, type PrismaAdapterFactory, type PrismaSqlAdapter, type PrismaAdapterTransaction, type PrismaSqlQuery } from '../cdc-context/prisma';
export type { OrmModelOptions } from '../orm/common';
