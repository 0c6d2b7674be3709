/**
 * The READMEs' usage examples, run as written. Every TypeScript or JavaScript block of
 * the repository's Markdown (the READMEs of the root, the folders and the packages, and
 * the reference pages beside them, producer/docs/) is marked with the
 * scenario that runs it, `<!-- example: NAME -->` on the line before its fence; a block
 * without a mark, or with a mark no scenario here knows, fails. A scenario supplies only
 * what a block takes from its surroundings (an open `audit` client, a database, a request
 * to serve) and nothing of what it shows. Each block runs as an ES module in its own
 * process, importing `audit-pipeline/...` from the assembled package (packages/audit-pipeline,
 * through its "exports"), against the real Kafka and PostgreSQL; then audit-consumer drains
 * the topic into MinIO and `audit-query sql` reads the store back: each block's events must
 * be there, so an example that loses events fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Pool } from 'pg';
import ts from 'typescript';
import { ROOT, isolatedEnv, runCliOk } from '../helpers/infra';
import { CdcProcess, PG_URL } from '../helpers/cdc';

interface Block {
  file: string;
  line: number;
  lang: string;
  name: string | null;
  code: string;
}

/** A stored event, as `audit-query sql --format json` prints the columns selected below. */
interface Row {
  occurred_at: string;
  source_service: string | null;
  object_type: string;
  object_id: string;
  action: string;
  actor_id: string | null;
  tenant_id: string | null;
  http_path: string | null;
  http_status: number | null;
  after: unknown;
  /** JSON text of the string map. */
  metadata: string | Record<string, string> | null;
}

interface Scenario {
  /** Statements before the block: what it uses without defining (imports under names of their own). */
  before?: string;
  /** Statements after it: drive what it set up, then deliver what is buffered. */
  after?: string;
  /** The events the block must have stored, among those recorded while it ran (none for a block that records nothing: `after` checks what it made). */
  check?(rows: Row[]): void;
}

const CODE_LANGS = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);

/** Every fenced block of a Markdown file, with the example mark on the line before it, if any. */
export function fencedBlocks(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`${file}:${i + 1}: unclosed code fence`);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const mark = k >= 0 ? /^<!--\s*example:\s*([\w-]+)\s*-->$/.exec(lines[k]!.trim()) : null;
    found.push({ file, line: i + 1, lang: open[1]!.toLowerCase(), name: mark?.[1] ?? null, code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return found;
}

/** Every Markdown file of the repository (the READMEs and the reference pages beside them), relative to its root. */
async function readmes(dir = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules' && entry.name !== 'dist') found.push(...(await readmes(path)));
    else if (entry.isFile() && entry.name.endsWith('.md')) found.push(path);
  }
  return found;
}

const byService = (rows: Row[], service: string) => rows.filter((r) => r.source_service === service);
const actions = (rows: Row[]) => rows.map((r) => `${r.object_type}:${r.object_id} ${r.action}`).sort();

const TABLE = `readme_invoices_${randomUUID().slice(0, 8)}`;
/** A database of the examples' own: the README's table names (invoices, prisma_invoice), its default publication (audit_cdc). */
const DATABASE = `readme_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
const DATABASE_URL = PG_URL.replace(/\/[^/]*$/, `/${DATABASE}`);
/** A pool, TypeORM data source and Sequelize instance on it, and the generated Prisma client, for the blocks that use them without making them. */
const DATABASES = `
import __pg from 'pg';
import { DataSource as __DataSource, EntitySchema as __EntitySchema } from 'typeorm';
import { Sequelize as __Sequelize } from 'sequelize';
import { createRequire as __createRequire } from 'node:module';
import { AuditClient as __AuditClient, runWithAuditContext as __run } from 'audit-pipeline/producer';
const pool = new __pg.Pool({ connectionString: process.env.PG_URL });
const __Invoice = new __EntitySchema({ name: 'Invoice', tableName: 'invoices', columns: { id: { type: Number, primary: true, generated: true }, customer_id: { type: Number }, status: { type: String } } });
const dataSource = new __DataSource({ type: 'postgres', url: process.env.PG_URL, entities: [__Invoice], logging: false });
await dataSource.initialize();
const sequelize = new __Sequelize(process.env.PG_URL, { logging: false });
const { PrismaClient } = __createRequire(import.meta.url)(process.env.PRISMA_CLIENT);
`;
const CLOSE_DATABASES = `
await dataSource.destroy();
await sequelize.close();
await pool.end();
`;

const SCENARIOS: Record<string, Scenario> = {
  // README.md and packages/audit-pipeline/README.md: the client, the request context, a custom event.
  record: {
    before: `async function saveInvoice() {}`,
    check(rows) {
      const billing = byService(rows, 'billing');
      expect(billing.find((r) => r.object_type === 'invoice' && r.object_id === '42' && r.action === 'update')).toMatchObject({ actor_id: 'alice', tenant_id: 'acme' });
      // The card number the example puts in `after` is stored masked.
      expect(JSON.parse(billing.find((r) => r.object_id === '42')!.after as string)).toEqual({ status: 'sent', total: 1350, card_number: '[MASKED]' });
    },
  },
  // packages/audit-pipeline/README.md: the same, shorter.
  'record-package': {
    check(rows) {
      expect(byService(rows, 'billing')).toEqual([expect.objectContaining({ object_type: 'invoice', object_id: '42', action: 'update', actor_id: 'alice', tenant_id: 'acme' })]);
    },
  },
  // producer/README.md and producer/docs/http.md: the Express middleware; the block builds the app, the scenario serves one request.
  express: {
    before: `
