#!/usr/bin/env node
/**
 * Generates the Prisma client of the tests (test/prisma/schema.prisma) into
 * .test-cache/prisma-client (git-ignored), offline: Prisma 7's client and query
 * compiler are TypeScript and WebAssembly shipped in the npm packages. The CLI
 * still checks for its schema engine binary (used only by `migrate` and
 * `db push`, which the tests do not run) and would try to download it:
 * PRISMA_SCHEMA_ENGINE_BINARY pointed at an existing file skips that check.
 * Skipped when the schema is unchanged since the last generation. Run by
 * `npm run typecheck` (pretypecheck) and by the Prisma tests.
 */
const { execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..', '..');
const schema = join(__dirname, 'schema.prisma');
const out = join(root, '.test-cache', 'prisma-client');
const stamp = join(out, '.schema-hash');
const version = require(join(root, 'node_modules', 'prisma', 'package.json')).version;
const hash = createHash('sha256').update(readFileSync(schema)).update(version).digest('hex');

if (!(existsSync(stamp) && readFileSync(stamp, 'utf8') === hash && existsSync(join(out, 'client.ts')))) {
  execFileSync(process.execPath, [join(root, 'node_modules', 'prisma', 'build', 'index.js'), 'generate', '--schema', schema], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
      CHECKPOINT_DISABLE: '1',
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
    },
  });
  writeFileSync(stamp, hash);
}
