import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface MeasuredRun {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** User + system CPU seconds of the process (sampled from /proc, last sample before exit). */
  cpuSeconds: number;
  /** Peak resident set, bytes (sampled every 50 ms). */
  peakRss: number;
}

const TICKS = 100; // USER_HZ on Linux

/** Runs a command, sampling its CPU time and RSS from /proc while it runs. */
export function runMeasured(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let cpuSeconds = 0;
    let peakRss = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sample = () => {
      try {
        const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (rss) peakRss = Math.max(peakRss, Number(rss[1]) * 1024);
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS;
      } catch {
        // The process is gone between two samples: the last ones stand.
      }
    };
    const timer = setInterval(sample, 50);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, cpuSeconds, peakRss, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });
}
