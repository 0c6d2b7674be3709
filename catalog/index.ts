export * from './day-manifest';
export * from './live-set';
