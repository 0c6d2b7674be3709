import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { readEnv, type Env } from '../../config/env';

export const ROOT = join(__dirname, '..', '..');
export const KAFKA_BROKERS = process.env.AUDIT_TEST_KAFKA_BROKERS ?? 'localhost:9092';
export const S3_ENDPOINT = process.env.AUDIT_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:9000';
export const S3_BUCKET = process.env.AUDIT_TEST_S3_BUCKET ?? 'audit';
/** The second S3 server (infra service s3b: versitygw). */
export const S3B_ENDPOINT = process.env.AUDIT_TEST_S3B_ENDPOINT ?? 'http://127.0.0.1:7070';

/** The shared schema registry started by test/run.sh (Apicurio's Confluent-compatible API). */
export const SCHEMA_REGISTRY_URL = process.env.AUDIT_TEST_SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';

/** An S3 server the storage and exactly-once tests run against. */
export interface S3Server {
  name: 'minio' | 'versitygw';
  /** Its infra/ service name (for runInfra). */
  service: 's3' | 's3b';
  endpoint: string;
}

const ALL_S3_SERVERS: readonly S3Server[] = [
  { name: 'minio', service: 's3', endpoint: S3_ENDPOINT },
  { name: 'versitygw', service: 's3b', endpoint: S3B_ENDPOINT },
];

/**
 * The servers that server-parameterised tests run on: both by default;
 * AUDIT_TEST_S3_SERVERS=minio (or versitygw) narrows it, e.g. while working on one.
 */
export const S3_SERVERS: readonly S3Server[] = (() => {
  const wanted = process.env.AUDIT_TEST_S3_SERVERS?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!wanted || wanted.length === 0) return ALL_S3_SERVERS;
  const unknown = wanted.filter((w) => !ALL_S3_SERVERS.some((s) => s.name === w));
  if (unknown.length > 0) throw new Error(`AUDIT_TEST_S3_SERVERS: unknown server ${unknown.join(', ')} (expected minio, versitygw)`);
  return ALL_S3_SERVERS.filter((s) => wanted.includes(s.name));
})();

/**
 * Environment of one isolated pipeline: its own topic, group and store prefix
 * on the shared servers (MinIO unless `overrides` names another S3 endpoint).
 */
export function isolatedEnv(name: string, overrides: Record<string, string> = {}): Record<string, string> {
  const id = `${name}-${randomUUID().slice(0, 8)}`;
  return {
    AUDIT_KAFKA_BROKERS: KAFKA_BROKERS,
    AUDIT_TOPIC: `test.${id}`,
    AUDIT_CONSUMER_GROUP: `group-${id}`,
    AUDIT_STORE_URL: `s3://${S3_BUCKET}/tests/${id}`,
    AUDIT_S3_ENDPOINT: S3_ENDPOINT,
    AUDIT_S3_REGION: 'us-east-1',
    AUDIT_CACHE_DIR: join(ROOT, '.test-cache', id),
    AUDIT_WORK_DIR: join(ROOT, '.test-cache', id, 'work'),
    AUDIT_LOG_LEVEL: 'warn',
    AUDIT_FLUSH_MAX_AGE_MS: '2000',
    // Killed consumers leave the group quickly, so fault tests do not wait on ghosts.
    AUDIT_KAFKA_SESSION_TIMEOUT_MS: '8000',
    AUDIT_KAFKA_REBALANCE_TIMEOUT_MS: '15000',
    ...overrides,
  };
}

export function envOf(vars: Record<string, string>): Env {
  return readEnv(vars);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The compiled file of a project command, as packages/services/package.json's "bin" names it. */
export function binPath(bin: 'consumer' | 'query' | 'maintenance'): string {
  return bin === 'query' ? join(ROOT, 'dist', 'bin', 'audit-query.js') : join(ROOT, 'dist', bin, 'cli.js');
}

/** Starts a project CLI (compiled) with the given environment. */
export function startCli(bin: 'consumer' | 'query' | 'maintenance', args: string[], vars: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [binPath(bin), ...args], {
    env: { ...process.env, ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function waitExit(child: ChildProcess, timeoutMs = 120_000): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process did not exit within ${timeoutMs} ms; stderr:\n${stderr.slice(-4000)}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

export async function runCli(bin: 'consumer' | 'query' | 'maintenance', args: string[], vars: Record<string, string>, timeoutMs?: number): Promise<RunResult> {
  return waitExit(startCli(bin, args, vars), timeoutMs);
}

/** Runs a bin that must succeed: a failure shows its exit code and the end of its stderr in the assertion. */
export async function runCliOk(bin: 'consumer' | 'query' | 'maintenance', args: string[], vars: Record<string, string>, timeoutMs = 180_000): Promise<RunResult> {
  const r = await runCli(bin, args, vars, timeoutMs);
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return r;
}

/**
 * `count` distinct TCP ports free on 127.0.0.1 right now, for a server a test starts itself
 * (fixed ports collide when two runs share a machine): the private services' own picker.
 */
export { freeTcpPorts as freePorts } from '../../bench/lib/private-services';

export function runInfra(script: 'up' | 'down' | 'health', service: string, vars: Record<string, string> = {}): Promise<RunResult> {
  const child = spawn('bash', [join(ROOT, 'infra', `${script}.sh`), service], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...vars } });
  return waitExit(child, 300_000);
}
