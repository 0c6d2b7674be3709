/**
 * The two packages as apps and operators get them: `npm pack` of packages/audit-pipeline
 * (recording) and packages/services (the commands), each installed into a fresh ESM app
 * and a fresh CommonJS app in a temp dir. The ESM app installs the recording package alone
 * first: its installed size (every file under node_modules, summed) must stay within
 * RECORDING_BUDGET_BYTES, no installed package may carry an install script, npm must print
 * no warning, and the services' heavy dependencies (DuckDB, the AWS SDK, pg, zod, pino, the
 * schema registry client) are absent while every subpath loads and an event is recorded with
 * plain `record()`. The CommonJS app records through Express (and a Nest app). The events of
 * both are then drained by audit-consumer and read back with audit-query, each app reading
 * the other's events from its own install of the services package, against the real Kafka
 * and MinIO. The typed subpaths are type-checked by the project's TypeScript (strict,
 * skipLibCheck off) under moduleResolution node16, bundler and node10.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir, access, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KAFKA_BROKERS, ROOT, isolatedEnv } from '../helpers/infra';

const run = promisify(execFile);
/** The target for the recording package with its dependencies, installed. */
const RECORDING_BUDGET_BYTES = 15_000_000;
/** Packages the services need and an app that only records must not get. */
const SERVICE_ONLY = ['zod', '@duckdb/node-api', '@aws-sdk/client-s3', 'pg', 'pg-logical-replication', 'pino', 'commander', 'prom-client', '@kafkajs/confluent-schema-registry'];
const SUBPATHS = ['producer', 'express', 'fastify', 'typeorm', 'sequelize', 'prisma', 'cdc', 'embed'] as const;
/** Subpaths whose module loads its framework: checked where the frameworks are installed. */
const FRAMEWORK_SUBPATHS = ['nestjs', 'prisma'] as const;
const NEST_PACKAGES = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', 'rxjs', 'reflect-metadata'];
const PRISMA_PACKAGES = ['@prisma/client', '@prisma/adapter-pg'];
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const installedVersion = (pkg: string) => require(join(ROOT, 'node_modules', pkg, 'package.json')).version as string;

async function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}, timeout = 240_000) {
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

interface Footprint {
  /** Sum of the sizes of every file under node_modules (npm's "unpacked size", not disk blocks). */
  bytes: number;
  packages: string[];
  /** `name@version: script` of installed packages that run something at install (npm runs node-gyp for a binding.gyp). */
  installScripts: string[];
}

/** What an install put under node_modules. */
async function footprint(nodeModules: string): Promise<Footprint> {
  const result: Footprint = { bytes: 0, packages: [], installScripts: [] };
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) continue;
      if (entry.isDirectory()) await visit(path);
      else if (entry.isFile()) result.bytes += (await lstat(path)).size;
    }
  };
  await visit(nodeModules);
  const packageDirs = async (dir: string): Promise<string[]> => {
    const found: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.name.startsWith('@')) found.push(...(await packageDirs(path)));
      else if (await exists(join(path, 'package.json'))) found.push(path, ...(await packageDirs(join(path, 'node_modules'))));
    }
    return found;
  };
  for (const dir of await packageDirs(nodeModules)) {
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; scripts?: Record<string, string> };
    result.packages.push(`${manifest.name}@${manifest.version}`);
    for (const hook of ['preinstall', 'install', 'postinstall'] as const) {
      if (manifest.scripts?.[hook]) result.installScripts.push(`${manifest.name}@${manifest.version}: ${hook}`);
    }
    if (!manifest.scripts?.install && !manifest.scripts?.preinstall && (await exists(join(dir, 'binding.gyp')))) result.installScripts.push(`${manifest.name}@${manifest.version}: node-gyp`);
  }
  return result;
}

