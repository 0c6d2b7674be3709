/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': 'ts-jest' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Integration tests share one broker and one S3 server: one file at a time.
  maxWorkers: 1,
  testTimeout: 120_000,
  setupFiles: ['<rootDir>/test/helpers/setup-env.ts'],
};
