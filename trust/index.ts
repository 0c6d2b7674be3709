export * from './format';
export * from './signer';
export * from './row-hash';
export * from './chain-writer';
export * from './signing-setup';
