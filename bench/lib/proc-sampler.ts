/**
 * RSS and open file descriptors of a process, from /proc, and the "flat" judgement
 * the soak applies to each service's series: after a warm-up, the median of the last
 * window is within a bound of the median of the first.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcSample {
  rssMb: number;
  fds: number;
}

/** null when the process is gone (it exited between the pid lookup and the read). */
export function sampleProc(pid: number): ProcSample | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { rssMb: m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : 0, fds };
  } catch {
    return null;
  }
}

export interface FlatBound {
  /** Fraction of the run (after its start) left out as warm-up. */
  warmupFraction: number;
  /** Fraction of the rest compared at each end. */
  windowFraction: number;
  /** The last window's median may exceed the first's by this fraction... */
  relative: number;
  /** ...or by this much, whichever is larger (small series: a few MB or fds are noise). */
  absoluteRssMb: number;
  absoluteFds: number;
}

export interface FlatVerdict {
  samples: number;
  firstRssMb: number;
  lastRssMb: number;
  firstFds: number;
  lastFds: number;
  rssFlat: boolean;
  fdsFlat: boolean;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
};

/** `series` as [t, sample] in time order; null when too short to judge. */
export function flatVerdict(series: readonly { t: number; rssMb: number; fds: number }[], bound: FlatBound): FlatVerdict | null {
  if (series.length < 10) return null;
  const t0 = series[0]!.t;
  const t1 = series[series.length - 1]!.t;
  const start = t0 + (t1 - t0) * bound.warmupFraction;
  const span = (t1 - start) * bound.windowFraction;
  const first = series.filter((s) => s.t >= start && s.t <= start + span);
  const last = series.filter((s) => s.t >= t1 - span);
  if (first.length < 3 || last.length < 3) return null;
  const firstRss = median(first.map((s) => s.rssMb));
  const lastRss = median(last.map((s) => s.rssMb));
  const firstFds = median(first.map((s) => s.fds));
  const lastFds = median(last.map((s) => s.fds));
  return {
    samples: series.length,
    firstRssMb: firstRss,
    lastRssMb: lastRss,
    firstFds,
    lastFds,
    rssFlat: lastRss <= Math.max(firstRss * (1 + bound.relative), firstRss + bound.absoluteRssMb),
    fdsFlat: lastFds <= Math.max(firstFds * (1 + bound.relative), firstFds + bound.absoluteFds),
  };
}

/** A one-line chart of a series (8 levels), resampled to `width` columns. */
export function sparkline(values: readonly number[], width = 60): string {
  if (values.length === 0) return '';
  const bars = '▁▂▃▄▅▆▇█';
  const cols: number[] = [];
  for (let c = 0; c < Math.min(width, values.length); c++) {
    const from = Math.floor((c * values.length) / Math.min(width, values.length));
    const to = Math.max(from + 1, Math.floor(((c + 1) * values.length) / Math.min(width, values.length)));
    cols.push(Math.max(...values.slice(from, to)));
  }
  const lo = Math.min(...cols);
  const hi = Math.max(...cols);
  return cols.map((v) => bars[hi === lo ? 0 : Math.min(7, Math.floor(((v - lo) / (hi - lo)) * 8))]).join('');
}
