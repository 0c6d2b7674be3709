/**
 * Everything the producer offers, for code inside this repository. Apps import
 * the package's entries instead (producer/entries/: `audit-pipeline/producer`,
 * `/express`, `/fastify`, `/typeorm`, `/sequelize`), whose union this is.
 */
export * from './entries/producer';
export * from './entries/express';
export * from './entries/fastify';
export * from './entries/typeorm';
export * from './entries/sequelize';