import * as __express from 'express';
const passport = { session: () => (req, res, next) => next() };
const invoicesRouter = __express.Router();
invoicesRouter.get('/:id', (req, res) => res.json({ id: req.params.id }));
const myErrorHandler = (err, req, res, next) => res.status(500).end();
`,
    after: `
const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
const res = await fetch('http://127.0.0.1:' + server.address().port + '/invoices/42');
if (res.status !== 200) throw new Error('GET /invoices/42 answered ' + res.status);
await new Promise((resolve) => server.close(resolve));
await audit.close();
`,
    check(rows) {
      expect(byService(rows, 'billing').filter((r) => r.action === 'request')).toEqual([expect.objectContaining({ object_type: 'http_request', http_path: '/invoices/42', http_status: 200 })]);
    },
  },
  // producer/docs/http.md: the Fastify plugin; the scenario adds the route the block leaves to the app.
  fastify: {
    after: `
app.get('/invoices/:id', async (req) => ({ id: req.params.id }));
const res = await app.inject({ method: 'GET', url: '/invoices/42' });
if (res.statusCode !== 200) throw new Error('GET /invoices/42 answered ' + res.statusCode);
await app.close();
await audit.close();
`,
    check(rows) {
      expect(byService(rows, 'docs').filter((r) => r.action === 'request')).toEqual([expect.objectContaining({ object_type: 'http_request', http_path: '/invoices/42', http_status: 200 })]);
    },
  },
  // producer/docs/http.md: login, logout and a failed login, recorded explicitly.
  login: {
    before: `
import { AuditClient as __AuditClient } from 'audit-pipeline/producer';
const audit = new __AuditClient({ sourceService: 'docs-login' });
const user = { id: 'u-7' };
const req = { body: { email: 'bob@example.com' } };
`,
    after: `await audit.close();`,
    check(rows) {
      expect(byService(rows, 'docs-login').map((r) => r.action).sort()).toEqual(['login', 'login_failed', 'logout']);
    },
  },
  // producer/docs/orm.md: the TypeORM subscriber, on a real PostgreSQL table.
  typeorm: {
    before: `
import { AuditClient as __AuditClient } from 'audit-pipeline/producer';
import { DataSource as __DataSource, EntitySchema as __EntitySchema } from 'typeorm';
const audit = new __AuditClient({ sourceService: 'docs-typeorm' });
const __Invoice = new __EntitySchema({ name: 'Invoice', tableName: '${TABLE}_t', columns: { id: { type: Number, primary: true, generated: true }, status: { type: String } } });
const dataSource = new __DataSource({ type: 'postgres', url: process.env.PG_URL, entities: [__Invoice], synchronize: true, logging: false });
`,
    after: `
