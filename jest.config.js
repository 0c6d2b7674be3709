/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': 'ts-jest' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Integration files share one broker and one S3 server, each isolated by its own topics, groups
  // and prefixes; test/run.sh runs them in parallel workers, and the ones that stop a shared
  // service alone afterwards. A bare `npx jest` stays one file at a time.
  maxWorkers: 1,
  testTimeout: 120_000,
  // Service data (.infra: PostgreSQL keeps *.snap files there) and scratch are not the project's modules or snapshots.
  modulePathIgnorePatterns: ['<rootDir>/.infra/', '<rootDir>/.test-cache/', '<rootDir>/.ci/'],
  setupFiles: ['<rootDir>/test/helpers/setup-env.ts'],
};
