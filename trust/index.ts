export * from './format';
export * from './signer';
export * from './row-hash';
export * from './chain-writer';
export * from './signing-setup';
export * from './trusted-keys';
export * from './signed-object';
export * from './trust-policy';
