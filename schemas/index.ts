export * from './types';
export * from './registry';
export * from './codec';
export * from './validate';