const __saved = await dataSource.getRepository('Invoice').save({ status: 'draft' });
await dataSource.getRepository('Invoice').update(__saved.id, { status: 'sent' });
await dataSource.getRepository('Invoice').save({ ...__saved, status: 'paid' });
await dataSource.query('DROP TABLE "${TABLE}_t"');
await dataSource.destroy();
await audit.close();
`,
    check(rows) {
      const events = byService(rows, 'docs-typeorm');
      expect(events.map((r) => r.action)).toEqual(expect.arrayContaining(['create', 'update']));
      expect(new Set(events.map((r) => r.object_id)).size).toBe(1);
    },
  },
  // producer/docs/orm.md: the Sequelize hooks, on a real PostgreSQL table.
  sequelize: {
    before: `
import { AuditClient as __AuditClient } from 'audit-pipeline/producer';
import { Sequelize as __Sequelize, DataTypes as __DataTypes } from 'sequelize';
const audit = new __AuditClient({ sourceService: 'docs-sequelize' });
const sequelize = new __Sequelize(process.env.PG_URL, { logging: false });
const __Invoice = sequelize.define('Invoice', { status: __DataTypes.STRING }, { tableName: '${TABLE}_s' });
`,
    after: `
await __Invoice.sync();
const __row = await __Invoice.create({ status: 'draft' });
await __row.update({ status: 'sent' });
await __Invoice.drop();
await sequelize.close();
await audit.close();
`,
    check(rows) {
      const events = byService(rows, 'docs-sequelize');
      expect(events.map((r) => r.action)).toEqual(['create', 'update']);
      expect(events.every((r) => r.object_id === events[0]!.object_id)).toBe(true);
    },
  },
  // producer/docs/nestjs.md: the NestJS module, the interceptor and @Audited, on a Nest app serving two requests.
  nestjs: {
    before: `
import 'reflect-metadata';
import { Controller, Module, Param, Post } from '@nestjs/common';
import { NestFactory as __NestFactory } from '@nestjs/core';
`,
    after: `
const __app = await __NestFactory.create(AppModule, { logger: false });
await __app.listen(0, '127.0.0.1');
for (const path of ['/invoices/42/approve', '/invoices/42/export']) {
  const res = await fetch((await __app.getUrl()) + path, { method: 'POST' });
  if (res.status !== 201) throw new Error('POST ' + path + ' answered ' + res.status);
}
await __app.close();
`,
    check(rows) {
      expect(actions(byService(rows, 'billing').filter((r) => r.action !== 'request'))).toEqual(['invoice:42 invoice.approve', 'invoice:42 invoice.export']);
      expect(byService(rows, 'billing').filter((r) => r.action === 'request')).toHaveLength(2);
    },
  },
  // producer/docs/orm.md: the Prisma extension (and the adapter wrapper of change capture), on the tests' generated client.
  prisma: {
    before: `${DATABASES}
const audit = new __AuditClient({ sourceService: 'docs-prisma' });
import { capturedTables } from 'audit-pipeline/cdc';
`,
    after: `
const __invoice = await prisma.invoice.create({ data: { number: 'INV-DOCS', status: 'draft', total: 100 } });
await prisma.invoice.update({ where: { id: __invoice.id }, data: { status: 'sent' } });
await prisma.$disconnect();
await audit.close();
${CLOSE_DATABASES}`,
    check(rows) {
      expect(byService(rows, 'docs-prisma').map((r) => `${r.object_type} ${r.action}`)).toEqual(['invoice create', 'invoice update']);
    },
  },
  // cdc/README.md: the request's context on the app's transactions, read by audit-cdc from the WAL.
  'cdc-context': {
    before: `${DATABASES}
import { PrismaPg } from '@prisma/adapter-pg';
await __run({ actorId: 'docs-cdc', requestId: 'req-cdc' }, async () => {
`,
    after: `
await prisma.$transaction(async (tx) => tx.$executeRawUnsafe("UPDATE invoices SET status = 'refunded' WHERE customer_id = 7"));
await prisma.$disconnect();
});
${CLOSE_DATABASES}`,
    check(rows) {
      const changes = byService(rows, 'audit-cdc').filter((r) => r.object_type === 'invoices' || r.object_type.endsWith('invoices'));
      // Two rows of customer 7, changed by pg, Sequelize and Prisma transactions: each change with the request's actor.
      expect(changes.map((r) => `${r.action} ${r.actor_id}`)).toEqual(Array(6).fill('update docs-cdc'));
    },
  },
  // cdc/README.md: the ORM hooks leave the tables audit-cdc captures to it.
  'cdc-exclude': {
    before: `${DATABASES}
