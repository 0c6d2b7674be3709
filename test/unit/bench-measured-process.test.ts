/**
 * The peer benchmark's figures rest on bench/lib/measured-process.ts: CPU and RSS
 * read from /proc for a reader that exits by itself, and for one (Kafka Connect)
 * that is stopped once an outside condition holds, with its time and CPU taken
 * at that moment rather than after its shutdown.
 */
import { measure, ReaderFailed } from '../../bench/lib/measured-process';

const node = process.execPath;
// Holds ~64 MB and burns 0.4 s of its own CPU (counted by the process, so a loaded
// host only stretches it), then idles 0.4 s so that a sample sees all of it, and exits 0.
const BURN =
  'const b = Buffer.alloc(64 * 1024 * 1024, 1); let x = 0; while (process.cpuUsage().user < 400_000) x += b[x % b.length]; setTimeout(() => process.exit(0), 400)';

describe('measure (bench/lib/measured-process)', () => {
  it('samples the CPU time and peak RSS of a process that exits by itself', async () => {
    const m = await measure(node, ['-e', BURN]);
    expect(m.cpuSeconds).toBeGreaterThanOrEqual(0.4);
    expect(m.cpuSeconds).toBeLessThanOrEqual(m.seconds * 2); // 2 cores at most
    expect(m.peakRssMb).toBeGreaterThan(64);
    expect(m.seconds).toBeGreaterThanOrEqual(0.8);
  });

  it('stops a long-running process once doneWhen holds and times it at that moment', async () => {
    let polls = 0;
    const m = await measure(node, ['-e', 'process.on("SIGTERM", () => setTimeout(() => process.exit(0), 1500)); setInterval(() => {}, 1000)'], {
      doneWhen: async () => ++polls >= 3,
      pollMs: 100,
    });
    expect(polls).toBe(3);
    // Done after ~3 polls of 100 ms; the 1.5 s the process takes to shut down is not counted.
    expect(m.seconds).toBeGreaterThanOrEqual(0.3);
    expect(m.seconds).toBeLessThan(1.4);
  });

  it('reports a process that exits before it is done, with its exit code and stderr', async () => {
    await expect(measure(node, ['-e', 'console.error("no broker"); process.exit(3)'], { doneWhen: async () => false, pollMs: 50 })).rejects.toThrow(
      /exited \(3\) before it was done: no broker/,
    );
    await expect(measure(node, ['-e', 'process.exit(2)'])).rejects.toBeInstanceOf(ReaderFailed);
  });
});
