export * from './emit';
export * from './ip';
export * from './patterns';
export * from './trace';
export * from './jwt';
export * from './core';
export * from './express';
export * from './fastify';