import { attachTypeormAudit } from 'audit-pipeline/typeorm';
import { attachTypeormCdcContext, capturedTables } from 'audit-pipeline/cdc';
const audit = new __AuditClient({ sourceService: 'docs-cdc-exclude' });
`,
    after: `
await __run({ actorId: 'docs-exclude' }, async () => {
  const __repo = dataSource.getRepository('Invoice');
  const __row = await __repo.findOneBy({ customer_id: 8 });
  await __repo.save({ ...__row, status: 'void' });
});
await audit.close();
${CLOSE_DATABASES}`,
    check(rows) {
      // The hook left the captured table to audit-cdc, which has the change with the request's actor from the stitched context.
      expect(byService(rows, 'docs-cdc-exclude')).toEqual([]);
      expect(byService(rows, 'audit-cdc').map((r) => `${r.action} ${r.actor_id}`)).toEqual(['update docs-exclude']);
    },
  },
  // producer/README.md: explicit events, the context completed once authentication knows the user, a login, a process.
  events: {
    before: `
import { AuditClient as __AuditClient, runWithAuditContext as __run } from 'audit-pipeline/producer';
const audit = new __AuditClient({ sourceService: 'docs-events' });
const user = { id: 'u-9', orgId: 'org-3' };
const req = { body: { email: 'bob@example.com' } };
const rows = [{ id: 1 }];
const renderPdf = async (rows) => rows.length;
await __run({ requestId: 'req-docs' }, async () => {
`,
    after: `
});
await audit.close();
`,
    check(rows) {
      const events = byService(rows, 'docs-events');
      expect(actions(events)).toEqual(expect.arrayContaining(['invoice:42 update', 'report:7 custom']));
      expect(events.map((r) => r.action)).toEqual(expect.arrayContaining(['login', 'login_failed']));
      // After updateAuditContext, events carry the user and the organisation.
      expect(events.find((r) => r.action === 'login')).toMatchObject({ actor_id: 'u-9', tenant_id: 'org-3' });
    },
  },
  // producer/docs/events.md: a process with steps.
  process: {
    before: `
import { AuditClient as __AuditClient } from 'audit-pipeline/producer';
const audit = new __AuditClient({ sourceService: 'docs-process' });
const repo = { find: async () => [{ id: 1 }, { id: 2 }] };
const renderPdf = async (rows) => rows.length;
`,
    after: `await audit.close();`,
    check(rows) {
      // Two steps and the end, on the object the run names, with the step's name in the metadata.
      const events = byService(rows, 'docs-process');
      expect(actions(events)).toEqual(['invoice:42 process_end', 'invoice:42 process_step', 'invoice:42 process_step']);
      const metadata = (r: Row) => (typeof r.metadata === 'string' ? (JSON.parse(r.metadata) as Record<string, string>) : (r.metadata ?? {}));
      expect(events.filter((r) => r.action === 'process_step').map((r) => metadata(r)['process.step'])).toEqual(['load', 'render']);
    },
  },
  // viewer/embed/README.md: an embed token minted in the app; it records nothing, so the scenario reads the token back.
  embed: {
    before: `
import { rmSync as __rmSync, writeFileSync as __writeFileSync } from 'node:fs';
import { randomBytes as __randomBytes } from 'node:crypto';
import { tmpdir as __tmpdir } from 'node:os';
process.env.AUDIT_EMBED_KEY_FILE = __tmpdir() + '/readme-embed-' + process.pid + '.key';
__writeFileSync(process.env.AUDIT_EMBED_KEY_FILE, __randomBytes(32));
`,
    after: `
const [__claims, __mac] = token.split('.');
const __read = JSON.parse(Buffer.from(__claims, 'base64url').toString());
__rmSync(process.env.AUDIT_EMBED_KEY_FILE);
if (!__mac || !JSON.stringify(__read).includes('"acme"') || !JSON.stringify(__read).includes('"invoice:7"')) throw new Error('unexpected token ' + token);
`,
  },
  // producer/docs/sending.md: the other Kafka client, and an app's own kafkajs producer.
  sender: {
    before: `
