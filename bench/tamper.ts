/**
 * The tamper property at scale (issue 19): BENCH_TAMPER_CASES mutations
 * (default 1,008: 112 per class), each on a fresh copy of one signed,
 * compacted file:// store, followed by new events, a drain, one maintenance
 * pass (0s min age and grace), `verify` and the three readers, all in-process
 * (test/helpers/tamper/). Prints outcomes per class and the first
 * counterexample of each violating class; writes bench/results/tamper.json.
 *
 *   npm run bench:tamper      (no Kafka, no S3: a temp directory)
 *
 * Environment (defaults): BENCH_TAMPER_CASES (1008) BENCH_TAMPER_SEED (19) BENCH_OUT (tamper.json)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { TARGET_CLASSES, type TargetClass } from '../test/helpers/tamper/classes';
import { type Mutation, mutationArb } from '../test/helpers/tamper/mutations';
import { openPipeline } from '../test/helpers/tamper/pipeline';
import { type CaseOutcome, type Verdict, buildBaseStore, runCase } from '../test/helpers/tamper/run-case';
import { envNumber, projectRoot } from './lib/env';
import { median, p95, table } from './lib/stats';

const ROOT = projectRoot(__dirname);
const cfg = {
  cases: envNumber('BENCH_TAMPER_CASES', 1008),
  seed: envNumber('BENCH_TAMPER_SEED', 19),
  out: process.env.BENCH_OUT ?? 'tamper.json',
};
const VERDICTS: readonly Verdict[] = ['verify-1', 'readers-unchanged', 'halted', 'VIOLATION'];
const log = (m: string) => process.stderr.write(`${m}\n`);

async function main(): Promise<void> {
  process.env.AUDIT_LOG_LEVEL ??= 'silent';
  const perClass = Math.ceil(cfg.cases / TARGET_CLASSES.length);
  // Stratified: the same number of mutations per class, each class from its own seeded stream.
  const plan: Mutation[] = TARGET_CLASSES.flatMap((cls, i) => fc.sample(mutationArb(cls), { seed: cfg.seed + i, numRuns: perClass }));
  log(`tamper bench: ${plan.length} mutations (${perClass} per class), seed ${cfg.seed}`);
  const p = await openPipeline();
  const t0 = Date.now();
  const outcomes: CaseOutcome[] = [];
  try {
    const base = await buildBaseStore(p);
    log(`base store built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Interleaved, so a slowdown of the shared machine spreads over every class.
    const order = plan.map((_, i) => (i % TARGET_CLASSES.length) * perClass + Math.floor(i / TARGET_CLASSES.length)).filter((i) => i < plan.length);
    for (const [n, i] of order.entries()) {
      outcomes.push(await runCase(p, base, plan[i]!, n));
      if ((n + 1) % 50 === 0) log(`${n + 1}/${plan.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  } finally {
    await p.close();
  }
  const seconds = (Date.now() - t0) / 1000;
  const byClass = new Map<TargetClass, CaseOutcome[]>(TARGET_CLASSES.map((c) => [c, outcomes.filter((o) => o.cls === c)]));
  const rows = TARGET_CLASSES.map((cls) => {
    const os = byClass.get(cls)!;
    return [cls, String(os.length), ...VERDICTS.map((v) => String(os.filter((o) => o.verdict === v).length))];
  });
  console.log(table(['class', 'cases', ...VERDICTS], rows));
  const ms = outcomes.map((o) => o.ms);
  console.log(`\n${outcomes.length} cases in ${seconds.toFixed(0)} s; per case median ${median(ms)} ms, p95 ${p95(ms)} ms`);
  const counterexamples = TARGET_CLASSES.flatMap((cls) => {
    const bad = byClass.get(cls)!.filter((o) => o.verdict === 'VIOLATION');
    // The first violation of each kind of mutation: the lead's checklist.
    const firstPerKind = [...new Map(bad.map((o) => [o.mutation!.kind, o])).values()];
    return firstPerKind.map((o) => ({ cls, kind: o.mutation!.kind, mutation: o.mutation, applied: o.applied, why: o.why, verify: o.verify.findings.slice(0, 5) }));
  });
  if (counterexamples.length > 0) {
    console.log('\nVIOLATIONS (first per class and kind):');
    for (const c of counterexamples) console.log(`- ${c.cls}/${c.kind}: ${c.applied}\n    ${c.why}`);
  }
  // verify's findings per class: which check named each kind of tampering.
  const findingsByClass = Object.fromEntries(
    TARGET_CLASSES.map((cls) => {
      const codes: Record<string, number> = {};
      for (const o of byClass.get(cls)!) for (const f of o.verify.findings) {
        const code = f.slice(0, f.indexOf(' '));
        codes[code] = (codes[code] ?? 0) + 1;
      }
      return [cls, codes];
    }),
  );
  console.log(`\nverify's findings per class: ${JSON.stringify(findingsByClass)}`);
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, cfg.out),
    `${JSON.stringify({ config: cfg, seconds, perCaseMs: { median: median(ms), p95: p95(ms) }, table: Object.fromEntries(rows.map((r) => [r[0], Object.fromEntries(VERDICTS.map((v, i) => [v, Number(r[i + 2])]))])), counterexamples, findingsByClass, outcomes: outcomes.map((o) => ({ cls: o.cls, kind: o.mutation?.kind, applied: o.applied, verdict: o.verdict, verify: o.verify.code, ms: o.ms })) })}\n`,
  );
  log(`wrote bench/results/${cfg.out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