// ESM: every subpath loads with only the recording package installed (no framework, none of
// the services' dependencies), the names each exports to import and to require, and one event
// recorded with plain record() inside a request context.
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
await runWithAuditContext({ actorId: 'esm-user', requestId: 'esm-req' }, async () => {
  await audit.record({ objectType: 'invoice', objectId: process.env.OBJECT_ID, action: 'update', changes: { status: { old: 'draft', new: 'sent' } } });
});
const delivered = await audit.flush(20000);
await audit.close();
const present = (m) => { try { require.resolve(m); return true; } catch { return false; } };
const frameworks = ['express', 'fastify', 'typeorm', 'sequelize', '@prisma/client', '@nestjs/common', '@nestjs/core'].filter(present);
const serviceOnly = ${JSON.stringify(SERVICE_ONLY)}.filter(present);
let deep = null;
try { require('audit-pipeline/dist/producer'); } catch (err) { deep = err.code; }
console.log(JSON.stringify({ delivered, stats: audit.stats(), names, frameworks, serviceOnly, deep }));
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

// The services' library entry, as import (ESM app) and as require (CommonJS app).
const SERVICES_ESM = `
const cdc = await import('@audit-pipeline/services/cdc');
console.log(JSON.stringify(Object.keys(cdc).filter((k) => k !== 'default' && k !== 'module.exports' && k !== '__esModule').sort()));
`;
const SERVICES_CJS = `
console.log(JSON.stringify(Object.keys(require('@audit-pipeline/services/cdc')).filter((k) => k !== '__esModule').sort()));
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

// The services' library entry, from the CommonJS app.
const TS_SERVICES = `
import { AuditCdcService, CdcSetupError, withAuditTransaction } from '@audit-pipeline/services/cdc';
export const cdcService: typeof AuditCdcService = AuditCdcService;
export const setupFailed = (err: unknown): boolean => err instanceof CdcSetupError;
export const helper: typeof withAuditTransaction = withAuditTransaction;
// @ts-expect-error the service needs its options
export const wrongService = new AuditCdcService();
`;

function tsconfig(file: string, module: string, moduleResolution: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, esModuleInterop: true, target: 'ES2022', types: ['node'], module, moduleResolution, ...extra },
    files: [file],
  });
}

describe('the packages as apps install them (npm pack, ESM and CommonJS apps, real Kafka and MinIO)', () => {
  const pipeline = isolatedEnv('pkg');
  const esmObject = `esm-${randomUUID().slice(0, 8)}`;
  const cjsObject = `cjs-${randomUUID().slice(0, 8)}`;
  const appEnv = { BROKERS: KAFKA_BROKERS, TOPIC: pipeline.AUDIT_TOPIC! };
  let dir = '';
  let esmDir = '';
  let cjsDir = '';
  const tarballs = { recording: '', services: '' };
  let recordingInstall = { stdout: '', stderr: '' };
  let recordingFootprint: Footprint = { bytes: 0, packages: [], installScripts: [] };
  let servicesFootprint: Footprint = { bytes: 0, packages: [], installScripts: [] };
  let servicesInstallStderr = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-pkg-'));
    // The package folders are assembled by `npm run build` (test/run.sh builds before the tests).
    const packed = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir, './packages/audit-pipeline', './packages/services'], ROOT);
    const [recording, services] = (JSON.parse(packed.stdout) as { filename: string }[]).map((p) => join(dir, p.filename));
    tarballs.recording = recording!;
    tarballs.services = services!;
    esmDir = join(dir, 'esm-app');
    cjsDir = join(dir, 'cjs-app');
    await mkdir(esmDir);
    await mkdir(cjsDir);
    await writeFile(join(esmDir, 'package.json'), JSON.stringify({ name: 'esm-app', private: true, type: 'module' }));
    await writeFile(join(cjsDir, 'package.json'), JSON.stringify({ name: 'cjs-app', private: true, type: 'commonjs' }));
    const npmInstall = ['install', '--no-audit', '--no-fund', '--prefer-offline'];
    // The ESM app installs the recording package alone and is measured; the services package,
    // and @types/node for the type checks, come later.
    recordingInstall = await sh('npm', [...npmInstall, tarballs.recording], esmDir);
    recordingFootprint = await footprint(join(esmDir, 'node_modules'));
    await sh('npm', [...npmInstall, `@types/node@${installedVersion('@types/node')}`], esmDir);
    // The services package alone, measured the same way, in a directory of its own.
    const opsDir = join(dir, 'ops');
    await mkdir(opsDir);
    await writeFile(join(opsDir, 'package.json'), JSON.stringify({ name: 'ops', private: true }));
    servicesInstallStderr = (await sh('npm', [...npmInstall, tarballs.services], opsDir)).stderr;
    servicesFootprint = await footprint(join(opsDir, 'node_modules'));
    await sh(
      'npm',
      [...npmInstall, tarballs.recording, tarballs.services, ...['express', '@types/express', 'fastify', 'typeorm', 'sequelize', '@types/node', '@types/pg', ...NEST_PACKAGES, ...PRISMA_PACKAGES].map((p) => `${p}@${installedVersion(p)}`)],
      cjsDir,
    );
  }, 600_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const listing = async (tarball: string) => (await sh('tar', ['-tzf', tarball], dir)).stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));

  it('packs each package with its own files, a LICENSE and a README, under one version', async () => {
    const recording = await listing(tarballs.recording);
    const entry = (sub: string) => (sub === 'embed' ? 'dist/viewer/embed/entry' : `dist/producer/entries/${sub}`);
    for (const sub of [...SUBPATHS, ...FRAMEWORK_SUBPATHS]) expect(recording).toEqual(expect.arrayContaining([`${entry(sub)}.js`, `${entry(sub)}.d.ts`]));
    expect(recording).toEqual(expect.arrayContaining(['dist/producer/transport/worker-main.js', 'schemas/avro/audit-event.v2.avsc', 'package.json', 'README.md', 'LICENSE']));
    // Nothing of the services: they are the other package.
    expect(recording.filter((f) => /^dist\/(consumer|query|maintenance|cdc|storage|trust|ops|kafka)\//.test(f))).toEqual([]);
    expect(recording.filter((f) => f.startsWith('dist/viewer/')).sort()).toEqual(['dist/viewer/embed/entry.d.ts', 'dist/viewer/embed/entry.js', 'dist/viewer/embed/token.d.ts', 'dist/viewer/embed/token.js']);
    const services = await listing(tarballs.services);
    expect(services).toEqual(expect.arrayContaining(['dist/consumer/cli.js', 'dist/bin/audit-query.js', 'dist/maintenance/cli.js', 'dist/cdc/cli.js', 'dist/cdc/index.d.ts', 'package.json', 'README.md', 'LICENSE']));
    for (const files of [recording, services]) {
      expect(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
      expect(files.filter((f) => /^(test|bench|infra|dist\/bench|dist\/test|dist\/producer\/examples)\//.test(f) || f.endsWith('.map'))).toEqual([]);
    }
    const manifest = async (app: string, name: string) => JSON.parse(await readFile(join(app, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, unknown>;
    const rootVersion = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const [name, directory] of [['audit-pipeline', 'packages/audit-pipeline'], ['@audit-pipeline/services', 'packages/services']] as const) {
      const m = await manifest(cjsDir, name);
      expect(m).toMatchObject({ name, version: rootVersion, license: 'MIT', engines: { node: '>=22.22.0' }, repository: { type: 'git', url: expect.stringMatching(/^git\+https:\/\//), directory } });
      expect(m.private).toBeUndefined();
    }
    expect(await manifest(cjsDir, '@audit-pipeline/services')).toMatchObject({ bin: { 'audit-consumer': expect.any(String), 'audit-query': expect.any(String), 'audit-admin': expect.any(String), 'audit-cdc': expect.any(String) } });
    // The READMEs shown on the registry page: every link absolute (a relative one would point nowhere there).
    for (const app of ['audit-pipeline', '@audit-pipeline/services']) {
      const readme = await readFile(join(cjsDir, 'node_modules', app, 'README.md'), 'utf8');
      const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
      expect(links.length).toBeGreaterThan(0);
      expect({ app, relative: links.filter((l) => !/^(https:\/\/|#)/.test(l)) }).toEqual({ app, relative: [] });
    }
  });

  it(`the recording package installs within ${RECORDING_BUDGET_BYTES / 1e6} MB with its dependencies, runs no install script, and npm warns of nothing`, () => {
    const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
    // The figures in the README's table come from these lines.
    process.stdout.write(
      `package-install: audit-pipeline ${mb(recordingFootprint.bytes)} MB, ${recordingFootprint.packages.length} packages; ` +
        `@audit-pipeline/services ${mb(servicesFootprint.bytes)} MB, ${servicesFootprint.packages.length} packages, install scripts: ${servicesFootprint.installScripts.join(', ') || 'none'}\n`,
    );
    expect(recordingFootprint.bytes).toBeLessThanOrEqual(RECORDING_BUDGET_BYTES);
    expect(recordingFootprint.installScripts).toEqual([]);
    expect(recordingInstall.stderr.split('\n').filter((l) => /^npm (warn|error)/i.test(l))).toEqual([]);
    expect(recordingFootprint.packages.filter((p) => SERVICE_ONLY.includes(p.replace(/@[^@]+$/, '')))).toEqual([]);
    // The services bring no install script either (the schema registry client, whose protobufjs has one, is an optional peer).
    expect(servicesFootprint.installScripts).toEqual([]);
    expect(servicesInstallStderr).not.toMatch(/install-scripts|install script/i);
  });

  it('ESM app: every subpath loads with none of the services\' dependencies installed, exports the same names to import and require, and records with plain record()', async () => {
    await writeFile(join(esmDir, 'app.mjs'), ESM_APP);
    const out = await sh(process.execPath, ['app.mjs'], esmDir, { ...appEnv, OBJECT_ID: esmObject });
    const result = JSON.parse(out.stdout) as {
      delivered: boolean;
      stats: { delivered: number; invalid: number };
      names: Record<string, { esm: string[]; cjs: string[] }>;
      frameworks: string[];
      serviceOnly: string[];
      deep: string | null;
    };
    expect(result).toMatchObject({ delivered: true, stats: { delivered: 1, invalid: 0 }, frameworks: [], serviceOnly: [], deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    for (const sub of SUBPATHS) expect({ sub, names: result.names[sub]!.esm }).toEqual({ sub, names: result.names[sub]!.cjs });
    expect(result.names.producer!.esm).toEqual(expect.arrayContaining(['AuditClient', 'runWithAuditContext', 'updateAuditContext', 'recordLogin', 'auditProcess', 'jwtClaim']));
    expect(result.names.producer!.esm).not.toContain('auditExpress');
    expect(result.names.express!.esm).toEqual(['auditExpress', 'auditExpressErrors']);
    expect(result.names.fastify!.esm).toEqual(['auditFastify']);
    expect(result.names.typeorm!.esm).toEqual(expect.arrayContaining(['attachTypeormAudit', 'typeormAuditSubscriberClass', 'AuditSubscriber']));
    expect(result.names.sequelize!.esm).toEqual(expect.arrayContaining(['auditSequelize']));
    expect(result.names.prisma!.esm).toEqual(['prismaAudit', 'prismaCdcContext']);
    expect(result.names.cdc!.esm).toEqual(expect.arrayContaining(['withAuditTransaction', 'attachTypeormCdcContext', 'sequelizeAuditTransaction', 'prismaCdcContext', 'capturedTables']));
    expect(result.names.cdc!.esm).not.toContain('AuditCdcService');
    expect(result.names.embed!.esm).toEqual(expect.arrayContaining(['mintEmbedToken', 'readEmbedKeyFile', 'EmbedTokenRequestError']));
  }, 120_000);

  it('CommonJS app: the Express middleware and an explicit event are delivered', async () => {
    await writeFile(join(cjsDir, 'app.js'), CJS_APP);
    const out = await sh(process.execPath, ['app.js'], cjsDir, { ...appEnv, OBJECT_ID: cjsObject });
    expect(JSON.parse(out.stdout)).toMatchObject({ status: 200, body: { id: cjsObject }, delivered: true, stats: { delivered: 2 } });
  }, 120_000);

  it('CommonJS app: /nestjs and /prisma load as import and as require; a Nest app records the request and an @Audited event', async () => {
    await writeFile(join(cjsDir, 'names.mjs'), NAMES_MJS);
    const names = JSON.parse((await sh(process.execPath, ['names.mjs'], cjsDir)).stdout) as Record<string, { esm: string[]; cjs: string[] }>;
    for (const sub of FRAMEWORK_SUBPATHS) expect({ sub, names: names[sub]!.esm }).toEqual({ sub, names: names[sub]!.cjs });
    expect(names.nestjs!.esm).toEqual(expect.arrayContaining(['AuditModule', 'AuditInterceptor', 'Audited', 'InjectAuditClient', 'AUDIT_CLIENT']));
    expect(names.prisma!.esm).toEqual(['prismaAudit', 'prismaCdcContext']);
    await writeFile(join(cjsDir, 'nest-app.js'), NEST_APP);
    const out = await sh(process.execPath, ['nest-app.js'], cjsDir, { ...appEnv, OBJECT_ID: cjsObject });
    expect(JSON.parse(out.stdout)).toMatchObject({ status: 200, body: { id: cjsObject }, delivered: true, stats: { delivered: 2 } });
  }, 120_000);

  it('the services package, installed in either app, drains the events and reads back the other app\'s', async () => {
    await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarballs.services], esmDir);
    const bin = (app: string, name: string) => join(app, 'node_modules', '.bin', name);
    const ops = { ...pipeline, AUDIT_LOG_LEVEL: 'error' };
    const drain = await exitOf(bin(esmDir, 'audit-consumer'), ['--drain'], esmDir, ops);
    expect({ code: drain.code, stderr: drain.stderr }).toEqual({ code: 0, stderr: '' });
    const query = async (app: string, object: string) => {
      const res = await exitOf(bin(app, 'audit-query'), ['--object', object, '--format', 'json'], app, ops);
      expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
      return JSON.parse(res.stdout) as Record<string, unknown>[];
    };
    // The CommonJS app's install reads what the ESM app recorded ...
    expect(await query(cjsDir, `invoice:${esmObject}`)).toEqual([
      expect.objectContaining({ object_type: 'invoice', object_id: esmObject, action: 'update', actor_id: 'esm-user', request_id: 'esm-req', source_service: 'esm-app', changes: { status: { old: 'draft', new: 'sent' } } }),
    ]);
    // ... and the ESM app's install reads what the CommonJS apps recorded (Express, then Nest).
    const cjsEvents = await query(esmDir, `invoice:${cjsObject}`);
    expect(cjsEvents.map((e) => [e.source_service, e.action, e.actor_id])).toEqual([
      ['cjs-app', 'read', 'cjs-user'],
      ['nest-app', 'invoice.read', 'nest-user'],
    ]);
  }, 300_000);

  it('the services\' library entry loads as import and as require; the commands refuse bad input in one line', async () => {
    await writeFile(join(esmDir, 'services.mjs'), SERVICES_ESM);
    await writeFile(join(cjsDir, 'services.js'), SERVICES_CJS);
    const esmNames = JSON.parse((await sh(process.execPath, ['services.mjs'], esmDir)).stdout) as string[];
    const cjsNames = JSON.parse((await sh(process.execPath, ['services.js'], cjsDir)).stdout) as string[];
    expect(esmNames).toEqual(cjsNames);
    expect(esmNames).toEqual(expect.arrayContaining(['AuditCdcService', 'CdcReplicationError', 'CdcSetupError', 'changeEventId', 'withAuditTransaction']));
    const bin = (name: string) => join(cjsDir, 'node_modules', '.bin', name);
    const help = await exitOf(bin('audit-query'), ['--help'], cjsDir, {});
    expect({ code: help.code, object: /--object/.test(help.stdout) }).toEqual({ code: 0, object: true });
    const bad = await exitOf(bin('audit-consumer'), ['--drain'], cjsDir, { AUDIT_STORE_URL: 'ftp://x' });
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^audit-consumer: invalid configuration: AUDIT_STORE_URL: [^\n]*\n$/) });
    const admin = await exitOf(bin('audit-admin'), ['maintain', '--help'], cjsDir, {});
    expect({ code: admin.code, help: /--dry-run/.test(admin.stdout) }).toEqual({ code: 0, help: true });
    // A registry configured without its optional client library: one line naming what to install, exit 2.
    const registry = await exitOf(bin('audit-consumer'), ['--drain'], cjsDir, { ...pipeline, AUDIT_SCHEMA_REGISTRY_URL: 'http://127.0.0.1:9/' });
    expect({ code: registry.code, stderr: registry.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^audit-consumer: .*npm install @kafkajs\/confluent-schema-registry\n$/) });
  }, 120_000);

  it('types resolve: /producer with no framework installed (node16 ESM, bundler), every subpath in the CommonJS app (node16, node10), the entry of the services (node16)', async () => {
    await writeFile(join(esmDir, 'check.ts'), TS_PRODUCER);
    await writeFile(join(esmDir, 'tsconfig.node16.json'), tsconfig('check.ts', 'node16', 'node16'));
    await writeFile(join(esmDir, 'tsconfig.bundler.json'), tsconfig('check.ts', 'preserve', 'bundler'));
    await writeFile(join(cjsDir, 'check.ts'), TS_FRAMEWORKS);
    await writeFile(join(cjsDir, 'tsconfig.node16.json'), tsconfig('check.ts', 'node16', 'node16'));
    // node10 ignores "exports": the subpaths resolve through "typesVersions".
    await writeFile(join(cjsDir, 'tsconfig.node10.json'), tsconfig('check.ts', 'commonjs', 'node10'));
    // The services' declarations reach zod's, pino's and DuckDB's, whose own checking (skipLibCheck off)
    // took minutes on this host; the app's use of them is checked strictly all the same.
    await writeFile(join(cjsDir, 'services.ts'), TS_SERVICES);
    await writeFile(join(cjsDir, 'tsconfig.services.json'), tsconfig('services.ts', 'node16', 'node16', { skipLibCheck: true }));
    for (const [cwd, project] of [
      [esmDir, 'tsconfig.node16.json'],
      [esmDir, 'tsconfig.bundler.json'],
      [cjsDir, 'tsconfig.node16.json'],
      [cjsDir, 'tsconfig.node10.json'],
      [cjsDir, 'tsconfig.services.json'],
    ] as const) {
      const res = await exitOf(process.execPath, [TSC, '-p', project], cwd, {});
      expect({ cwd, project, code: res.code, out: res.stdout }).toEqual({ cwd, project, code: 0, out: '' });
    }
    // The same check with a mistake the types must catch: the checks above did resolve the types.
    await writeFile(join(esmDir, 'check.ts'), `${TS_PRODUCER}\nexport const typo: AuditStats = { delivered: 'many' };\n`);
    const broken = await exitOf(process.execPath, [TSC, '-p', 'tsconfig.node16.json'], esmDir, {});
    expect(broken.code).not.toBe(0);
    expect(broken.stdout).toMatch(/check\.ts\(\d+,\d+\): error TS2322/);
    // Five tsc runs with skipLibCheck off over Nest's and Prisma's declarations, and one over the services' entry: minutes on a loaded 2-core host.
  }, 600_000);
});
