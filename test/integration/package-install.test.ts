/**
 * The package as an app gets it: `npm pack`, the tarball installed into a tiny ESM
 * app and a tiny CommonJS app in a temp dir, an event recorded through each
 * against the real Kafka and read back from the topic, the bins run from the
 * install, and the typed subpaths type-checked by the project's TypeScript
 * (strict, skipLibCheck off) under moduleResolution node16, bundler and node10.
 * `/prisma` loads without @prisma/client; `/nestjs` needs Nest, so it is loaded
 * (import and require) and run (a Nest app recording through the interceptor and
 * `@Audited`) in the CommonJS app, where the frameworks are installed.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KAFKA_BROKERS, ROOT } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';

const run = promisify(execFile);
const SUBPATHS = ['producer', 'express', 'fastify', 'typeorm', 'sequelize', 'prisma', 'cdc'] as const;
/** Subpaths whose module loads its framework: checked where the frameworks are installed. */
const FRAMEWORK_SUBPATHS = ['nestjs', 'prisma'] as const;
const NEST_PACKAGES = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', 'rxjs', 'reflect-metadata'];
const PRISMA_PACKAGES = ['@prisma/client', '@prisma/adapter-pg'];
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const installedVersion = (pkg: string) => require(join(ROOT, 'node_modules', pkg, 'package.json')).version as string;

