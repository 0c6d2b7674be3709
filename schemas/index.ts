export * from './types';
export * from './registry';
export * from './codec';
export * from './framing';
export * from './fingerprint';
export * from './validate';