import { AuditClient } from 'audit-pipeline/producer';
import { Kafka as __Kafka } from 'kafkajs';
const myKafkajsProducer = new __Kafka({ brokers: process.env.AUDIT_KAFKA_BROKERS.split(','), logLevel: 0 }).producer();
await myKafkajsProducer.connect();
`,
    after: `
for (const [i, c] of [inline, own].entries()) c.record({ objectType: 'sender', objectId: String(i), action: 'create' });
for (const c of [inline, own]) await c.close();
await myKafkajsProducer.disconnect();
`,
    check(rows) {
      expect(actions(rows.filter((r) => r.object_type === 'sender'))).toEqual(['sender:0 create', 'sender:1 create']);
    },
  },
};

/** The tests' generated Prisma client (TypeScript) as CommonJS next to the examples, for the blocks that use `PrismaClient`. */
async function prismaClient(into: string): Promise<string> {
  execFileSync(process.execPath, [join(ROOT, 'test', 'prisma', 'generate.js')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const source = join(ROOT, '.test-cache', 'prisma-client');
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.name.endsWith('.ts')) {
        const target = join(into, relative(source, path)).replace(/\.ts$/, '.js');
        await mkdir(dirname(target), { recursive: true });
        const js = ts.transpileModule(await readFile(path, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
        await writeFile(target, js);
      }
    }
  };
  await visit(source);
  return join(into, 'client.js');
}

/** The examples' database: the tables the README's blocks name. */
const SETUP_SQL = `
CREATE TABLE invoices (id serial PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL);
INSERT INTO invoices (customer_id, status) VALUES (7, 'draft'), (7, 'sent'), (8, 'draft');
CREATE TABLE prisma_invoice (id serial PRIMARY KEY, number text UNIQUE NOT NULL, status text NOT NULL, total int NOT NULL, secret text);
CREATE TABLE prisma_invoice_line (id serial PRIMARY KEY, "invoiceId" int NOT NULL REFERENCES prisma_invoice (id), label text NOT NULL);
`;

async function runModule(file: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('README examples and links (no services)', () => {
  it('every link of every README leads to a file of the repository (relative, or absolute into its main branch)', async () => {
    const repository = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { repository: { url: string } }).repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    const broken: string[] = [];
    for (const file of await readmes()) {
      const text = (await readFile(join(ROOT, file), 'utf8')).replace(/^```[\s\S]*?^```/gm, '');
      for (const [, link] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = link!.split('#')[0]!;
        if (!target || /^mailto:/.test(target)) continue;
        const inRepo = target.startsWith(`${repository}/blob/main/`) ? target.slice(`${repository}/blob/main/`.length) : /^https?:/.test(target) ? null : join(file, '..', target);
        if (inRepo !== null && !(await readFile(join(ROOT, inRepo)).then(() => true, (err: NodeJS.ErrnoException) => err.code === 'EISDIR'))) broken.push(`${file}: ${link}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every code block of every README is marked with a scenario that runs it', async () => {
    const blocks: Block[] = [];
    for (const file of await readmes()) blocks.push(...fencedBlocks(file, await readFile(join(ROOT, file), 'utf8')));
    expect(blocks.length).toBeGreaterThan(0);
    const unmarked = blocks.filter((b) => CODE_LANGS.has(b.lang)).filter((b) => !b.name || !(b.name in SCENARIOS)).map((b) => `${b.file}:${b.line} (${b.name ?? 'no <!-- example: NAME --> mark'})`);
    expect(unmarked).toEqual([]);
  });

});