async function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}, timeout = 180_000) {
  try {
    return await run(cmd, args, { cwd, env: { ...process.env, ...env }, timeout, maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** Exit code and output of a command that may fail on purpose. */
function exitOf(cmd: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const exists = (p: string) => access(p).then(() => true, () => false);

// ESM: records with the context API, loads every subpath without any framework installed,
// and reports the names each subpath exports to import and to require.
const ESM_APP = `
import { createRequire } from 'node:module';
import { AuditClient, runWithAuditContext } from 'audit-pipeline/producer';
const require = createRequire(import.meta.url);
const names = {};
for (const sub of ${JSON.stringify(SUBPATHS)}) {
  const esm = Object.keys(await import('audit-pipeline/' + sub)).filter((k) => k !== 'default' && k !== 'module.exports' && k !== '__esModule');
  const cjs = Object.keys(require('audit-pipeline/' + sub)).filter((k) => k !== '__esModule');
  names[sub] = { esm: esm.sort(), cjs: cjs.sort() };
}
const audit = new AuditClient({ brokers: [process.env.BROKERS], topic: process.env.TOPIC, sourceService: 'esm-app' });
runWithAuditContext({ actorId: 'esm-user', requestId: 'esm-req' }, () => {
  void audit.record({ objectType: 'invoice', objectId: process.env.OBJECT_ID, action: 'update', changes: { status: { old: 'draft', new: 'sent' } } });
});
const delivered = await audit.flush(20000);
await audit.close();
// pg is not among them: audit-cdc, which ships in the package, connects with it.
const frameworks = ['express', 'fastify', 'typeorm', 'sequelize', '@prisma/client', '@nestjs/common', '@nestjs/core'].filter((m) => { try { require.resolve(m); return true; } catch { return false; } });
let deep = null;
try { require('audit-pipeline/dist/producer'); } catch (err) { deep = err.code; }
console.log(JSON.stringify({ delivered, stats: audit.stats(), names, frameworks, deep }));
`;

// CommonJS: an Express app audited by the middleware, one request, and one explicit event.
const CJS_APP = `
const express = require('express');
const { AuditClient } = require('audit-pipeline/producer');
const { auditExpress } = require('audit-pipeline/express');
const audit = new AuditClient({ brokers: [process.env.BROKERS], topic: process.env.TOPIC, sourceService: 'cjs-app' });
const app = express();
app.use(auditExpress(audit, { actor: (req) => req.get('x-user') ?? null }));
app.get('/invoices/:id', (req, res) => {
  void audit.record({ objectType: 'invoice', objectId: req.params.id, action: 'read' });
  res.json({ id: req.params.id });
});
const server = app.listen(0, '127.0.0.1', async () => {
  const res = await fetch('http://127.0.0.1:' + server.address().port + '/invoices/' + process.env.OBJECT_ID, { headers: { 'x-user': 'cjs-user' } });
  const body = await res.json();
  server.close();
  const delivered = await audit.flush(20000);
  await audit.close();
  console.log(JSON.stringify({ status: res.status, body, delivered, stats: audit.stats() }));
});
`;

// The /nestjs and /prisma subpaths as import and as require (ESM module in the CommonJS app).
const NAMES_MJS = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const names = {};
for (const sub of ${JSON.stringify(FRAMEWORK_SUBPATHS)}) {
  const esm = Object.keys(await import('audit-pipeline/' + sub)).filter((k) => k !== 'default' && k !== 'module.exports' && k !== '__esModule');
  const cjs = Object.keys(require('audit-pipeline/' + sub)).filter((k) => k !== '__esModule');
  names[sub] = { esm: esm.sort(), cjs: cjs.sort() };
}
console.log(JSON.stringify(names));
`;

// CommonJS: a Nest app (decorators applied by hand: plain JavaScript has no decorator syntax).
const NEST_APP = `
require('reflect-metadata');
const { Controller, Get, Module, Param } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { AuditClient } = require('audit-pipeline/producer');
const { AuditModule, Audited } = require('audit-pipeline/nestjs');
class InvoicesController {
  read(id) { return { id }; }
}
Controller('invoices')(InvoicesController);
const read = Object.getOwnPropertyDescriptor(InvoicesController.prototype, 'read');
Param('id')(InvoicesController.prototype, 'read', 0);
Audited('invoice.read')(InvoicesController.prototype, 'read', read);
Get(':id')(InvoicesController.prototype, 'read', read);
const audit = new AuditClient({ brokers: [process.env.BROKERS], topic: process.env.TOPIC, sourceService: 'nest-app' });
class AppModule {}
Module({ imports: [AuditModule.forRoot({ client: audit, http: { actor: (req) => req.headers['x-user'] ?? null } })], controllers: [InvoicesController] })(AppModule);
(async () => {
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const res = await fetch((await app.getUrl()) + '/invoices/' + process.env.OBJECT_ID, { headers: { 'x-user': 'nest-user' } });
  const body = await res.json();
  await app.close();
  const delivered = await audit.flush(20000);
  await audit.close();
  console.log(JSON.stringify({ status: res.status, body, delivered, stats: audit.stats() }));
})();
`;

// Type checks: real uses of each subpath, and mistakes that must be reported (an expect-error
// directive that no error meets fails the check, so a check that resolved nothing cannot pass).
const TS_PRODUCER = `
import { AuditClient, AuditInputError, runWithAuditContext, MIN_OCCURRED_AT_MICROS, type AuditEventInput, type AuditStats } from 'audit-pipeline/producer';
const audit: AuditClient = new AuditClient({ sourceService: 'app', onBufferFull: 'fail' });
const input: AuditEventInput = { objectType: 'invoice', objectId: 42, action: 'update', after: { status: 'sent' }, occurredAt: new Date(MIN_OCCURRED_AT_MICROS / 1000) };
runWithAuditContext({ actorId: 'a' }, () => audit.record(input)).catch((err: unknown) => {
  if (err instanceof AuditInputError) console.log(err.problems.join(', '));
});
const stats: AuditStats = audit.stats();
export const delivered: number = stats.delivered;
// @ts-expect-error objectId is required
void audit.record({ objectType: 'invoice', action: 'create' });
// @ts-expect-error onBufferFull is 'drop' | 'block' | 'fail'
new AuditClient({ onBufferFull: 'wait' });
`;

const TS_FRAMEWORKS = `
import { AuditClient, createHookStats } from 'audit-pipeline/producer';
import { auditExpress, auditExpressErrors, type AuditExpressOptions } from 'audit-pipeline/express';
import { auditFastify, type AuditFastifyOptions } from 'audit-pipeline/fastify';
import { attachTypeormAudit, type TypeormAuditOptions } from 'audit-pipeline/typeorm';
import { auditSequelize, type SequelizeAuditHandle } from 'audit-pipeline/sequelize';
import { prismaAudit, prismaCdcContext, type PrismaAuditOptions } from 'audit-pipeline/prisma';
import { AuditModule, Audited, AUDIT_CLIENT, type AuditModuleOptions } from 'audit-pipeline/nestjs';
import { withAuditTransaction, capturedTables } from 'audit-pipeline/cdc';
import { Pool } from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import type { DynamicModule } from '@nestjs/common';
import express = require('express');
import Fastify from 'fastify';
import type { DataSource } from 'typeorm';
import type { Sequelize } from 'sequelize';

const audit = new AuditClient({ sourceService: 'app' });
const stats = createHookStats();
const options: AuditExpressOptions = { exclude: ['/health'], actor: (req) => req.get('x-user') ?? null, stats };
const app = express();
app.use(auditExpress(audit, options));
app.use(auditExpressErrors());
const fastifyOptions: AuditFastifyOptions = { client: audit, stats };
void Fastify().register(auditFastify, fastifyOptions);
const ormOptions: TypeormAuditOptions = { exclude: ['Session'], captureCriteria: true };
export const attach = (ds: DataSource) => attachTypeormAudit(ds, audit, ormOptions);
export const hooks = (sq: Sequelize): SequelizeAuditHandle => auditSequelize(sq, audit, { bulk: 'statement' });
const prismaOptions: PrismaAuditOptions = { exclude: ['sessions'], models: { Invoice: { idFields: ['number'], objectType: 'invoice' } } };
export const prismaExtension = prismaAudit(audit, prismaOptions);
export const prismaHookStats: number = prismaExtension.stats.recorded;
export const adapter: PrismaPg = prismaCdcContext(new PrismaPg({ connectionString: 'postgresql://localhost/app' }));
const nestOptions: AuditModuleOptions = { client: audit, http: { exclude: ['/health'], requestEvents: true } };
export const auditModule: DynamicModule = AuditModule.forRoot(nestOptions);
export const asyncModule: DynamicModule = AuditModule.forRootAsync({ inject: [AUDIT_CLIENT], useFactory: () => ({ clientOptions: { sourceService: 'app' } }) });
export const approve: MethodDecorator = Audited('invoice.approve', { objectId: (call) => String(call.params.id) });
export const shipped = (pool: Pool): Promise<number> => withAuditTransaction(pool, async (c) => (await c.query('SELECT 1')).rowCount ?? 0);
export const captured: Promise<string[]> = capturedTables(new Pool(), 'audit_cdc');
// @ts-expect-error an extension's options are checked (idFields is a list)
export const wrongPrisma = prismaAudit(audit, { models: { Invoice: { idFields: 'number' } } });
// @ts-expect-error @Audited needs an action
export const wrongAudited = Audited();
// @ts-expect-error the Express actor extractor receives an Express request
export const wrong: AuditExpressOptions = { actor: (req: { nope: true }) => req.nope };
// @ts-expect-error bulk is 'rows' | 'statement'
export const wrongBulk = (sq: Sequelize) => auditSequelize(sq, audit, { bulk: 'all' });
`;

function tsconfig(file: string, module: string, moduleResolution: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, esModuleInterop: true, target: 'ES2022', types: ['node'], module, moduleResolution, ...extra },
    files: [file],
  });
}

describe('the package as an app installs it (npm pack, ESM and CommonJS apps, real Kafka)', () => {
  const topic = `test.pkg-${randomUUID().slice(0, 8)}`;
  const objectId = `pkg-${randomUUID().slice(0, 8)}`;
  const reader = new TopicReader(topic);
  let dir = '';
  let esmDir = '';
  let cjsDir = '';
  let tarball = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-pkg-'));
    // dist/ is built by test/run.sh; --ignore-scripts so packing does not rebuild it.
    const packed = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
    tarball = join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    esmDir = join(dir, 'esm-app');
    cjsDir = join(dir, 'cjs-app');
    await mkdir(esmDir);
    await mkdir(cjsDir);
    await writeFile(join(esmDir, 'package.json'), JSON.stringify({ name: 'esm-app', private: true, type: 'module' }));
    await writeFile(join(cjsDir, 'package.json'), JSON.stringify({ name: 'cjs-app', private: true, type: 'commonjs' }));
    const npmInstall = ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball];
    // The ESM app installs the package alone (the frameworks are optional peers); @types/node is
    // installed in a second step, so the first proves the package brings no framework along.
    await sh('npm', npmInstall, esmDir);
    await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `@types/node@${installedVersion('@types/node')}`], esmDir);
    await sh(
      'npm',
      [...npmInstall, ...['express', '@types/express', 'fastify', 'typeorm', 'sequelize', '@types/node', '@types/pg', ...NEST_PACKAGES, ...PRISMA_PACKAGES].map((p) => `${p}@${installedVersion(p)}`)],
      cjsDir,
    );
    await reader.start();
  }, 300_000);

  afterAll(async () => {
    await reader.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('packs what an app needs and nothing of the sources, tests or benchmarks', async () => {
    const listing = await sh('tar', ['-tzf', tarball], dir);
    const files = listing.stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
    const entry = (sub: string) => (sub === 'cdc' ? 'dist/cdc/index' : `dist/producer/entries/${sub}`);
    for (const sub of [...SUBPATHS, ...FRAMEWORK_SUBPATHS]) expect(files).toEqual(expect.arrayContaining([`${entry(sub)}.js`, `${entry(sub)}.d.ts`]));
    expect(files).toEqual(expect.arrayContaining(['dist/consumer/cli.js', 'dist/bin/audit-query.js', 'dist/maintenance/cli.js', 'schemas/avro/audit-event.v2.avsc', 'package.json', 'README.md']));
    expect(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => /^(test|bench|infra|dist\/bench|dist\/test|dist\/producer\/examples)\//.test(f) || f.endsWith('.map'))).toEqual([]);
    const manifest = JSON.parse(await readFile(join(esmDir, 'node_modules', 'audit-pipeline', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'audit-pipeline', license: 'MIT', engines: { node: '>=22.22.0' } });
    expect(manifest.private).toBeUndefined();
  });

  it('ESM app: every subpath loads without its framework, exports the same names to import and require, and records an event', async () => {
    await writeFile(join(esmDir, 'app.mjs'), ESM_APP);
    const out = await sh(process.execPath, ['app.mjs'], esmDir, { BROKERS: KAFKA_BROKERS, TOPIC: topic, OBJECT_ID: objectId });
    const result = JSON.parse(out.stdout) as {
      delivered: boolean;
      stats: { delivered: number; invalid: number };
      names: Record<string, { esm: string[]; cjs: string[] }>;
      frameworks: string[];
      deep: string | null;
    };
    expect(result).toMatchObject({ delivered: true, stats: { delivered: 1, invalid: 0 }, frameworks: [], deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    for (const sub of SUBPATHS) expect({ sub, names: result.names[sub]!.esm }).toEqual({ sub, names: result.names[sub]!.cjs });
    expect(result.names.producer!.esm).toEqual(expect.arrayContaining(['AuditClient', 'runWithAuditContext', 'updateAuditContext', 'recordLogin', 'auditProcess', 'jwtClaim']));
    expect(result.names.producer!.esm).not.toContain('auditExpress');
    expect(result.names.express!.esm).toEqual(['auditExpress', 'auditExpressErrors']);
    expect(result.names.fastify!.esm).toEqual(['auditFastify']);
    expect(result.names.typeorm!.esm).toEqual(expect.arrayContaining(['attachTypeormAudit', 'typeormAuditSubscriberClass', 'AuditSubscriber']));
    expect(result.names.sequelize!.esm).toEqual(expect.arrayContaining(['auditSequelize']));
    expect(result.names.prisma!.esm).toEqual(['prismaAudit', 'prismaCdcContext']);
    expect(result.names.cdc!.esm).toEqual(expect.arrayContaining(['withAuditTransaction', 'attachTypeormCdcContext', 'sequelizeAuditTransaction', 'prismaCdcContext', 'capturedTables']));

    const [event] = await reader.waitFor((r) => r.source_service === 'esm-app' && r.object_id === objectId);
    expect(event).toMatchObject({ object_type: 'invoice', action: 'update', actor_id: 'esm-user', request_id: 'esm-req', changes: { status: { old: '"draft"', new: '"sent"' } } });
  }, 120_000);

  it('CommonJS app: the Express middleware and an explicit event, both on the topic', async () => {
    await writeFile(join(cjsDir, 'app.js'), CJS_APP);
    const out = await sh(process.execPath, ['app.js'], cjsDir, { BROKERS: KAFKA_BROKERS, TOPIC: topic, OBJECT_ID: objectId });
    const result = JSON.parse(out.stdout) as { status: number; delivered: boolean; stats: { delivered: number } };
    expect(result).toMatchObject({ status: 200, delivered: true, stats: { delivered: 2 } });
    const events = await reader.waitFor((r) => r.source_service === 'cjs-app', 2);
    const byAction = Object.fromEntries(events.map((e) => [e.action, e]));
    expect(byAction.read).toMatchObject({ object_type: 'invoice', object_id: objectId, actor_id: 'cjs-user', http_method: 'GET', http_path: `/invoices/${objectId}` });
    expect(byAction.request).toMatchObject({ object_type: 'http_request', actor_id: 'cjs-user', http_status: 200, http_path: `/invoices/${objectId}` });
    // The explicit event ran inside the middleware's context: same request id.
    expect(byAction.read!.request_id).toBe(byAction.request!.request_id);
  }, 120_000);

  it('CommonJS app: /nestjs and /prisma load as import and as require; a Nest app records the request and an @Audited event', async () => {
    await writeFile(join(cjsDir, 'names.mjs'), NAMES_MJS);
    const names = JSON.parse((await sh(process.execPath, ['names.mjs'], cjsDir)).stdout) as Record<string, { esm: string[]; cjs: string[] }>;
    for (const sub of FRAMEWORK_SUBPATHS) expect({ sub, names: names[sub]!.esm }).toEqual({ sub, names: names[sub]!.cjs });
    expect(names.nestjs!.esm).toEqual(expect.arrayContaining(['AuditModule', 'AuditInterceptor', 'Audited', 'InjectAuditClient', 'AUDIT_CLIENT']));
    expect(names.prisma!.esm).toEqual(['prismaAudit', 'prismaCdcContext']);

    await writeFile(join(cjsDir, 'nest-app.js'), NEST_APP);
    const out = await sh(process.execPath, ['nest-app.js'], cjsDir, { BROKERS: KAFKA_BROKERS, TOPIC: topic, OBJECT_ID: objectId });
    const result = JSON.parse(out.stdout) as { status: number; delivered: boolean; stats: { delivered: number } };
    expect(result).toMatchObject({ status: 200, body: { id: objectId }, delivered: true, stats: { delivered: 2 } });
    const events = await reader.waitFor((r) => r.source_service === 'nest-app', 2);
    const byAction = Object.fromEntries(events.map((e) => [e.action, e]));
    expect(byAction['invoice.read']).toMatchObject({ object_type: 'invoice', object_id: objectId, actor_id: 'nest-user' });
    expect(byAction.request).toMatchObject({ object_type: 'http_request', actor_id: 'nest-user', http_status: 200, http_path: `/invoices/${objectId}` });
    expect(byAction['invoice.read']!.request_id).toBe(byAction.request!.request_id);
  }, 120_000);

  it('the bins run from the install: audit-query --help, audit-admin maintain --help, and audit-consumer refuses a bad store URL in one line (exit 2)', async () => {
    const bin = (name: string) => join(cjsDir, 'node_modules', '.bin', name);
    expect(await exists(bin('audit-consumer'))).toBe(true);
    const help = await exitOf(bin('audit-query'), ['--help'], cjsDir, {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--object/);
    const bad = await exitOf(bin('audit-consumer'), ['--drain'], cjsDir, { AUDIT_STORE_URL: 'ftp://x' });
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^audit-consumer: invalid configuration: AUDIT_STORE_URL: [^\n]*\n$/) });
    const admin = await exitOf(bin('audit-admin'), ['maintain', '--help'], cjsDir, {});
    expect({ code: admin.code, help: /--dry-run/.test(admin.stdout) }).toEqual({ code: 0, help: true });
  }, 60_000);

  it('types resolve: /producer with no framework installed (node16 ESM, bundler), every subpath in the CommonJS app (node16, node10)', async () => {
    await writeFile(join(esmDir, 'check.ts'), TS_PRODUCER);
    await writeFile(join(esmDir, 'tsconfig.node16.json'), tsconfig('check.ts', 'node16', 'node16'));
    await writeFile(join(esmDir, 'tsconfig.bundler.json'), tsconfig('check.ts', 'preserve', 'bundler'));
    await writeFile(join(cjsDir, 'check.ts'), TS_FRAMEWORKS);
    await writeFile(join(cjsDir, 'tsconfig.node16.json'), tsconfig('check.ts', 'node16', 'node16'));
    // node10 ignores "exports": the subpaths resolve through "typesVersions".
    await writeFile(join(cjsDir, 'tsconfig.node10.json'), tsconfig('check.ts', 'commonjs', 'node10'));
    for (const [cwd, project] of [
      [esmDir, 'tsconfig.node16.json'],
      [esmDir, 'tsconfig.bundler.json'],
      [cjsDir, 'tsconfig.node16.json'],
      [cjsDir, 'tsconfig.node10.json'],
    ] as const) {
      const res = await exitOf(process.execPath, [TSC, '-p', project], cwd, {});
      expect({ cwd, project, code: res.code, out: res.stdout }).toEqual({ cwd, project, code: 0, out: '' });
    }
    // The same check with a mistake the types must catch: the checks above did resolve the types.
    await writeFile(join(esmDir, 'check.ts'), `${TS_PRODUCER}\nexport const typo: AuditStats = { delivered: 'many' };\n`);
    const broken = await exitOf(process.execPath, [TSC, '-p', 'tsconfig.node16.json'], esmDir, {});
    expect(broken.code).not.toBe(0);
    expect(broken.stdout).toMatch(/check\.ts\(\d+,\d+\): error TS2322/);
    // Five tsc runs with skipLibCheck off over Nest's and Prisma's declarations: minutes on a loaded 2-core host.
  }, 600_000);
});
