/**
 * Runs one reader of a benchmark as a child process and measures it from /proc:
 * wall time, CPU seconds (user + system, all threads) and peak RSS, sampled every
 * 50 ms. A reader either exits by itself when it is done (kcat -e, audit-consumer
 * --drain) or runs until a condition observed from outside holds (Kafka Connect
 * has no "drain" mode: done is when its table shows every record), and is then
 * stopped with SIGTERM; its CPU and time are taken at that moment, not after the
 * shutdown.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Measured {
  seconds: number;
  /** User + system CPU of the process (all its threads). */
  cpuSeconds: number;
  peakRssMb: number;
}

export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  stdoutToNull?: boolean;
  /** Polled every `pollMs` while the process runs; true = done (the process is then stopped). */
  doneWhen?: () => Promise<boolean>;
  pollMs?: number;
  /** Gives up (and stops the process) after this long. */
  timeoutMs?: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

interface Sample {
  rssMb: number;
  cpuSeconds: number;
}

function sample(pid: number): Sample | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    // Fields after the command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { rssMb: m ? Number(m[1]) / 1024 : 0, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
  } catch {
    return null; // exited between samples
  }
}

export class ReaderFailed extends Error {
  constructor(
    readonly command: string,
    readonly detail: string,
  ) {
    super(`${command}: ${detail}`);
    this.name = 'ReaderFailed';
  }
}

export function measure(cmd: string, args: readonly string[], opts: MeasureOptions = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', opts.stdoutToNull ? 'ignore' : 'inherit', 'pipe'] });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new ReaderFailed(cmd, 'could not be started'));
      return;
    }
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let peak = 0;
    let cpu = 0;
    let result: Measured | null = null;
    let failure: Error | null = null;
    let exited = false;
    const take = () => {
      const s = sample(pid);
      if (s) {
        peak = Math.max(peak, s.rssMb);
        cpu = s.cpuSeconds;
      }
    };
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const sampler = setInterval(take, 50);
    let poller: NodeJS.Timeout | null = null;
    const stop = () => {
      if (poller) clearTimeout(poller);
      poller = null;
      child.kill('SIGTERM');
    };
    if (opts.doneWhen) {
      const doneWhen = opts.doneWhen;
      const deadline = Date.now() + (opts.timeoutMs ?? 15 * 60_000);
      const poll = () => {
        doneWhen().then(
          (done) => {
            if (exited) return;
            if (done) {
              take();
              result = { seconds: elapsed(), cpuSeconds: cpu, peakRssMb: peak };
              stop();
            } else if (Date.now() > deadline) {
              failure = new ReaderFailed(cmd, `not done after ${opts.timeoutMs ?? 15 * 60_000} ms`);
              stop();
            } else {
              poller = setTimeout(poll, opts.pollMs ?? 250);
            }
          },
          (err: unknown) => {
            if (exited) return;
            failure = err instanceof Error ? err : new Error(String(err));
            stop();
          },
        );
      };
      poller = setTimeout(poll, opts.pollMs ?? 250);
    }
    child.on('exit', (code, signal) => {
      exited = true;
      clearInterval(sampler);
      if (poller) clearTimeout(poller);
      poller = null;
      if (failure) reject(failure);
      else if (result) resolve(result);
      else if (opts.doneWhen) reject(new ReaderFailed(cmd, `exited (${code ?? signal}) before it was done: ${stderr}`));
      else if (code !== 0) reject(new ReaderFailed(cmd, `exited ${code ?? signal}: ${stderr}`));
      else resolve({ seconds: elapsed(), cpuSeconds: cpu, peakRssMb: peak });
    });
  });
}

export interface CapturedRun extends Measured {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, measured like `measure`, keeping its output and exit code (a failure is the caller's to judge). */
export function runCaptured(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<CapturedRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    let cpu = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sampler = setInterval(() => {
      const s = child.pid === undefined ? null : sample(child.pid);
      if (s) {
        peak = Math.max(peak, s.rssMb);
        cpu = s.cpuSeconds;
      }
    }, 50);
    child.on('error', (err) => {
      clearInterval(sampler);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(sampler);
      resolve({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: cpu, peakRssMb: peak });
    });
  });
}