describe('README examples run as written and their events reach the store', () => {
  const pipeline = isolatedEnv('readme');
  const work = join(ROOT, '.tmp', `readme-examples-${randomUUID().slice(0, 8)}`);
  const runs: { block: Block; from: number; to: number; code: number | null; stderr: string }[] = [];
  let blocks: Block[] = [];
  let rows: Row[] = [];
  const admin = new Pool({ connectionString: PG_URL, max: 1 });
  let cdc: CdcProcess | null = null;
  const slot = `slot_${DATABASE}`;

  beforeAll(async () => {
    for (const file of await readmes()) blocks.push(...fencedBlocks(file, await readFile(join(ROOT, file), 'utf8')));
    blocks = blocks.filter((b) => CODE_LANGS.has(b.lang));
    // The examples import the package as an app would: through its "exports", from the assembled folder.
    await mkdir(join(work, 'node_modules'), { recursive: true });
    await symlink(join(ROOT, 'packages', 'audit-pipeline'), join(work, 'node_modules', 'audit-pipeline'), 'dir');
    const prisma = await prismaClient(join(work, 'prisma-client'));
    await admin.query(`CREATE DATABASE "${DATABASE}"`);
    const db = new Pool({ connectionString: DATABASE_URL, max: 1 });
    await db.query(SETUP_SQL);
    await db.end();
    // audit-cdc captures the invoices table into the examples' topic while they run.
    cdc = new CdcProcess({ ...pipeline, AUDIT_CDC_DATABASE_URL: DATABASE_URL, AUDIT_CDC_SLOT: slot, AUDIT_CDC_PUBLICATION_TABLES: 'invoices', AUDIT_LOG_LEVEL: 'info' });
    // Creating the slot waits for every transaction open on the server at that moment.
    await cdc.ready(120_000);
    for (const [i, block] of blocks.entries()) {
      const scenario = block.name ? SCENARIOS[block.name] : undefined;
      if (!scenario) continue;
      // A scenario may run the block inside a function (a request context): the block's imports go first.
      const lines = block.code.split('\n');
      const isImport = (l: string) => /^import\s/.test(l);
      const source = [...lines.filter(isImport), scenario.before ?? '', ...lines.filter((l) => !isImport(l)), scenario.after ?? ''].join('\n');
      const js = ts.transpileModule(source, {
        fileName: `${block.name}.ts`,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, experimentalDecorators: true, emitDecoratorMetadata: true },
      }).outputText;
      const file = join(work, `${i}-${block.name}.mjs`);
      await writeFile(file, js);
      const from = Date.now();
      const result = await runModule(file, { AUDIT_KAFKA_BROKERS: pipeline.AUDIT_KAFKA_BROKERS!, AUDIT_TOPIC: pipeline.AUDIT_TOPIC!, PG_URL: DATABASE_URL, PRISMA_CLIENT: prisma });
      runs.push({ block, from, to: Date.now(), ...result });
    }
    // Stopped, audit-cdc has published every change it read (it confirms the slot only after Kafka acknowledged).
    await cdc.stop();
    await runCliOk('consumer', ['--drain'], pipeline);
    const query = await runCliOk(
      'query',
      ['sql', 'SELECT occurred_at, source_service, object_type, object_id, action, actor_id, tenant_id, http_path, http_status, after, metadata FROM audit ORDER BY occurred_at', '--format', 'json'],
      pipeline,
    );
    rows = JSON.parse(query.stdout) as Row[];
  }, 600_000);

  afterAll(async () => {
    if (cdc) await cdc.stop();
    // A slot still being created (it waits for every open transaction of the server) holds a backend on the database.
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [DATABASE]);
    await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
    await admin.query(`DROP DATABASE IF EXISTS "${DATABASE}" WITH (FORCE)`);
    await admin.end();
    await rm(work, { recursive: true, force: true });
  });

  it('each block runs to the end and its events are stored', () => {
    // Every marked block ran (the one above names the others).
    expect(runs.map((r) => r.block)).toEqual(blocks.filter((b) => b.name && b.name in SCENARIOS));
    const failures: string[] = [];
    for (const run of runs) {
      const where = `${run.block.file}:${run.block.line} (${run.block.name})`;
      // kafkajs 2.2.4 sets a negative timer on Node >= 23, which Node reports on stderr (three lines); nothing else may be printed.
      const stderr = run.stderr.replace(/^\(node:\d+\) TimeoutNegativeWarning: .*\n.*\n\(Use `node --trace-warnings .*\n/gm, '');
      if (run.code !== 0 || stderr !== '') {
        failures.push(`${where}: exit ${run.code}: ${stderr.slice(-1500)}`);
        continue;
      }
      const during = rows.filter((r) => {
        const at = Date.parse(r.occurred_at);
        return at >= run.from && at <= run.to;
      });
      try {
        SCENARIOS[run.block.name!]!.check?.(during);
      } catch (err) {
        failures.push(`${where}: ${(err as Error).message}\nstored while it ran: ${JSON.stringify(during.map((r) => [r.source_service, r.object_type, r.object_id, r.action]))}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
