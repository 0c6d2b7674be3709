export * from './client';
export * from './schema-ids';
export * from './writer-schema';
