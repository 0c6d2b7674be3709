import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AuditClient, type AuditEventInput } from '../../producer';
import { binPath, runCli, waitExit, type RunResult } from './infra';

/** A running `audit-query serve` (the compiled CLI, as users start it). */
export interface RunningViewer {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM, then its exit (code and output). */
  stop: () => Promise<RunResult>;
}

/** Starts `audit-query serve --port 0` and resolves once it printed the address it listens on. */
export function startViewer(vars: Record<string, string>, args: string[] = []): Promise<RunningViewer> {
  const child = spawn(process.execPath, [binPath('query'), 'serve', '--port', '0', ...args], {
    env: { ...process.env, ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<RunResult>((resolve) => child.once('exit', (code, signal) => setImmediate(() => resolve({ code, signal, stdout, stderr }))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`audit-query serve did not start within 60 s: ${stderr.slice(-2000)}`));
    }, 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stderr: () => stderr,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((r) => {
      clearTimeout(timer);
      reject(new Error(`audit-query serve exited ${r.code} before listening: ${r.stderr.slice(-2000)}`));
    });
  });
}

/** Publishes the events through the real client and stores them with `audit-consumer --drain`. */
export async function storeEvents(vars: Record<string, string>, events: readonly AuditEventInput[]): Promise<void> {
  const client = new AuditClient({ brokers: [vars.AUDIT_KAFKA_BROKERS!], topic: vars.AUDIT_TOPIC, sourceService: 'viewer-test', onBufferFull: 'block', maskFields: [] });
  for (const e of events) await client.record(e);
  if (!(await client.flush(60_000))) throw new Error('events not delivered to Kafka');
  await client.close();
  const stats = client.stats();
  if (stats.dropped !== 0 || stats.invalid !== 0) throw new Error(`events lost: ${JSON.stringify(stats)}`);
  const run = await runCli('consumer', ['--drain'], vars, 180_000);
  if (run.code !== 0) throw new Error(`audit-consumer --drain exited ${run.code}: ${run.stderr.slice(-3000)}`);
}

export { waitExit };
